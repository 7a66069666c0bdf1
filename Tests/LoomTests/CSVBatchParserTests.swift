import Foundation
import LoomCore
@testable import LoomData
import Testing

/// The batch parser (the readers that share work between cores) against `CSVParser` (the
/// record-by-record reader the rest of the product uses): the same records, kinds, lines and
/// errors, whatever the chunk and batch sizes.
@Suite("Parsing CSV into batches")
struct CSVBatchParserTests {
    struct Parsed: Equatable {
        var columns: [String] = []
        var rows: [[String?]] = []
        var kinds: [[FieldKind]] = []
        var lines: [Int] = []
        /// Batches read without per-field bounds (quote-free records, one pass).
        var implicit = 0
    }

    /// Feeds `text` in chunks of `chunk` bytes, through blocks with room in front (as the file
    /// reader does) when `blocks`, else through copies.
    static func batches(_ text: String, chunk: Int, target: Int, blocks: Bool) throws -> Parsed {
        let bytes = Array(text.utf8)
        let parser = CSVBatchParser(delimiter: UInt8(ascii: ","), file: "t.csv", columns: nil, targetBytes: target)
        var out = Parsed()
        func take(_ batch: RowBatch?) {
            guard let batch else { return }
            if batch.starts == nil { out.implicit += 1 }
            for r in 0..<batch.count {
                let fields = (0..<batch.columns).map { batch.field(r * batch.columns + $0) }
                out.rows.append(fields.map { FieldKinds.of($0) == .null ? nil : String(decoding: $0, as: UTF8.self) })
                out.kinds.append(fields.map { FieldKinds.of($0) })
                out.lines.append(batch.line(r))
            }
        }
        var i = 0
        while i < bytes.count {
            let end = min(i + chunk, bytes.count)
            if blocks {
                let block = ByteBlock(capacity: FileBytes.headroom + end - i)
                bytes[i..<end].withUnsafeBufferPointer { (block.base + FileBytes.headroom).update(from: $0.baseAddress!, count: end - i) }
                take(try parser.feed(block, offset: FileBytes.headroom, length: end - i))
            } else {
                take(try bytes[i..<end].withUnsafeBytes { try parser.feed($0) })
            }
            i = end
        }
        take(try parser.finish())
        out.columns = parser.header ?? []
        return out
    }

    static func reference(_ text: String) throws -> Parsed {
        let sink = try DataFiles.csv(text)
        return Parsed(columns: sink.columns, rows: sink.rows, kinds: sink.kinds, lines: sink.lines)
    }

    static func randomCSV(seed: UInt64, rows: Int, quotes: Bool, blankLines: Bool) -> String {
        var rng = SplitMix64(seed: seed)
        let alphabet = Array("abcxyz019 .-é€".unicodeScalars)
        let tokens = ["NA", "null", "n/a", "nan", "-nan", "#N/A", "<NA>", "None", "NULL", "N/A", "NaN", "-NaN", "NAN", "n1", "Nu", "-1", ""]
        var text = "a,b,c,d\n"
        for r in 0..<rows {
            var cells: [String] = []
            for _ in 0..<4 {
                var value: String
                switch rng.next() % 4 {
                case 0: value = tokens[Int(rng.next() % UInt64(tokens.count))]
                case 1: value = String(Double(Int(rng.next() % 20_000)) / 100 - 100)
                default:
                    let length = Int(rng.next() % 12)
                    value = String(String.UnicodeScalarView((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
                }
                if quotes, rng.next() % 7 == 0 {
                    value += "\"q\",\nz"
                    cells.append("\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
                } else {
                    cells.append(value)
                }
            }
            text += cells.joined(separator: ",")
            text += r % 97 == 5 ? "\r\n" : "\n"
            if blankLines, r % 331 == 7 { text += "\n" }
        }
        return text
    }

    @Test("random records read as CSVParser reads them", arguments: [(false, false), (false, true), (true, true)])
    func sameAsRecordByRecord(quotes: Bool, blankLines: Bool) throws {
        let text = Self.randomCSV(seed: quotes ? 7 : 8, rows: 3_000, quotes: quotes, blankLines: blankLines)
        let expected = try Self.reference(text)
        #expect(expected.rows.count == 3_000)
        for (chunk, target) in [(1 << 20, 1 << 20), (4096, 2048), (997, 5000), (64, 100), (7, 1)] {
            for blocks in [false, true] {
                let got = try Self.batches(text, chunk: chunk, target: target, blocks: blocks)
                #expect(got.columns == expected.columns)
                #expect(got.rows == expected.rows, "chunk \(chunk), target \(target), blocks \(blocks)")
                #expect(got.kinds == expected.kinds, "chunk \(chunk), target \(target), blocks \(blocks)")
                #expect(got.lines == expected.lines, "chunk \(chunk), target \(target), blocks \(blocks)")
                if !quotes, !blankLines, chunk < text.utf8.count, chunk >= 64 {
                    // Quote-free data goes the one-pass way (not the first batch: the header).
                    #expect(got.implicit > 0, "chunk \(chunk), target \(target), blocks \(blocks)")
                }
            }
        }
    }

    @Test("the same errors, naming the same lines", arguments: [
        ("a,b\n1,2\n3\n", "t.csv, line 3: 1 fields, but the header has 2"),
        ("a,b\n1,2,3\n", "t.csv, line 2: 3 fields, but the header has 2"),
        ("a,b\n\"x\"y,2\n", "t.csv, line 2: text after the closing quote"),
        ("a,b\n1,\"open\n2,3\n", "t.csv, line 2: a quoted field is never closed"),
        ("a,a\n1,2\n", "t.csv, line 1: the header names column a twice"),
        ("", "t.csv is empty"),
        ("a,b\n1,x\u{00e9}\n", ""),
    ])
    func errors(text: String, message: String) throws {
        // Enough good records first that the bad one is past the first batch.
        let good = String(repeating: "5,6\n", count: 300)
        for (k, text) in [text, text.isEmpty ? text : text.replacingOccurrences(of: "\n1,", with: "\n" + good + "1,")].enumerated() {
            let reference = Result { try Self.reference(text) }
            for (chunk, target) in [(1 << 20, 1 << 20), (64, 256), (3, 1)] {
                for blocks in [false, true] {
                    let got = Result { try Self.batches(text, chunk: chunk, target: target, blocks: blocks) }
                    switch (reference, got) {
                    case (.success(let a), .success(let b)):
                        #expect(message.isEmpty)
                        #expect(a.rows == b.rows && a.lines == b.lines)
                    case (.failure(let a as LoomError), .failure(let b as LoomError)):
                        #expect(a.message == b.message, "chunk \(chunk)")
                        if k == 0 { #expect(b.message.contains(message), "\(b.message)") }
                    default:
                        Issue.record("CSVParser: \(reference), batches: \(got)")
                    }
                }
            }
        }
    }

    @Test("bytes that are not UTF-8 are refused, naming the line and field")
    func invalidUTF8() throws {
        let text = "a,b\n" + String(repeating: "1,2\n", count: 100)
        var bytes = Array(text.utf8) + Array("3,x".utf8) + [0xC3, 0x28] + Array("\n4,5\n".utf8)
        bytes += Array(String(repeating: "6,7\n", count: 100).utf8)
        for chunk in [bytes.count, 50] {
            let parser = CSVBatchParser(delimiter: UInt8(ascii: ","), file: "t.csv", columns: nil, targetBytes: 64)
            let error = #expect(throws: LoomError.self) {
                var i = 0
                while i < bytes.count {
                    let end = min(i + chunk, bytes.count)
                    _ = try bytes[i..<end].withUnsafeBytes { try parser.feed($0) }
                    i = end
                }
                _ = try parser.finish()
            }
            #expect(error?.message == "t.csv, line 102: field 2 is not valid UTF-8")
        }
    }

    @Test("a record longer than the limit is refused, and a quote never closed says so")
    func recordLimit() throws {
        let open = Array("a,b\n1,2\n3,\"never closed\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 5000)
        let parser = CSVBatchParser(delimiter: UInt8(ascii: ","), file: "t.csv", columns: nil, targetBytes: 100, recordLimit: 1000)
        var rows = 0
        let error = #expect(throws: LoomError.self) {
            for start in stride(from: 0, to: open.count, by: 256) {
                rows += try open[start..<min(start + 256, open.count)].withUnsafeBytes { try parser.feed($0) }?.count ?? 0
            }
        }
        #expect(error?.message == "t.csv, line 3: a record longer than 1000 bytes (a quoted field opened on line 3 is never closed?)")
        #expect(rows == 1)
    }

    @Test("a later file's columns are placed in the first file's order; other columns are an error")
    func otherOrder() throws {
        let parser = CSVBatchParser(delimiter: UInt8(ascii: ","), file: "b.csv", columns: ["x", "y", "z"], targetBytes: 16)
        var cells: [[String]] = []
        for chunk in ["z,x,y\n3,1,2\n", String(repeating: "6,4,5\n", count: 20)] {
            if let batch = try Array(chunk.utf8).withUnsafeBytes({ try parser.feed($0) }) {
                for r in 0..<batch.count { cells.append((0..<3).map { String(decoding: batch.field(r * 3 + $0), as: UTF8.self) }) }
            }
        }
        if let batch = try parser.finish() {
            for r in 0..<batch.count { cells.append((0..<3).map { String(decoding: batch.field(r * 3 + $0), as: UTF8.self) }) }
        }
        #expect(cells.first == ["1", "2", "3"])
        #expect(cells.count == 21 && cells.dropFirst().allSatisfy { $0 == ["4", "5", "6"] })

        let other = CSVBatchParser(delimiter: UInt8(ascii: ","), file: "c.csv", columns: ["x", "y"], targetBytes: 16)
        let error = #expect(throws: LoomError.self) {
            _ = try Array("x,w\n1,2\n".utf8).withUnsafeBytes { try other.feed($0) }
            _ = try other.finish()
        }
        #expect(error?.message == "c.csv: its columns differ from the first file's (missing: y; extra: w)")
    }

    @Test("field kinds: every null token and nothing else, read a word at a time")
    func kinds() throws {
        let candidates = NumberText.nullTokenList.map { String(decoding: $0, as: UTF8.self) }
            + ["", "N", "NA ", "NAN", "nA", "Null", "-na", "<na>", "#n/a", "none", "-", "n", "1", "true", "NaNs", "NULL!", "abcd"]
        for c in candidates {
            let block = ByteBlock(capacity: 16)
            let bytes = Array(c.utf8)
            // Junk after the value, which a word read must not see.
            (block.base).update(repeating: UInt8(ascii: "A"), count: 16)
            bytes.withUnsafeBufferPointer { if let b = $0.baseAddress { block.base.update(from: b, count: bytes.count) } }
            let kind = FieldKinds.of(UnsafeBufferPointer(start: block.base, count: bytes.count))
            // Both readers' test against the list itself.
            let expected = bytes.isEmpty || NumberText.nullTokenList.contains(bytes)
            #expect((kind == .null) == expected, "\(c)")
            #expect(bytes.withUnsafeBufferPointer { NumberText.isNullToken($0) } == expected, "\(c)")
        }
    }

    @Test("fingerprints read a word at a time equal those read byte by byte")
    func paddedFingerprints() throws {
        var rng = SplitMix64(seed: 3)
        let block = ByteBlock(capacity: 64)
        for _ in 0..<2_000 {
            for k in 0..<64 { block.base[k] = UInt8(truncatingIfNeeded: rng.next()) }
            let start = Int(rng.next() % 32)
            let length = Int(rng.next() % 20)
            let b = UnsafeBufferPointer(start: block.base + start, count: length)
            #expect(CountTable.fingerprint(padded: b) == CountTable.fingerprint(b))
        }
    }

    @Test("the fingerprint set: inserts once, finds what it holds, grows, and keeps 0")
    func fingerprintSet() throws {
        let set = FingerprintSet()
        var rng = SplitMix64(seed: 11)
        var reference: Set<UInt64> = []
        for _ in 0..<50_000 {
            let h = rng.next() % 30_000 == 0 ? 0 : rng.next() % 40_000 &* 0x9E37_79B9_7F4A_7C15
            #expect(set.insert(h) == reference.insert(h).inserted)
        }
        #expect(set.count == reference.count)
        for h in reference { #expect(set.contains(h)) }
        #expect(!set.contains(12_345))
    }
}
