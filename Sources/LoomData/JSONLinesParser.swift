import Foundation
import LoomCore

/// A streaming JSON Lines parser: one JSON object per line, blank lines skipped. Columns are the
/// keys in the order first seen (the keys new in one record sorted by name); a record without a
/// key has a null there. Nested arrays and objects are kept as their JSON text.
public struct JSONLinesParser<Sink: RowSink> {
    public var sink: Sink
    let file: String
    private var row = Row()
    private var pending: [UInt8] = []
    private var line = 0
    private var columns: [String] = []
    private var index: [String: Int] = [:]
    private var begun = false
    private let decoder = JSONDecoder()

    let recordLimit: Int

    public init(sink: Sink, file: String, recordLimit: Int = RecordLimit.bytes) {
        self.recordLimit = recordLimit
        self.sink = sink
        self.file = file
        row.file = file
    }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) throws {
        var start = 0
        for i in 0..<chunk.count where chunk[i] == UInt8(ascii: "\n") {
            if pending.isEmpty {
                try record(UnsafeRawBufferPointer(rebasing: chunk[start..<i]))
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<i]))
                let text = pending
                pending.removeAll(keepingCapacity: true)
                try text.withUnsafeBytes { try record($0) }
            }
            start = i + 1
        }
        if start < chunk.count {
            guard pending.count + (chunk.count - start) <= recordLimit else {
                throw LoomError.invalidParameter("\(file), line \(line + 1): a line longer than \(recordLimit) bytes")
            }
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start...]))
        }
    }

    public mutating func finish() throws {
        if !pending.isEmpty {
            let text = pending
            pending.removeAll()
            try text.withUnsafeBytes { try record($0) }
        }
        if !begun { throw LoomError.invalidParameter("\(file) is empty: it holds no JSON records") }
    }

    private mutating func record(_ text: UnsafeRawBufferPointer) throws {
        line += 1
        if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        guard String(validating: text, as: UTF8.self) != nil else {
            throw LoomError.invalidParameter("\(file), line \(line): not valid UTF-8")
        }
        let value: JSONValue
        do {
            value = try decoder.decode(JSONValue.self, from: Data(text))
        } catch {
            throw LoomError.invalidParameter("\(file), line \(line): not valid JSON")
        }
        guard case .object(let fields) = value else {
            throw LoomError.invalidParameter("\(file), line \(line): a record must be a JSON object, not \(value.typeName)")
        }
        let new = fields.keys.filter { index[$0] == nil }.sorted()
        for key in new {
            index[key] = columns.count
            columns.append(key)
            if begun { try sink.addColumn(key) }
        }
        if !begun {
            begun = true
            try sink.begin(columns: columns)
        }
        row.reset()
        row.line = line
        for name in columns {
            switch fields[name] ?? .null {
            case .null: row.endField(.null)
            case .bool(let b):
                row.bytes.append(contentsOf: (b ? "true" : "false").utf8)
                row.endField(.bool)
            case .number(let d, let raw):
                row.bytes.append(contentsOf: (raw ?? JSONLines.text(d)).utf8)
                row.endField(.number)
            case .string(let s):
                row.bytes.append(contentsOf: s.utf8)
                row.endField(.string)
            case let nested:
                row.bytes.append(contentsOf: JSONLines.json(nested).utf8)
                row.endField(.string)
            }
        }
        try sink.consume(row)
    }
}

/// Writing JSON Lines values back as text.
enum JSONLines {
    static func text(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    static func json(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d, let raw): return raw ?? text(d)
        case .string(let s):
            let data = (try? JSONEncoder().encode(s)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { json(.string($0)) + ":" + json(o[$0]!) }.joined(separator: ",") + "}"
        }
    }
}
