import Foundation
import LoomCore
import LoomData
import Testing

/// Collects every record as text (nil for missing), for checking what the parsers read.
struct CollectingSink: RowSink {
    var columns: [String] = []
    var rows: [[String?]] = []
    var kinds: [[FieldKind]] = []
    var lines: [Int] = []

    mutating func begin(columns: [String]) throws { self.columns = columns }
    mutating func addColumn(_ name: String) throws { columns.append(name) }
    mutating func consume(_ row: Row) throws {
        rows.append((0..<row.count).map { row.string($0) })
        kinds.append((0..<row.count).map { row.kind($0) })
        lines.append(row.line)
    }
}

enum DataFiles {
    static func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ dir: URL, _ name: String, _ text: String) throws -> String {
        try write(dir, name, Data(text.utf8))
    }

    static func write(_ dir: URL, _ name: String, _ data: Data) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url.path
    }

    /// gzip through the system's `gzip`, a tool independent of the code under test.
    static func gzip(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-k", "-f", path]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return path + ".gz"
    }

    static func csv(_ text: String, chunkSize: Int = 1 << 20) throws -> CollectingSink {
        let bytes = Array(text.utf8)
        var parser = CSVParser(sink: CollectingSink(), file: "t.csv")
        var i = 0
        while i < bytes.count {
            let end = min(i + chunkSize, bytes.count)
            try bytes[i..<end].withUnsafeBytes { try parser.feed($0) }
            i = end
        }
        try parser.finish()
        return parser.sink
    }

    static func profile(_ path: String) throws -> (TableContent, DatasetProfile) {
        var profiler = Profiler()
        let content = try TableReader.read(try TableFiles.list(path), into: &profiler)
        return (content, profiler.profile())
    }
}

@Suite("Reading CSV and JSON Lines")
struct DataReadingTests {
    static let tricky = "id,text,n\r\n1,\"a, \"\"quoted\"\" word\",3.5\r\n\r\n2,\"two\nlines\",\r\n3,plain \"inner\" quote,NA\n4,,-7"

    @Test("quoting, CRLF, blank lines and missing values read as RFC 4180 and pandas say")
    func quoting() throws {
        let r = try DataFiles.csv(Self.tricky)
        #expect(r.columns == ["id", "text", "n"])
        #expect(r.rows == [
            ["1", "a, \"quoted\" word", "3.5"],
            ["2", "two\nlines", nil],
            ["3", "plain \"inner\" quote", nil],
            ["4", nil, "-7"],
        ])
        #expect(r.lines == [2, 4, 6, 7])
    }

    @Test("records read the same whatever the chunk boundaries", arguments: [1, 2, 3, 7, 64])
    func chunkBoundaries(chunkSize: Int) throws {
        let whole = try DataFiles.csv(Self.tricky)
        let chunked = try DataFiles.csv(Self.tricky, chunkSize: chunkSize)
        #expect(chunked.rows == whole.rows)
        #expect(chunked.lines == whole.lines)
    }

    @Test("random records read the same in one chunk as byte by byte (the word-at-a-time scan against the plain loop)")
    func randomRecords() throws {
        var rng = SplitMix64(seed: 11)
        let alphabet = Array("abcXYZ0123456789.-é€ ".unicodeScalars)
        var text = "a,b,c\n"
        var expected: [[String?]] = []
        for _ in 0..<3000 {
            var row: [String?] = []
            var cells: [String] = []
            for _ in 0..<3 {
                let length = Int(rng.next() % 24)
                var value = String(String.UnicodeScalarView((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
                if value.hasPrefix(" ") || value.hasSuffix(" ") { value = "x" + value + "x" }
                if rng.next() % 5 == 0 {
                    value += ",\"q\"\nz"
                    cells.append("\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
                } else {
                    cells.append(value)
                }
                row.append(value.isEmpty ? nil : value)
            }
            text += cells.joined(separator: ",") + (rng.next() % 2 == 0 ? "\r\n" : "\n")
            expected.append(row)
        }
        let whole = try DataFiles.csv(text)
        #expect(whole.rows == expected)
        for size in [1, 5, 13, 4096] {
            #expect(try DataFiles.csv(text, chunkSize: size).rows == expected, "chunk size \(size)")
        }
    }

    @Test("malformed CSV is an error naming the file and line", arguments: [
        ("a,b\n1,2\n3\n", "t.csv, line 3: 1 fields, but the header has 2"),
        ("a,b\n1,2,3\n", "t.csv, line 2: 3 fields, but the header has 2"),
        ("a,b\n\"x\"y,2\n", "t.csv, line 2: text after the closing quote"),
        ("a,b\n1,\"open\n2,3\n", "t.csv, line 2: a quoted field is never closed"),
        ("a,a\n1,2\n", "the header names column a twice"),
        ("", "t.csv is empty"),
    ])
    func malformed(text: String, message: String) throws {
        let error = #expect(throws: LoomError.self) { try DataFiles.csv(text) }
        #expect(error?.code == .invalidParameter)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test("a record past the size limit is refused, not read into memory whole")
    func recordLimit() throws {
        let open = Array("a,b\n1,2\n3,\"never closed\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 5000)
        var csv = CSVParser(sink: CollectingSink(), file: "t.csv", recordLimit: 1000)
        var error = #expect(throws: LoomError.self) {
            for start in stride(from: 0, to: open.count, by: 256) {
                try open[start..<min(start + 256, open.count)].withUnsafeBytes { try csv.feed($0) }
            }
        }
        #expect(error?.message == "t.csv, line 3: a record longer than 1000 bytes (a quoted field opened on line 3 is never closed?)")
        // Records under the limit read as usual.
        #expect(csv.sink.rows == [["1", "2"]])

        let long = Array("{\"a\": \"".utf8) + Array(repeating: UInt8(ascii: "y"), count: 5000)
        var jsonl = JSONLinesParser(sink: CollectingSink(), file: "t.jsonl", recordLimit: 1000)
        error = #expect(throws: LoomError.self) {
            for start in stride(from: 0, to: long.count, by: 256) {
                try long[start..<min(start + 256, long.count)].withUnsafeBytes { try jsonl.feed($0) }
            }
        }
        #expect(error?.message == "t.jsonl, line 1: a line longer than 1000 bytes")
    }

    @Test("bytes that are not UTF-8 are an error naming the line and field")
    func invalidUTF8() throws {
        var parser = CSVParser(sink: CollectingSink(), file: "t.csv")
        let bytes: [UInt8] = Array("a,b\n1,x".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        let error = #expect(throws: LoomError.self) {
            try bytes.withUnsafeBytes { try parser.feed($0) }
            try parser.finish()
        }
        #expect(error?.message == "t.csv, line 2: field 2 is not valid UTF-8")
    }

    @Test("JSON Lines: keys become columns, absent keys are missing, nested values stay JSON")
    func jsonLines() throws {
        let dir = try DataFiles.folder()
        let path = try DataFiles.write(dir, "r.jsonl", """
            {"b": 1, "a": "x"}

            {"a": "3", "c": {"k": [1, true]}, "b": null}
            {"b": 2.5, "a": "y", "d": false}
            """)
        var sink = CollectingSink()
        _ = try TableReader.read(try TableFiles.list(path), into: &sink)
        #expect(sink.columns == ["a", "b", "c", "d"])
        #expect(sink.rows == [["x", "1"], ["3", nil, "{\"k\":[1,true]}"], ["y", "2.5", nil, "false"]])
        #expect(sink.kinds[1][0] == .string)
        #expect(sink.lines == [1, 3, 4])
        let (_, profile) = try DataFiles.profile(path)
        // The string "3" stays text; the first record had no c: it counts as missing.
        #expect(profile.column("a")?.type == .string)
        #expect(profile.column("b")?.type == .number)
        #expect(profile.column("c")?.nulls == 2)
        #expect(profile.column("d")?.type == .boolean)
    }

    @Test("malformed JSON Lines are an error naming the line", arguments: [
        ("{\"a\": 1}\n{\"a\": \n", "r.jsonl, line 2: not valid JSON"),
        ("{\"a\": 1}\n[1, 2]\n", "r.jsonl, line 2: a record must be a JSON object, not array"),
        ("\n\n", "r.jsonl is empty: it holds no JSON records"),
    ])
    func malformedJSONLines(text: String, message: String) throws {
        let dir = try DataFiles.folder()
        let path = try DataFiles.write(dir, "r.jsonl", text)
        let error = #expect(throws: LoomError.self) { try DataFiles.profile(path) }
        #expect(error?.message == message)
    }

    @Test("a gzipped file reads as the plain one; a truncated or corrupt one is an error")
    func gzip() throws {
        let dir = try DataFiles.folder()
        var text = "k,v\n"
        for i in 0..<200_000 { text += "\(i % 97),\(Double(i) / 8)\n" }
        let plain = try DataFiles.write(dir, "t.csv", text)
        let zipped = try DataFiles.gzip(plain)
        let (plainContent, plainProfile) = try DataFiles.profile(plain)
        let (zippedContent, zippedProfile) = try DataFiles.profile(zipped)
        #expect(plainProfile == zippedProfile)
        #expect(plainProfile.rows == 200_000)
        #expect(zippedContent.size < plainContent.size)
        #expect(zippedContent.digest != plainContent.digest)

        let bytes = try Data(contentsOf: URL(fileURLWithPath: zipped))
        let truncated = try DataFiles.write(dir, "cut.csv.gz", bytes.prefix(bytes.count / 2))
        #expect(throws: LoomError.self) { try DataFiles.profile(truncated) }
        var corrupt = bytes
        corrupt[corrupt.count / 2] ^= 0xFF
        let bad = try DataFiles.write(dir, "bad.csv.gz", corrupt)
        #expect(throws: LoomError.self) { try DataFiles.profile(bad) }
    }

    @Test("a folder reads its files in path order, aligning columns by name; other columns are an error")
    func folder() throws {
        let dir = try DataFiles.folder()
        _ = try DataFiles.write(dir, "part-2.csv", "b,a\n20,2\n")
        _ = try DataFiles.write(dir, "part-1.csv", "a,b\n1,10\n")
        _ = try DataFiles.write(dir, "notes.txt", "not a table")
        var sink = CollectingSink()
        let content = try TableReader.read(try TableFiles.list(dir.path), into: &sink)
        #expect(sink.columns == ["a", "b"])
        #expect(sink.rows == [["1", "10"], ["2", "20"]])
        #expect(content.files.map(\.path) == ["part-1.csv", "part-2.csv"])

        // The digest names the content: unchanged content, same digest; one byte more, another.
        let again = try TableReader.read(try TableFiles.list(dir.path), into: &sink)
        #expect(again.digest == content.digest)
        _ = try DataFiles.write(dir, "part-2.csv", "b,a\n20,2\n21,3\n")
        let changed = try TableReader.read(try TableFiles.list(dir.path), into: &sink)
        #expect(changed.digest != content.digest)

        _ = try DataFiles.write(dir, "part-3.csv", "a,c\n1,2\n")
        let error = #expect(throws: LoomError.self) { try TableReader.read(try TableFiles.list(dir.path), into: &sink) }
        #expect(error?.message.contains("part-3.csv: its columns differ") == true)
    }
}

@Suite("Column profiles")
struct ProfileTests {
    @Test("mean and std stay exact for large offsets, small spreads and drifting values, across chunks")
    func momentsAcrossChunks() throws {
        // Values 1e9 + (i % 7), then a slow upward drift: exact figures from integer sums.
        let n = 10_000
        var text = "v\n"
        var sum = 0
        var squares = 0
        for i in 0..<n {
            let offset = i % 7 + i / 1000
            text += "\(1_000_000_000 + offset)\n"
            sum += offset
            squares += offset * offset
        }
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, profile) = try DataFiles.profile(try DataFiles.write(dir, "v.csv", text))
        let column = try #require(profile.columns.first)
        let mean = Double(sum) / Double(n)
        let variance = (Double(squares) - Double(sum) * Double(sum) / Double(n)) / Double(n - 1)
        #expect(abs((column.mean ?? 0) - (1e9 + mean)) < 1e-6)
        #expect(abs((column.std ?? 0) - variance.squareRoot()) / variance.squareRoot() < 1e-9)
    }

    @Test("statistics match a direct computation over the same values")
    func statistics() throws {
        var rng = SplitMix64(seed: 42)
        var values: [Double] = []
        var text = "x,n,c\n"
        for i in 0..<20_000 {
            let v = Double(rng.next() % 1_000_000) / 1000 - 300
            if i % 10 == 3 {
                text += ",\(i % 5_000),\(["a", "b", "c", "b"][i % 4])\n"
            } else {
                values.append(v)
                text += "\(v),\(i % 5_000),\(["a", "b", "c", "b"][i % 4])\n"
            }
        }
        let dir = try DataFiles.folder()
        let (_, p) = try DataFiles.profile(try DataFiles.write(dir, "s.csv", text))
        let x = try #require(p.column("x"))
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        let sorted = values.sorted()
        #expect(p.rows == 20_000)
        #expect(x.type == .number)
        #expect(x.nulls == 2_000 && x.count == 18_000)
        #expect(abs(x.mean! - mean) < 1e-9 * abs(mean) + 1e-9)
        #expect(abs(x.std! - std) < 1e-9 * std)
        #expect(x.min == sorted.first && x.max == sorted.last)
        // Fewer values than the sample size: quantiles are exact (numpy's linear rule).
        let median = (sorted[8_999] + sorted[9_000]) / 2
        #expect(x.quantiles?.first { $0.q == 0.5 }?.value == median)
        #expect(x.quantilesApproximate == false)
        #expect(p.column("n")?.type == .integer)
        #expect(p.column("n")?.distinct == 5_000)
        #expect(p.column("n")?.distinctApproximate == false)
        let c = try #require(p.column("c"))
        #expect(c.type == .string)
        #expect(c.distinct == 3)
        #expect(c.top?.map(\.value) == ["b", "a", "c"])
        #expect(c.top?.first?.count == 10_000)
    }

    @Test("beyond the exact limits, distinct counts and quantiles are estimated closely")
    func estimates() throws {
        var text = "u\n"
        for i in 0..<100_000 { text += "\(i * 7919 % 100_003)\n" }
        let dir = try DataFiles.folder()
        let (_, p) = try DataFiles.profile(try DataFiles.write(dir, "u.csv", text))
        let u = try #require(p.column("u"))
        #expect(u.distinctApproximate)
        #expect(abs(Double(u.distinct) - 100_000) / 100_000 < 0.05, "\(u.distinct)")
        #expect(u.quantilesApproximate == true)
        let median = try #require(u.quantiles?.first { $0.q == 0.5 }?.value)
        #expect(abs(median - 50_000) < 2_000, "\(median)")
    }

    @Test("quality findings: no rows, all missing, one value, mixed types, infinities")
    func findings() throws {
        let dir = try DataFiles.folder()
        let (_, empty) = try DataFiles.profile(try DataFiles.write(dir, "e.csv", "a,b\n"))
        #expect(empty.findings.map(\.kind) == [.noRows])

        var text = "gone,same,mixed,big\n"
        for i in 0..<50 { text += ",k,\(i == 7 ? "oops" : String(i)),\(i == 3 ? "inf" : String(i))\n" }
        let (_, p) = try DataFiles.profile(try DataFiles.write(dir, "f.csv", text))
        #expect(p.column("gone")?.type == .empty)
        #expect(p.column("mixed")?.type == .string)
        // Integers with an infinity among them are numbers (as pandas reads them: float64).
        #expect(p.column("big")?.type == .number)
        #expect(p.column("big")?.nonFinite == 1)
        let byKind = Dictionary(grouping: p.findings, by: \.kind)
        #expect(byKind[.allNull]?.first?.column == "gone")
        #expect(byKind[.constant]?.first?.column == "same")
        #expect(byKind[.mixedTypes]?.first?.count == 1)
        #expect(byKind[.mixedTypes]?.first?.message.contains("\"oops\" at f.csv line 9") == true)
        #expect(byKind[.nonFinite]?.first?.column == "big")
    }

    @Test("the same content gives the same profile")
    func deterministic() throws {
        var text = "v\n"
        var rng = SplitMix64(seed: 7)
        for _ in 0..<70_000 { text += "\(rng.next() % 1000)\n" }
        let dir = try DataFiles.folder()
        let a = try DataFiles.write(dir, "a.csv", text)
        let b = try DataFiles.write(dir, "b.csv", text)
        #expect(try DataFiles.profile(a).1 == DataFiles.profile(b).1)
        #expect(try DataFiles.profile(a).0.digest == DataFiles.profile(b).0.digest)
    }
}

@Suite("Reading numbers")
struct NumberTextTests {
    static func parse(_ s: String) -> (value: Double, integral: Bool)? {
        var bytes = Array(s.utf8)
        return bytes.withUnsafeMutableBufferPointer { NumberText.parse(UnsafeBufferPointer($0)) }
    }

    @Test("the fast path reads decimals exactly as strtod does")
    func matchesStrtod() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<200_000 {
            let digits = Int(rng.next() % 20) + 1
            var text = rng.next() % 3 == 0 ? "-" : ""
            for d in 0..<digits { text += String(rng.next() % 10); if d == Int(rng.next() % UInt64(digits)) && !text.contains(".") { text += "." } }
            if rng.next() % 4 == 0 { text += "e\(Int(rng.next() % 60) - 30)" }
            let expected = Double(text)
            let parsed = Self.parse(text)
            let got = parsed?.value
            #expect(got == expected, "\(text)")
            #expect(parsed == nil || parsed?.integral == !(text.contains(".") || text.contains("e")), "\(text)")
            if got != expected { return }
        }
    }

    @Test("integers, specials, and what is not a number", arguments: [
        ("42", 42.0, true), ("-7", -7, true), ("+3", 3, true), ("3.0", 3, false), ("1e3", 1000, false), (".5", 0.5, false),
        ("12345678901234567890", 12345678901234567168, true), ("0.1", 0.1, false), ("5.", 5, false), ("-0.12345678", -0.12345678, false),
        ("3.1415926535897932", 3.1415926535897932, false), ("0.000000000000000000012", 1.2e-20, false), ("inf", .infinity, false), ("-Infinity", -.infinity, false),
    ])
    func numbers(text: String, value: Double, integral: Bool) {
        let r = Self.parse(text)
        #expect(r?.value == value && r?.integral == integral)
    }

    @Test("not numbers", arguments: ["", "-", ".", "1.2.3", "1e", "1e+", "0x10", " 1", "1 ", "abc", "1,5", "e5", "--1", "infinity!"])
    func notNumbers(text: String) {
        #expect(Self.parse(text) == nil)
    }
}

@Suite("Profiling on every core")
struct ParallelProfileTests {
    static func sequential(_ files: [TableFile]) throws -> (TableContent, DatasetProfile) {
        var profiler = Profiler()
        let content = try TableReader.read(files, into: &profiler)
        return (content, profiler.profile())
    }

    @Test("the parallel profile equals the one-thread profile, over several files and many batches", arguments: [2, 3, 4])
    func sameProfile(lanes: Int) throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 5)
        for (f, header) in ["b,a,c,d,e", "a,b,c,d,e"].enumerated() {
            var csv = header + "\n"
            for i in 0..<30_000 {
                let x = Double(rng.next() % 100_000) / 7
                let cat = ["red", "green", "blue"][Int(rng.next() % 3)]
                let a = i % 13 == 0 ? "" : "\(i)"
                csv += header == "b,a,c,d,e" ? "\(x),\(a),\(cat),\(i % 7 == 0 ? "oops" : String(i)),x y\n" : "\(a),\(x),\(cat),\(i),\"q,\(i % 50)\"\n"
            }
            _ = try DataFiles.write(dir, "part-\(f).csv", csv)
        }
        let files = try TableFiles.list(dir.path)
        let (c1, p1) = try Self.sequential(files)
        let (c2, p2) = try ParallelProfile.run(files, lanes: lanes)
        #expect(c1 == c2)
        #expect(p1 == p2)
        #expect(p2.rows == 60_000)
    }

    @Test("an error deep in the data reaches the caller, and nothing hangs")
    func errorsPropagate() throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var csv = "a,b\n"
        for i in 0..<50_000 { csv += "\(i),\(i)\n" }
        csv += "1,2,3\n"
        let path = try DataFiles.write(dir, "bad.csv", csv)
        let error = #expect(throws: LoomError.self) { try ParallelProfile.run(try TableFiles.list(path), lanes: 2) }
        #expect(error?.message == "bad.csv, line 50002: 3 fields, but the header has 2")
        let empty = try DataFiles.write(dir, "empty.csv", "")
        #expect(throws: LoomError.self) { try ParallelProfile.run(try TableFiles.list(empty), lanes: 2) }
        let headerOnly = try DataFiles.write(dir, "h.csv", "a,b\n")
        #expect(try ParallelProfile.run(try TableFiles.list(headerOnly), lanes: 2).1.rows == 0)
    }
}
