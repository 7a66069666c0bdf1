import LoomCore
import SQLKit
import Synchronization

/// Hot statements as plain SQL text with `?` placeholders (numbered once per text and cached for
/// PostgreSQL), so that running them costs no query-builder serialization.
struct SQLTemplateExpression: SQLExpression {
    let text: String
    let binds: [any Encodable & Sendable]

    private static let translations = Mutex<[String: String]>([:])

    func serialize(to serializer: inout SQLSerializer) {
        if serializer.dialect.name == "postgresql" {
            let text = self.text
            serializer.write(Self.translations.withLock { cache -> String in
                if let hit = cache[text] { return hit }
                let t = Self.numberPlaceholders(text)
                if cache.count > 4096 { cache.removeAll() }
                cache[text] = t
                return t
            })
        } else {
            serializer.write(text)  // SQLite takes `?` as it is.
        }
        serializer.binds.append(contentsOf: binds)
    }

    /// `?` → `$1, $2, …` (PostgreSQL). Templates hold no `?` inside string literals.
    static func numberPlaceholders(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        var n = 0
        for c in text {
            if c == "?" {
                n += 1
                out += "$\(n)"
            } else {
                out.append(c)
            }
        }
        return out
    }
}

extension SQLDatabase {
    /// Runs a `?`-placeholder statement with `binds`.
    func run(template text: String, _ binds: [any Encodable & Sendable]) async throws {
        try await execute(sql: SQLTemplateExpression(text: text, binds: binds)) { _ in }
    }

    /// Runs a `?`-placeholder query and returns its rows.
    func rows(template text: String, _ binds: [any Encodable & Sendable]) async throws -> [any SQLRow] {
        let collected = RowCollector()
        try await execute(sql: SQLTemplateExpression(text: text, binds: binds)) { collected.append($0) }
        return collected.rows
    }
}

/// Collects rows delivered to a `@Sendable` callback.
final class RowCollector: Sendable {
    private let storage = Mutex<[any SQLRow]>([])
    func append(_ row: any SQLRow) { storage.withLock { $0.append(row) } }
    var rows: [any SQLRow] { storage.withLock { $0 } }
}

/// `(?, ?, ?), (?, ?, ?)` for `rows` rows of `columns` values.
func placeholderRows(_ rows: Int, _ columns: Int) -> String {
    let one = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
    return Array(repeating: one, count: rows).joined(separator: ", ")
}
