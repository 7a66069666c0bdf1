import Foundation
import LoomCore
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit

/// sql-kit's `SQLDatabase` over a ``SQLiteHandle``: queries are built and serialized by sql-kit
/// with its SQLite dialect, then run synchronously on the handle.
struct DirectSQLiteDatabase: SQLDatabase {
    let handle: SQLiteHandle
    let logger: Logger
    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        do {
            try run(query, onRow)
            return eventLoop.makeSucceededVoidFuture()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try run(query, onRow)
    }

    func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> ()) throws {
        let (sql, binds) = serialize(query)
        let values = try binds.map(Self.value)
        try handle.run(sql, values) { onRow(DirectSQLiteRow(values: $0)) }
    }

    /// Converts a bound Swift value to what SQLite stores.
    static func value(_ bind: any Encodable) throws -> SQLiteValue {
        // Most binds are strings, 64-bit integers, doubles or optional strings: test those first,
        // by exact type, which is much cheaper than a chain of dynamic casts.
        let kind = ObjectIdentifier(Swift.type(of: bind))
        if kind == ObjectIdentifier(String.self) { return .text(bind as! String) }
        if kind == ObjectIdentifier(Int64.self) { return .integer(bind as! Int64) }
        if kind == ObjectIdentifier(Double.self) { return .real(bind as! Double) }
        if kind == ObjectIdentifier(Int.self) { return .integer(Int64(bind as! Int)) }
        if kind == ObjectIdentifier(String?.self) { return (bind as! String?).map { .text($0) } ?? .null }
        if kind == ObjectIdentifier(Int64?.self) { return (bind as! Int64?).map { .integer($0) } ?? .null }
        switch bind {
        case let v as Int32: return .integer(Int64(v))
        case let v as Float: return .real(Double(v))
        case let v as Bool: return .integer(v ? 1 : 0)
        case let v as [UInt8]: return .blob(v)
        case let v as Data: return .blob(Array(v))
        case let v as any OptionalBind: return try v.sqliteValue()
        default:
            throw LoomError.internalError("cannot bind a value of type \(type(of: bind)) to SQLite")
        }
    }
}

/// Lets `Optional` binds unwrap without knowing the wrapped type.
protocol OptionalBind {
    func sqliteValue() throws -> SQLiteValue
}

extension Optional: OptionalBind where Wrapped: Encodable {
    func sqliteValue() throws -> SQLiteValue {
        switch self {
        case .none: return .null
        case .some(let v):
            return try DirectSQLiteDatabase.value(v)
        }
    }
}

/// sql-kit's `SQLRow` over the values of one SQLite row.
struct DirectSQLiteRow: SQLRow {
    let values: SQLiteRowValues

    var allColumns: [String] { values.columns }

    func contains(column: String) -> Bool { values.columns.contains(column) }

    func decodeNil(column: String) throws -> Bool {
        guard let v = values.value(column) else { throw missing(column) }
        return v == .null
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let v = values.value(column) else { throw missing(column) }
        if let optional = D.self as? any OptionalDecodable.Type {
            if v == .null { return optional.nilValue as! D }
            return try optional.decodeWrapped(v, column: column) as! D
        }
        return try Self.convert(v, to: D.self, column: column)
    }

    static func convert<D>(_ v: SQLiteValue, to type: D.Type, column: String) throws -> D {
        func mismatch() -> DecodingError {
            DecodingError.typeMismatch(D.self, .init(codingPath: [], debugDescription: "column '\(column)' holds \(v), not \(D.self)"))
        }
        switch v {
        case .null:
            throw DecodingError.valueNotFound(D.self, .init(codingPath: [], debugDescription: "column '\(column)' is NULL"))
        case .integer(let i):
            if D.self == Int64.self { return i as! D }
            if D.self == Int.self { return Int(i) as! D }
            if D.self == Int32.self { return Int32(truncatingIfNeeded: i) as! D }
            if D.self == Double.self { return Double(i) as! D }
            if D.self == Bool.self { return (i != 0) as! D }
            if D.self == String.self { return String(i) as! D }
        case .real(let d):
            if D.self == Double.self { return d as! D }
            if D.self == Float.self { return Float(d) as! D }
            if D.self == Int64.self, d == d.rounded(), abs(d) < 9.2e18 { return Int64(d) as! D }
            if D.self == Int.self, d == d.rounded(), abs(d) < 9.2e18 { return Int(d) as! D }
            if D.self == String.self { return String(d) as! D }
        case .text(let s):
            if D.self == String.self { return s as! D }
            if D.self == Int64.self, let i = Int64(s) { return i as! D }
            if D.self == Int.self, let i = Int(s) { return i as! D }
            if D.self == Double.self, let d = Double(s) { return d as! D }
        case .blob(let b):
            if D.self == [UInt8].self { return b as! D }
            if D.self == Data.self { return Data(b) as! D }
        }
        throw mismatch()
    }

    func missing(_ column: String) -> DecodingError {
        .keyNotFound(SQLiteColumnKey(stringValue: column), .init(codingPath: [], debugDescription: "no column '\(column)'"))
    }
}

struct SQLiteColumnKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

protocol OptionalDecodable {
    static var nilValue: Self { get }
    static func decodeWrapped(_ v: SQLiteValue, column: String) throws -> Any
}

extension Optional: OptionalDecodable {
    static var nilValue: Optional<Wrapped> { nil }
    static func decodeWrapped(_ v: SQLiteValue, column: String) throws -> Any {
        Optional.some(try DirectSQLiteRow.convert(v, to: Wrapped.self, column: column)) as Any
    }
}
