import Foundation
import LoomCore
import LoomData

/// Evaluation rows from a registered dataset version's files (docs/evaluation.md, "Datasets"):
/// JSON Lines or CSV, one row per record. Numbers (a CSV cell that reads as one too) and
/// booleans keep their type; a text field
/// that holds a JSON array or object (a CSV cell `["a.md","b.md"]`, a JSON Lines nested value)
/// is that value.
public enum EvaluationDataset {
    public static func rows(_ files: [TableFile], limit: Int = 100_000) throws -> [[String: JSONValue]] {
        var sink = Collector(limit: limit)
        _ = try TableReader.read(files, into: &sink, digesting: false)
        return sink.rows
    }

    /// Rows as JSON Lines, the form a stored run keeps them in.
    public static func jsonLines(_ rows: [[String: JSONValue]]) -> String {
        var out = ""
        for row in rows {
            out += JSONValue.object(row).jsonString
            out += "\n"
        }
        return out
    }

    public static func parse(jsonLines text: String) throws(LoomError) -> [[String: JSONValue]] {
        var rows: [[String: JSONValue]] = []
        for (i, line) in text.split(separator: "\n").enumerated() where !line.allSatisfy(\.isWhitespace) {
            guard let row = try? JSONValue.parse(Array(line.utf8)).objectValue else {
                throw .invalidParameter("line \(i + 1): not a JSON object")
            }
            rows.append(row)
        }
        return rows
    }

    struct Collector: RowSink {
        let limit: Int
        var columns: [String] = []
        var rows: [[String: JSONValue]] = []

        mutating func begin(columns: [String]) throws { self.columns = columns }
        mutating func addColumn(_ name: String) throws { columns.append(name) }

        mutating func consume(_ row: Row) throws {
            guard rows.count < limit else {
                throw LoomError.invalidParameter("the dataset has more than \(limit) rows: at most \(limit) per evaluation run")
            }
            var out: [String: JSONValue] = [:]
            for i in 0..<min(row.count, columns.count) {
                switch row.kind(i) {
                case .null: continue
                case .bool: out[columns[i]] = .bool(row.string(i) == "true")
                case .number: out[columns[i]] = row.double(i).map { .number($0, raw: row.string(i)) } ?? .null
                case .text where row.double(i) != nil:
                    // A CSV cell that reads as a number is one (as pandas reads it).
                    out[columns[i]] = .number(row.double(i)!, raw: row.string(i))
                case .text, .string:
                    let text = row.string(i) ?? ""
                    if let first = text.first, first == "[" || first == "{", let nested = try? JSONValue.parse(Array(text.utf8)) {
                        out[columns[i]] = nested
                    } else {
                        out[columns[i]] = .string(text)
                    }
                }
            }
            rows.append(out)
        }
    }
}
