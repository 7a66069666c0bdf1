import LoomCore

/// A streaming CSV parser (RFC 4180): fed chunks of bytes, it hands each complete record to a
/// sink. Quoted fields may hold delimiters, doubled quotes and line breaks; a quote inside an
/// unquoted field is kept as text (as Python's csv module and pandas do). Lines end with LF or
/// CRLF; blank lines are skipped. The first record names the columns.
///
/// Errors, each naming the file and line: a record with more or fewer fields than the header,
/// text after a closing quote, a quoted field left open at the end, bytes that are not UTF-8,
/// a duplicate column name, an empty file.
public struct CSVParser<Sink: RowSink> {
    public var sink: Sink
    let delimiter: UInt8
    let file: String
    let recordLimit: Int
    private let row = Row()
    // The record being read; handed to the sink in `row` (swapped in and out: no copy).
    private var bytes: [UInt8] = []
    private var ends: [Int] = []
    private var kinds: [FieldKind] = []
    private var recordLine = 1
    private var state = State.fieldStart
    private var columns: [String]?
    /// The physical line being read, and the one the current record started on.
    private var line = 1
    private var quotedStartLine = 0
    private var nonASCII: UInt8 = 0

    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted, quoteThenCR }

    public init(sink: Sink, delimiter: UInt8 = UInt8(ascii: ","), file: String, recordLimit: Int = RecordLimit.bytes) {
        self.recordLimit = recordLimit
        self.sink = sink
        self.delimiter = delimiter
        self.file = file
        row.file = file
        bytes.reserveCapacity(4096)
    }

    private static var quote: UInt8 { UInt8(ascii: "\"") }
    private static var lf: UInt8 { UInt8(ascii: "\n") }
    private static var cr: UInt8 { UInt8(ascii: "\r") }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) throws {
        let n = chunk.count
        var i = 0
        let delimiter = self.delimiter
        while i < n {
            switch state {
            case .fieldStart:
                let b = chunk[i]
                if b == Self.quote {
                    state = .quoted
                    quotedStartLine = line
                    i += 1
                } else if b == delimiter {
                    try endField(quoted: false, atLineEnd: false)
                    i += 1
                } else if b == Self.lf {
                    try endField(quoted: false, atLineEnd: true)
                    try endRecord()
                    line += 1
                    i += 1
                } else {
                    state = .unquoted
                }
            case .unquoted:
                // Copy up to the next delimiter or line end in one go.
                let j = CSVScan.next(chunk, from: i, delimiter: delimiter, nonASCII: &nonASCII)
                if j > i { try take(chunk, i, j) }
                i = j
                if j < n {
                    let b = chunk[j]
                    try endField(quoted: false, atLineEnd: b == Self.lf)
                    state = .fieldStart
                    if b == Self.lf {
                        try endRecord()
                        line += 1
                    }
                    i += 1
                }
            case .quoted:
                var j = i
                while j < n {
                    let b = chunk[j]
                    if b == Self.quote { break }
                    if b == Self.lf { line += 1 }
                    nonASCII |= b
                    j += 1
                }
                if j > i { try take(chunk, i, j) }
                i = j
                if j < n {
                    state = .quoteInQuoted
                    i += 1
                }
            case .quoteInQuoted:
                let b = chunk[i]
                i += 1
                if b == Self.quote {
                    bytes.append(Self.quote)
                    state = .quoted
                } else if b == delimiter {
                    try endField(quoted: true, atLineEnd: false)
                    state = .fieldStart
                } else if b == Self.lf {
                    try endField(quoted: true, atLineEnd: true)
                    try endRecord()
                    line += 1
                    state = .fieldStart
                } else if b == Self.cr {
                    state = .quoteThenCR
                } else {
                    throw error("text after the closing quote of a field (a quote inside a quoted field must be doubled)")
                }
            case .quoteThenCR:
                guard chunk[i] == Self.lf else { throw error("text after the closing quote of a field") }
                i += 1
                try endField(quoted: true, atLineEnd: true)
                try endRecord()
                line += 1
                state = .fieldStart
            }
        }
    }

    /// Ends the input: the last record may lack its line break.
    public mutating func finish() throws {
        switch state {
        case .quoted:
            throw LoomError.invalidParameter("\(file), line \(quotedStartLine): a quoted field is never closed")
        case .quoteThenCR, .quoteInQuoted:
            try endField(quoted: true, atLineEnd: true)
            try endRecord()
        case .unquoted:
            try endField(quoted: false, atLineEnd: true)
            try endRecord()
        case .fieldStart:
            if !ends.isEmpty {
                try endField(quoted: false, atLineEnd: true)
                try endRecord()
            }
        }
        if columns == nil { throw LoomError.invalidParameter("\(file) is empty: a CSV file needs a header row") }
    }

    /// Appends `chunk[i..<j]` to the record, refusing records past `RecordLimit.bytes`.
    private mutating func take(_ chunk: UnsafeRawBufferPointer, _ i: Int, _ j: Int) throws {
        guard bytes.count + (j - i) <= recordLimit else {
            let hint = state == .quoted ? " (a quoted field opened on line \(quotedStartLine) is never closed?)" : ""
            throw LoomError.invalidParameter("\(file), line \(recordLine): a record longer than \(recordLimit) bytes\(hint)")
        }
        bytes.append(contentsOf: UnsafeBufferPointer(start: chunk.baseAddress!.assumingMemoryBound(to: UInt8.self) + i, count: j - i))
    }

    private func error(_ message: String) -> LoomError {
        .invalidParameter("\(file), line \(line): \(message)")
    }

    private mutating func endField(quoted: Bool, atLineEnd: Bool) throws {
        let start = ends.last ?? 0
        if !quoted, atLineEnd, bytes.count > start, bytes.last == Self.cr { bytes.removeLast() }
        let length = bytes.count - start
        // Null tokens are at most four bytes long.
        let kind: FieldKind = length == 0 ? .null : length > 4 ? .text : bytes.withUnsafeBufferPointer { b in
            NumberText.isNullToken(UnsafeBufferPointer(rebasing: b[start...])) ? .null : .text
        }
        ends.append(bytes.count)
        kinds.append(kind)
    }

    private func field(_ i: Int) -> String {
        String(decoding: bytes[(i == 0 ? 0 : ends[i - 1])..<ends[i]], as: UTF8.self)
    }

    private mutating func endRecord() throws {
        defer {
            bytes.removeAll(keepingCapacity: true)
            ends.removeAll(keepingCapacity: true)
            kinds.removeAll(keepingCapacity: true)
            nonASCII = 0
            recordLine = line + 1
        }
        // A blank line.
        if ends.count == 1, ends[0] == 0 { return }
        if nonASCII & 0x80 != 0 { try checkUTF8() }
        guard let columns else {
            try begin()
            return
        }
        if ends.count != columns.count {
            throw LoomError.invalidParameter("\(file), line \(recordLine): \(ends.count) fields, but the header has \(columns.count)")
        }
        swap(&row.bytes, &bytes)
        swap(&row.ends, &ends)
        swap(&row.kinds, &kinds)
        row.line = recordLine
        defer {
            swap(&row.bytes, &bytes)
            swap(&row.ends, &ends)
            swap(&row.kinds, &kinds)
        }
        try sink.consume(row)
    }

    private func checkUTF8() throws {
        for i in 0..<ends.count {
            let valid = bytes[(i == 0 ? 0 : ends[i - 1])..<ends[i]].withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) != nil }
            if !valid { throw LoomError.invalidParameter("\(file), line \(recordLine): field \(i + 1) is not valid UTF-8") }
        }
    }

    private mutating func begin() throws {
        var names: [String] = []
        var seen: Set<String> = []
        for i in 0..<ends.count {
            var name = field(i)
            if name.isEmpty { name = "column_\(i + 1)" }
            guard seen.insert(name).inserted else {
                throw LoomError.invalidParameter("\(file), line \(recordLine): the header names column \(name) twice")
            }
            names.append(name)
        }
        columns = names
        try sink.begin(columns: names)
    }
}

/// Finds the end of an unquoted field.
enum CSVScan {
    /// The position of the first delimiter or line feed at or after `i` (or the end), eight
    /// bytes at a time: a byte equal to `d` is a zero byte of `word ^ broadcast(d)`, and
    /// `(x - 0x01..) & ~x & 0x80..` marks zero bytes (exactly up to the first, which is the one
    /// wanted). `nonASCII` collects the high bits seen (a superset is harmless: it only asks for
    /// the record's UTF-8 to be checked).
    @inline(__always)
    static func next(_ chunk: UnsafeRawBufferPointer, from i: Int, delimiter: UInt8, nonASCII: inout UInt8) -> Int {
        let n = chunk.count
        var j = i
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let d = UInt64(delimiter) &* ones
        let l = UInt64(0x0A) &* ones
        var high: UInt64 = 0
        while j + 8 <= n {
            let w = chunk.loadUnaligned(fromByteOffset: j, as: UInt64.self)
            high |= w
            let x = w ^ d
            let y = w ^ l
            let hits = ((x &- ones) & ~x & highs) | ((y &- ones) & ~y & highs)
            if hits != 0 {
                if high & highs != 0 { nonASCII |= 0x80 }
                return j + hits.trailingZeroBitCount / 8
            }
            j += 8
        }
        if high & highs != 0 { nonASCII |= 0x80 }
        while j < n {
            let b = chunk[j]
            if b == delimiter || b == 0x0A { break }
            nonASCII |= b
            j += 1
        }
        return j
    }
}
