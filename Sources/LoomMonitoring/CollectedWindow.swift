import Foundation
import LoomCore
import LoomData
import Synchronization

/// An endpoint's collected requests and answers (docs/deployment.md, "Request collection") as a
/// table for monitoring: one row per scored row, with the request's input columns and the
/// answer's prediction (`prediction`, or `prediction.KEY` for answers that are objects). Fed
/// with the JSON Lines of the collection files of a time window, in any order.
public struct CollectedWindow: Sendable {
    public struct Options: Sendable {
        /// Records from this time on (milliseconds since the epoch; nil: no bound).
        public var from: Millis?
        /// Records before this time.
        public var to: Millis?
        /// Only this deployment's answers (nil: all).
        public var deployment: String?
        /// Mirrored copies count too (by default only answers given to callers do).
        public var includeMirrored = false
        /// Keep each row's answer with its correlation id (`predictions`), for model performance.
        public var keepPredictions = false

        public init(from: Millis? = nil, to: Millis? = nil, deployment: String? = nil, includeMirrored: Bool = false, keepPredictions: Bool = false) {
            self.from = from
            self.to = to
            self.deployment = deployment
            self.includeMirrored = includeMirrored
            self.keepPredictions = keepPredictions
        }
    }

    /// The name of the prediction column.
    public static let prediction = "prediction"

    public let options: Options
    /// Records read, used (in the window, a 2xx answer with JSON request and response) and
    /// left out for being malformed.
    public private(set) var records = 0
    public private(set) var used = 0
    public private(set) var malformed = 0
    /// Correlation id of each row, for joining labels.
    public private(set) var correlationIDs: [String] = []
    /// Each row's answer, when `keepPredictions`.
    public private(set) var predictions: [ModelPerformance.Prediction] = []

    var names: [String] = []
    var position: [String: Int] = [:]
    var builders: [Loader.Builder] = []
    /// The last row each column has a value for (to fill the rest as missing).
    var filled: [Int] = []
    /// The column indices of the last request's columns (most requests share them).
    var lastColumns: [String] = []
    var lastIndices: [Int] = []

    public init(options: Options = Options()) {
        self.options = options
    }

    public var rowCount: Int { correlationIDs.count }

    /// Reads whole lines (a file's bytes, or part of them ending at a line break).
    public mutating func add(lines bytes: UnsafeRawBufferPointer) {
        var start = 0
        let n = bytes.count
        while start < n {
            var end = start
            while end < n, bytes[end] != 0x0A { end += 1 }
            if end > start { add(line: UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
            start = end + 1
        }
    }

    /// Reads one collected record.
    public mutating func add(line: UnsafeRawBufferPointer) {
        records += 1
        guard let value = try? JSONValue.parse(line), case .object(let record) = value else {
            malformed += 1
            return
        }
        guard case .number(let status, _)? = record["status"], case .string(let correlation)? = record["correlation_id"] else {
            malformed += 1
            return
        }
        if case .number(let t, _)? = record["time_ms"] {
            if let from = options.from, Millis(t) < from { return }
            if let to = options.to, Millis(t) >= to { return }
        }
        if !options.includeMirrored, case .bool(true)? = record["mirrored"] { return }
        if let d = options.deployment, record["deployment"] != .string(d) { return }
        guard (200..<300).contains(Int(status)), let request = record["request"], let response = record["response"] else { return }
        guard let table = try? ScoringTable.read(request) else {
            malformed += 1
            return
        }
        var answers: [JSONValue] = []
        if case .object(let answer) = response, case .array(let p)? = answer["predictions"] { answers = p } else if case .array(let p) = response { answers = p }
        used += 1
        let columns = table.columns.isEmpty ? (0..<(table.rows.first?.count ?? 0)).map { "input_\($0)" } : table.columns
        if columns != lastColumns {
            lastColumns = columns
            lastIndices = []
            for name in columns { lastIndices.append(column(name)) }
        }
        let indices = lastIndices
        for (r, row) in table.rows.enumerated() {
            let stamp = correlationIDs.count
            for (k, v) in row.enumerated() where k < indices.count {
                append(v, to: indices[k], row: stamp)
            }
            let p = r < answers.count ? answers[r] : .null
            if options.keepPredictions { predictions.append(.init(correlationID: correlation, row: r, value: p)) }
            if case .object(let fields) = p {
                for (key, v) in fields { append(v, to: column("\(Self.prediction).\(key)"), row: stamp) }
            } else {
                append(p, to: column(Self.prediction), row: stamp)
            }
            // Columns this row lacks are missing in it.
            for i in builders.indices where filled[i] != stamp {
                builders[i].appendMissing()
                filled[i] = stamp
            }
            correlationIDs.append(correlation)
        }
    }

    /// The index of a column, added with every earlier row missing when it is new.
    mutating func column(_ name: String) -> Int {
        if let i = position[name] { return i }
        var b = Loader.Builder()
        for _ in 0..<correlationIDs.count { b.appendMissing() }
        position[name] = builders.count
        names.append(name)
        builders.append(b)
        filled.append(-1)
        return builders.count - 1
    }

    mutating func append(_ value: JSONValue, to i: Int, row: Int) {
        guard filled[i] != row else { return }  // a repeated key: the first value counts
        filled[i] = row
        switch value {
        case .null:
            builders[i].appendMissing()
        case .number(let v, let raw):
            builders[i].appendNumber(v, integral: raw.map { !$0.contains(".") && !$0.contains("e") && !$0.contains("E") } ?? (v == v.rounded()))
        case .string(let s):
            builders[i].appendText(s)
        case .bool(let b):
            builders[i].appendText(b ? "True" : "False")
        case .array, .object:
            builders[i].appendText(value.compactText)
        }
    }

    /// Adds the rows of `other` (read from other files) after this window's.
    public mutating func append(contentsOf other: CollectedWindow) {
        let mine = rowCount
        for (j, name) in other.names.enumerated() {
            if let i = position[name] {
                builders[i].append(contentsOf: other.builders[j])
            } else {
                var b = Loader.Builder()
                b.appendMissing(count: mine)
                b.append(contentsOf: other.builders[j])
                position[name] = builders.count
                names.append(name)
                builders.append(b)
                filled.append(-1)
            }
        }
        for (i, name) in names.enumerated() where !other.names.contains(name) { builders[i].appendMissing(count: other.rowCount) }
        records += other.records
        used += other.used
        malformed += other.malformed
        correlationIDs += other.correlationIDs
        predictions += other.predictions
        for i in filled.indices { filled[i] = -1 }
        lastColumns = []
    }

    /// The window as a table (the builders are emptied).
    public mutating func table() -> DriftTable {
        let rows = correlationIDs.count
        var columns: [DriftTable.Values] = []
        for i in builders.indices { columns.append(builders[i].finish()) }
        return DriftTable(names: names, columns: columns, rowCount: rows)
    }
}

extension CollectedWindow {
    /// Reads every collection file under `folder` (`*.jsonl` and `*.jsonl.gz` at any depth;
    /// `labels` folders left out): an endpoint's folder, a day's or an hour's.
    public static func read(folder: String, options: Options = Options()) throws -> CollectedWindow {
        try read(folders: [folder], options: options)
    }

    /// The collection files under a folder (labels left out), by path.
    public static func collectionFiles(under folder: String) -> [String] {
        var found: [String] = []
        let walker = FileManager.default.enumerator(at: URL(fileURLWithPath: folder), includingPropertiesForKeys: nil)
        while let url = walker?.nextObject() as? URL {
            if url.lastPathComponent == "labels" {
                walker?.skipDescendants()
                continue
            }
            if url.path.hasSuffix(".jsonl") || url.path.hasSuffix(".jsonl.gz") { found.append(url.path) }
        }
        return found.sorted()
    }

    /// Reads every collection file under each of `folders` (hour folders of one window, say),
    /// in order, the files shared between two threads.
    public static func read(folders: [String], options: Options = Options()) throws -> CollectedWindow {
        var files: [String] = []
        for folder in folders {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else { throw LoomError.notFound("No such file or folder: \(folder)") }
            guard isFolder.boolValue else {
                files.append(folder)
                continue
            }
            files += collectionFiles(under: folder)
        }
        // Files are read on two threads, each into a window of its own; then joined in order.
        let halves = [files.enumerated().filter { $0.offset % 2 == 0 }.map(\.element), files.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)]
        let parts = Mutex<[Int: Result<CollectedWindow, any Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: 2) { k in
            let r = Result { () throws -> CollectedWindow in
                var w = CollectedWindow(options: options)
                for file in halves[k] { try w.read(file: file) }
                return w
            }
            parts.withLock { $0[k] = r }
        }
        var (window, second) = try parts.withLock { (try $0[0]!.get(), try $0[1]!.get()) }
        window.append(contentsOf: second)
        return window
    }
}

extension CollectedWindow {
    /// Reads one collection file (lines may cross the chunks it is read in).
    mutating func read(file: String) throws {
        var carry: [UInt8] = []
        _ = try FileBytes.stream(file, digesting: false) { chunk in
            guard let last = chunk.lastIndex(of: 0x0A) else {
                carry.append(contentsOf: chunk)
                return
            }
            if carry.isEmpty {
                add(lines: UnsafeRawBufferPointer(rebasing: chunk[..<last]))
            } else {
                carry.append(contentsOf: chunk[..<last])
                carry.withUnsafeBytes { add(lines: $0) }
                carry.removeAll(keepingCapacity: true)
            }
            carry.append(contentsOf: chunk[(last + 1)...])
        }
        if !carry.isEmpty { carry.withUnsafeBytes { add(lines: $0) } }
    }
}

extension JSONValue {
    /// Compact JSON text (arrays and objects as feature values are compared as their text).
    var compactText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let v, let raw): return raw ?? String(v)
        case .string(let s): return JSONValue.quoted(s)
        case .array(let items): return "[" + items.map(\.compactText).joined(separator: ",") + "]"
        case .object(let fields): return "{" + fields.keys.sorted().map { JSONValue.quoted($0) + ":" + fields[$0]!.compactText }.joined(separator: ",") + "}"
        }
    }
}
