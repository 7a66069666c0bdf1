import Foundation
import LoomCore
import Synchronization

/// Records of one file, parsed in place: the bytes they were read from (quoted fields unescaped
/// in place), and where each field starts and ends, row after row, in the dataset's column order.
///
/// The reading thread fills a batch and then hands it over; from then on it is only read, so it
/// may be shared between the workers.
final class RowBatch: @unchecked Sendable {
    let columns: Int
    let file: String
    /// The rows.
    let count: Int
    /// The bytes fields are positions in (within `storage`, kept alive by the batch).
    let bytes: UnsafeMutablePointer<UInt8>
    private let storage: ByteBlock
    /// Where each field ends, row after row. Without `starts`, the position of the delimiter
    /// or line feed after it, and each field starts one past the previous one's end (quote-free
    /// records, read in one pass); with `starts`, one past its last byte.
    let ends: UnsafeMutablePointer<Int32>
    let starts: UnsafeMutablePointer<Int32>?
    /// The line each record starts on; without them, the records are on consecutive lines from
    /// `firstLine`.
    private let lines: [Int]?
    private let firstLine: Int
    /// The size of `ends` when it comes from `BufferPool` (0: allocated).
    private let endsBytes: Int

    fileprivate init(
        columns: Int, file: String, count: Int, storage: ByteBlock, bytes: UnsafeMutablePointer<UInt8>,
        ends: UnsafeMutablePointer<Int32>, endsBytes: Int = 0, starts: UnsafeMutablePointer<Int32>?, lines: [Int]?, firstLine: Int
    ) {
        self.endsBytes = endsBytes
        self.columns = columns
        self.file = file
        self.count = count
        self.storage = storage
        self.bytes = bytes
        self.ends = ends
        self.starts = starts
        self.lines = lines
        self.firstLine = firstLine
    }

    deinit {
        if endsBytes > 0 { BufferPool.give(UnsafeMutableRawPointer(ends), endsBytes) } else { ends.deallocate() }
        starts?.deallocate()
    }

    /// Field `i` (row-major: `row * columns + column`).
    @inline(__always)
    func field(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        if let starts {
            let s = Int(starts[i])
            return UnsafeBufferPointer(start: bytes + s, count: Int(ends[i]) - s)
        }
        let s = i == 0 ? 0 : Int(ends[i - 1]) + 1
        var e = Int(ends[i])
        // A field that ends its line loses a carriage return before the line feed.
        if e > s, bytes[e] == 0x0A, bytes[e - 1] == 0x0D { e -= 1 }
        return UnsafeBufferPointer(start: bytes + s, count: e - s)
    }

    @inline(__always)
    func kind(_ i: Int) -> FieldKind { FieldKinds.of(field(i)) }

    /// The line record `r` starts on.
    @inline(__always)
    func line(_ r: Int) -> Int { lines?[r] ?? firstLine + r }
}

/// Keeps a few freed buffers of each large size for the next batch: the readers allocate a block
/// of bytes and a table of positions per batch, and memory fresh from the system comes page by
/// zeroed page. Holds at most `limit` bytes in all.
enum BufferPool {
    static let limit = 48 << 20
    static let smallest = 256 << 10
    private static let shelves = Mutex<(free: [Int: [UInt]], bytes: Int)>(([:], 0))

    static func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= smallest, let kept = shelves.withLock({ s -> UInt? in
            guard let p = s.free[bytes]?.popLast() else { return nil }
            s.bytes -= bytes
            return p
        }) {
            return UnsafeMutableRawPointer(bitPattern: kept)!
        }
        return .allocate(byteCount: max(bytes, 1), alignment: 16)
    }

    static func give(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        let kept = bytes >= smallest && shelves.withLock { s -> Bool in
            guard s.bytes + bytes <= limit, s.free[bytes, default: []].count < 6 else { return false }
            s.free[bytes, default: []].append(UInt(bitPattern: p))
            s.bytes += bytes
            return true
        }
        if !kept { p.deallocate() }
    }
}

/// What a CSV field read into a `ByteBlock` holds.
enum FieldKinds {
    /// Null when empty or a null token (`NumberText.isNullToken`), else text. Reads the bytes
    /// of a short field as one 32-bit word: at least three readable bytes must follow the field
    /// (as they do in a `ByteBlock`).
    @inline(__always)
    static func of(_ b: UnsafeBufferPointer<UInt8>) -> FieldKind {
        let length = b.count
        if length == 0 { return .null }
        if length > 4 { return .text }
        let p = b.baseAddress!
        guard NumberText.startsNullToken(p[0]) else { return .text }
        let word = UInt64(UnsafeRawPointer(p).loadUnaligned(as: UInt32.self).littleEndian)
        let key = (word & ((1 << (8 * UInt64(length))) - 1)) | UInt64(length) << 32
        return NumberText.isNullTokenKey(key) ? .null : .text
    }
}

/// Bytes in one allocation, freed with the last batch (or parser) that reads them.
final class ByteBlock: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int

    /// `capacity` bytes, and eight more past them that readers may load a word across.
    init(capacity: Int) {
        base = BufferPool.take(capacity + 8).bindMemory(to: UInt8.self, capacity: capacity + 8)
        self.capacity = capacity
    }

    deinit { BufferPool.give(UnsafeMutableRawPointer(base), capacity + 8) }
}

/// Parses CSV bytes straight into `RowBatch`es, for the readers that share the work between
/// cores: the bytes are gathered into one buffer, and a record's fields are positions in it (no
/// copy per field). Reads exactly what `CSVParser` reads, with the same errors: quoted fields
/// (delimiters, doubled quotes and line breaks inside), a quote inside an unquoted field kept as
/// text, LF or CRLF line ends, blank lines skipped, the first record naming the columns.
///
/// Later files of a dataset must have the first file's columns (in any order): their fields are
/// placed in the first file's column order.
final class CSVBatchParser {
    let delimiter: UInt8
    let file: String
    let recordLimit: Int
    /// Bytes gathered before records are parsed into a batch.
    let targetBytes: Int
    /// The dataset's columns, when an earlier file named them.
    private let datasetColumns: [String]?
    /// This file's header.
    private(set) var header: [String]?
    private var width = 0
    /// The dataset column of each of this file's fields, when they are in another order.
    private var permutation: [Int]?

    /// The bytes not parsed yet: `count` of them from `start` in `block` (`buffer` points there).
    private var block: ByteBlock
    private var start = 0
    private var count = 0
    private var buffer: UnsafeMutablePointer<UInt8>
    /// Parse when `count` reaches this (grows while one record spans more than the buffer).
    private var parseAt: Int
    private var starts: UnsafeMutablePointer<Int32>
    private var ends: UnsafeMutablePointer<Int32>
    private var fieldCapacity: Int
    private var fields = 0
    private var lines: [Int] = []
    /// The physical line at the parse position.
    private var line = 1
    /// Quoted fields of the current record that hold doubled quotes.
    private var doubled: [Int] = []
    /// Where an unfinished record stopped: inside a quoted field opened on this line (or 0).
    private var openQuoteLine = 0

    init(delimiter: UInt8, file: String, columns: [String]?, targetBytes: Int = 1 << 20, recordLimit: Int = RecordLimit.bytes) {
        self.delimiter = delimiter
        self.file = file
        self.datasetColumns = columns
        self.targetBytes = max(1, targetBytes)
        self.recordLimit = recordLimit
        parseAt = self.targetBytes
        block = ByteBlock(capacity: self.targetBytes + (1 << 16))
        buffer = block.base
        fieldCapacity = 1 << 12
        starts = .allocate(capacity: fieldCapacity)
        ends = .allocate(capacity: fieldCapacity)
    }

    deinit {
        BufferPool.give(UnsafeMutableRawPointer(separators), separatorCapacity * 4)
        starts.deallocate()
        ends.deallocate()
    }

    /// Adds bytes (copied); returns a batch once enough have gathered (nil: none yet).
    func feed(_ chunk: UnsafeRawBufferPointer) throws -> RowBatch? {
        append(chunk)
        return count >= parseAt ? try cut(final: false) : nil
    }

    /// Adds the `length` bytes at `offset` in `next` without copying them, when the bytes not
    /// parsed yet fit in front of them (`FileBytes.blocks` leaves room); returns a batch once
    /// enough have gathered.
    func feed(_ next: ByteBlock, offset: Int, length: Int) throws -> RowBatch? {
        if count == 0 {
            block = next
            start = offset
            count = length
        } else if offset >= count {
            (next.base + offset - count).update(from: buffer, count: count)
            block = next
            start = offset - count
            count += length
        } else {
            append(UnsafeRawBufferPointer(start: next.base + offset, count: length))
            return count >= parseAt ? try cut(final: false) : nil
        }
        buffer = block.base + start
        return count >= parseAt ? try cut(final: false) : nil
    }

    /// Copies bytes after the ones not parsed yet, into a block of the parser's own (batches may
    /// still read the current one).
    private func append(_ chunk: UnsafeRawBufferPointer) {
        guard let source = chunk.baseAddress, chunk.count > 0 else { return }
        ownBlock(room: chunk.count)
        (buffer + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: chunk.count)
        count += chunk.count
    }

    /// Makes the block the parser's alone, with `room` bytes free after the ones not parsed
    /// yet: parsing writes into the block (quoted fields are unescaped in place), and a batch
    /// handed over may still read it, a word or so past its last field too.
    private func ownBlock(room: Int) {
        guard !isKnownUniquelyReferenced(&block) || start + count + room > block.capacity else { return }
        let next = ByteBlock(capacity: max(targetBytes + (1 << 16), 2 * (count + room)))
        next.base.update(from: buffer, count: count)
        block = next
        start = 0
        buffer = next.base
    }

    /// Ends the file: the last record may lack its line break. Returns the last batch (nil: no
    /// records left).
    func finish() throws -> RowBatch? {
        if count > 0 { ownBlock(room: 0) }
        let batch = try cut(final: true)
        if header == nil { throw LoomError.invalidParameter("\(file) is empty: a CSV file needs a header row") }
        return batch
    }

    /// Parses the complete records gathered; hands them over with the buffer, keeping the
    /// unfinished record's bytes for the next batch.
    private func cut(final: Bool) throws -> RowBatch? {
        let used = try parse(final: final)
        let columns = datasetColumns?.count ?? width
        if implicitRows > 0 {
            // Quote-free records: the separators found are the batch's field ends.
            let batch = RowBatch(
                columns: columns, file: file, count: implicitRows, storage: block, bytes: buffer, ends: separators,
                endsBytes: separatorCapacity * 4, starts: nil, lines: nil, firstLine: implicitFirstLine)
            separators = BufferPool.take(0).bindMemory(to: Int32.self, capacity: 0)
            separatorCapacity = 0
            implicitRows = 0
            advance(used)
            return batch
        }
        // No complete record: wait for more bytes before looking again (a long record is
        // scanned a bounded number of times).
        if lines.isEmpty {
            advance(used)
            parseAt = max(targetBytes, count * 2)
            return nil
        }
        let batch = RowBatch(
            columns: columns, file: file, count: lines.count, storage: block, bytes: buffer, ends: ends, starts: starts,
            lines: lines, firstLine: 0)
        advance(used)
        let fieldsMade = fields
        fieldCapacity = max(1 << 12, fieldsMade + fieldsMade / 4)
        starts = .allocate(capacity: fieldCapacity)
        ends = .allocate(capacity: fieldCapacity)
        fields = 0
        lines = []
        lines.reserveCapacity(batch.count)
        return batch
    }

    /// Drops the bytes parsed: the unfinished record stays where it is (a batch only reads
    /// before it).
    private func advance(_ used: Int) {
        start += used
        count -= used
        buffer = block.base + start
        parseAt = targetBytes
    }

    private func growFields(toHold needed: Int = 0) {
        let grown = max(fieldCapacity * 2, needed)
        func move<T>(_ p: inout UnsafeMutablePointer<T>) {
            let next = UnsafeMutablePointer<T>.allocate(capacity: grown)
            next.update(from: p, count: fields)
            p.deallocate()
            p = next
        }
        move(&starts)
        move(&ends)
        fieldCapacity = grown
    }

    private static var quote: UInt8 { UInt8(ascii: "\"") }
    private static var lf: UInt8 { UInt8(ascii: "\n") }
    private static var cr: UInt8 { UInt8(ascii: "\r") }

    @inline(__always)
    private func addField(_ start: Int, _ end: Int) {
        if fields == fieldCapacity { growFields() }
        starts[fields] = Int32(truncatingIfNeeded: start)
        ends[fields] = Int32(truncatingIfNeeded: end)
        fields += 1
    }

    private func error(_ message: String) -> LoomError {
        .invalidParameter("\(file), line \(line): \(message)")
    }

    /// Parses records from the start of the buffer; returns where the first record it could
    /// not finish starts (`count` when all were).
    private func parse(final: Bool) throws -> Int {
        let n = count
        let raw = UnsafeRawBufferPointer(start: buffer, count: n)
        var p = try parseQuoteFree(final: final)
        if implicitRows > 0 { return p }
        while p < n {
            let recordStart = p
            let recordLine = line
            let first = fields
            guard let next = try record(at: p, n: n, raw: raw, final: final) else {
                fields = first
                line = recordLine
                doubled.removeAll(keepingCapacity: true)
                if n - recordStart > recordLimit {
                    let hint = openQuoteLine > 0 ? " (a quoted field opened on line \(openQuoteLine) is never closed?)" : ""
                    throw LoomError.invalidParameter("\(file), line \(recordLine): a record longer than \(recordLimit) bytes\(hint)")
                }
                return recordStart
            }
            p = next
            try endRecord(first: first, line: recordLine, length: next - recordStart)
        }
        return n
    }

    /// Where the delimiters and line feeds of the buffer are (`parseQuoteFree`): reused, or
    /// handed to a batch as its field ends.
    private var separators = BufferPool.take(0).bindMemory(to: Int32.self, capacity: 0)
    private var separatorCapacity = 0
    /// Records `parseQuoteFree` left in `separators` alone (0: none), and the line of the first.
    private var implicitRows = 0
    private var implicitFirstLine = 0

    /// The common case first: when the buffer holds no quote at all, every delimiter and line
    /// feed ends a field. One pass finds them all, eight bytes at a time (exact zero-byte masks,
    /// so that every hit in a word counts, and no branch per hit). When every record up to the
    /// last line feed has the header's field count (no blank line either), those positions are
    /// the batch (`implicitRows`); otherwise a second pass makes each field's bounds.
    ///
    /// Returns where it stopped: 0 when the buffer has a quote or bytes that are not UTF-8 (the
    /// record-by-record path reads those, and names the error).
    private func parseQuoteFree(final: Bool) throws -> Int {
        let n = count
        if separatorCapacity < n + 16 {
            BufferPool.give(UnsafeMutableRawPointer(separators), separatorCapacity * 4)
            // At most one separator per byte, and two spare; sizes rounded for the pool.
            separatorCapacity = (n + 16 + 0xFFFF) & ~0xFFFF
            separators = BufferPool.take(separatorCapacity * 4).bindMemory(to: Int32.self, capacity: separatorCapacity)
        }
        let buf = buffer
        let out = separators
        let raw = UnsafeRawPointer(buf)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let lows: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        let d = UInt64(delimiter) &* ones
        let l = UInt64(0x0A) &* ones
        var j = 0
        // Quotes and bytes past ASCII first, each in a pass of its own that the library (memchr)
        // or the compiler (a plain OR reduction) does many bytes at a time.
        guard memchr(buf, 0x22, n) == nil else { return 0 }
        var high: UInt64 = 0
        j = 0
        while j + 8 <= n {
            high |= raw.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            j &+= 8
        }
        while j < n {
            high |= UInt64(buf[j])
            j &+= 1
        }
        var found = 0
        var lineFeeds = 0
        j = 0
        // 0x80 in each byte of `x` that is zero, exactly.
        @inline(__always) func zeros(_ x: UInt64) -> UInt64 { ~(((x & lows) &+ lows) | x | lows) }
        // The count of such bytes (no population count instruction is assumed of the processor).
        @inline(__always) func tally(_ m: UInt64) -> Int { Int(truncatingIfNeeded: ((m >> 7) &* ones) >> 56) }
        while j + 8 <= n {
            let w = raw.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            let feeds = zeros(w ^ l)
            var m = zeros(w ^ d) | feeds
            lineFeeds &+= tally(feeds)
            // Two positions are written whatever the count (spare ones are overwritten later;
            // `separators` has room); more only when a word holds more than two fields' ends.
            let hits = tally(m)
            out[found] = Int32(truncatingIfNeeded: j &+ m.trailingZeroBitCount &>> 3)
            m &= m &- 1
            out[found &+ 1] = Int32(truncatingIfNeeded: j &+ m.trailingZeroBitCount &>> 3)
            if hits > 2 {
                m &= m &- 1
                var k = found &+ 2
                while m != 0 {
                    out[k] = Int32(truncatingIfNeeded: j &+ m.trailingZeroBitCount &>> 3)
                    k &+= 1
                    m &= m &- 1
                }
            }
            found &+= hits
            j &+= 8
        }
        while j < n {
            let b = buf[j]
            if b == delimiter || b == 0x0A {
                if b == 0x0A { lineFeeds += 1 }
                out[found] = Int32(truncatingIfNeeded: j)
                found += 1
            }
            j += 1
        }
        // Records end at line feeds: stop after the last one.
        while found > 0, buf[Int(out[found - 1])] != 0x0A { found -= 1 }
        guard found > 0 else { return 0 }
        let end = Int(out[found - 1]) + 1
        if high & 0x8080_8080_8080_8080 != 0,
           String(validating: UnsafeBufferPointer(start: buf, count: end), as: UTF8.self) == nil {
            return 0
        }
        let w = width
        if !final, header != nil, permutation == nil, w > 1, fields == 0, end <= recordLimit, found % w == 0, lineFeeds == found / w {
            // As many line feeds as records: if each record's last separator is one, no other is.
            let rows = found / w
            var aligned = true
            var k = w - 1
            for _ in 0..<rows {
                aligned = aligned && buf[Int(out[k])] == 0x0A
                k += w
            }
            if aligned {
                implicitRows = rows
                implicitFirstLine = line
                line += rows
                return end
            }
        }
        if fieldCapacity - fields < found { growFields(toHold: fields + found) }
        var p = 0
        var k = 0
        let (starts, ends) = (self.starts, self.ends)
        while k < found {
            let recordStart = p
            let first = fields
            var f = fields
            while true {
                let pos = Int(out[k])
                k += 1
                let atEnd = buf[pos] == 0x0A
                var e = pos
                if atEnd, e > p, buf[e - 1] == 0x0D { e -= 1 }
                starts[f] = Int32(truncatingIfNeeded: p)
                ends[f] = Int32(truncatingIfNeeded: e)
                f += 1
                p = pos + 1
                if atEnd { break }
            }
            fields = f
            line += 1
            try endRecord(first: first, line: line - 1, length: p - recordStart)
        }
        return end
    }

    /// Reads one record's fields from `p`; returns where the next record starts, or nil when the
    /// bytes end before the record does (and more may come).
    @inline(__always)
    private func record(at start: Int, n: Int, raw: UnsafeRawBufferPointer, final: Bool) throws -> Int? {
        let buf = buffer
        let delimiter = self.delimiter
        var p = start
        var high: UInt8 = 0
        openQuoteLine = 0
        currentFirst = fields
        currentLine = line
        while true {
            if p == n {
                // After a delimiter, at the end of the bytes.
                guard final else { return nil }
                addField(p, p)
                return try checked(high, n)
            }
            if buf[p] == Self.quote {
                let opened = line
                var j = p + 1
                var hasDoubled = false
                var closing = 0
                while true {
                    while j < n, buf[j] != Self.quote {
                        let b = buf[j]
                        if b == Self.lf { line += 1 }
                        high |= b
                        j += 1
                    }
                    if j == n {
                        if final { throw LoomError.invalidParameter("\(file), line \(opened): a quoted field is never closed") }
                        openQuoteLine = opened
                        return nil
                    }
                    if j + 1 < n, buf[j + 1] == Self.quote {
                        hasDoubled = true
                        j += 2
                        continue
                    }
                    if j + 1 == n, !final { return nil }
                    closing = j
                    break
                }
                if hasDoubled { doubled.append(fields) }
                addField(p + 1, closing)
                let after = closing + 1
                if after == n { return try checked(high, n) }
                let c = buf[after]
                if c == delimiter {
                    p = after + 1
                    continue
                }
                if c == Self.lf {
                    line += 1
                    return try checked(high, after + 1)
                }
                if c == Self.cr {
                    if after + 1 == n {
                        guard final else { return nil }
                        return try checked(high, n)
                    }
                    guard buf[after + 1] == Self.lf else { throw error("text after the closing quote of a field") }
                    line += 1
                    return try checked(high, after + 2)
                }
                throw error("text after the closing quote of a field (a quote inside a quoted field must be doubled)")
            }
            let q = CSVScan.next(raw, from: p, delimiter: delimiter, nonASCII: &high)
            if q == n, !final { return nil }
            let atEnd = q == n || buf[q] == Self.lf
            var e = q
            if atEnd, e > p, buf[e - 1] == Self.cr { e -= 1 }
            addField(p, e)
            if atEnd {
                if q < n { line += 1 }
                return try checked(high, q == n ? n : q + 1)
            }
            p = q + 1
        }
    }

    /// The record is complete: unescapes doubled quotes and checks its UTF-8.
    @inline(__always)
    private func checked(_ high: UInt8, _ next: Int) throws -> Int {
        if !doubled.isEmpty { unescape() }
        if high & 0x80 != 0 { try checkUTF8() }
        return next
    }

    private func unescape() {
        for f in doubled {
            let s = Int(starts[f])
            let e = Int(ends[f])
            var w = s
            var r = s
            while r < e {
                let b = buffer[r]
                buffer[w] = b
                w += 1
                r += b == Self.quote ? 2 : 1
            }
            ends[f] = Int32(truncatingIfNeeded: w)
        }
        doubled.removeAll(keepingCapacity: true)
    }

    /// The first field and the line of the record being read.
    private var currentFirst = 0
    private var currentLine = 0

    private func checkUTF8() throws {
        for f in currentFirst..<fields {
            let s = Int(starts[f])
            guard String(validating: UnsafeBufferPointer(start: buffer + s, count: Int(ends[f]) - s), as: UTF8.self) != nil else {
                throw LoomError.invalidParameter("\(file), line \(currentLine): field \(f - currentFirst + 1) is not valid UTF-8")
            }
        }
    }

    /// A record's fields are read (`first..<fields`): skips a blank line, takes the header,
    /// checks the field count and places the fields in the dataset's order.
    @inline(__always)
    private func endRecord(first: Int, line recordLine: Int, length: Int) throws {
        let k = fields - first
        if k == 1, starts[first] == ends[first] {
            fields = first
            return
        }
        if length > recordLimit {
            throw LoomError.invalidParameter("\(file), line \(recordLine): a record longer than \(recordLimit) bytes")
        }
        guard header != nil else {
            try begin(first: first, line: recordLine)
            fields = first
            return
        }
        if k != width {
            throw LoomError.invalidParameter("\(file), line \(recordLine): \(k) fields, but the header has \(width)")
        }
        if let permutation { permute(first, permutation) }
        lines.append(recordLine)
    }

    private func permute(_ first: Int, _ permutation: [Int]) {
        let s = (0..<width).map { starts[first + $0] }
        let e = (0..<width).map { ends[first + $0] }
        for f in 0..<width {
            let to = first + permutation[f]
            starts[to] = s[f]
            ends[to] = e[f]
        }
    }

    private func begin(first: Int, line recordLine: Int) throws {
        var names: [String] = []
        var seen: Set<String> = []
        for f in first..<fields {
            let s = Int(starts[f])
            var name = String(decoding: UnsafeBufferPointer(start: buffer + s, count: Int(ends[f]) - s), as: UTF8.self)
            if name.isEmpty { name = "column_\(f - first + 1)" }
            guard seen.insert(name).inserted else {
                throw LoomError.invalidParameter("\(file), line \(recordLine): the header names column \(name) twice")
            }
            names.append(name)
        }
        width = names.count
        if let datasetColumns {
            let missing = datasetColumns.filter { !seen.contains($0) }
            let known = Set(datasetColumns)
            let extra = names.filter { !known.contains($0) }
            guard missing.isEmpty, extra.isEmpty else {
                throw LoomError.invalidParameter("\(file): its columns differ from the first file's (missing: \(missing.joined(separator: ", ")); extra: \(extra.joined(separator: ", ")))")
            }
            let index = Dictionary(uniqueKeysWithValues: datasetColumns.enumerated().map { ($1, $0) })
            let order = names.map { index[$0]! }
            permutation = order == Array(0..<width) ? nil : order
        }
        header = names
    }
}
