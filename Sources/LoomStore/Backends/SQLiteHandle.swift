import Foundation
import LoomCore
import VaporCSQLite

/// A value as SQLite stores it.
enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// One `sqlite3` connection with a cache of prepared statements, driven synchronously.
///
/// The library is the SQLite that sqlite-nio bundles (module `VaporCSQLite`), so the process has
/// a single SQLite instance and its file locks stay coherent.
///
/// Statements run inline on the calling thread: an embedded database answers in microseconds,
/// and hopping threads per statement (as sqlite-nio does) cost more than the statements.
final class SQLiteHandle: @unchecked Sendable {
    // Safety: a handle has one user at a time — the writer belongs to the write batcher, which
    // runs one batch at a time, and readers are checked out of `SQLiteBackend`'s pool exclusively
    // — so the statement cache and the connection are never used concurrently. The connection
    // is opened in multi-thread mode, which allows a different thread per call.
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    let path: String
    static let statementCacheLimit = 512

    init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
            if let handle { sqlite_nio_sqlite3_close_v2(handle) }
            throw SQLiteFailure(code: rc, message: "cannot open \(path): \(message)")
        }
        self.db = handle
        sqlite_nio_sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    deinit {
        close()
    }

    func close() {
        for (_, statement) in statements { sqlite_nio_sqlite3_finalize(statement) }
        statements = [:]
        if let db { sqlite_nio_sqlite3_close_v2(db) }
        db = nil
    }

    /// Runs `sql` with `binds`, calling `onRow` for each result row.
    func run(_ sql: String, _ binds: [SQLiteValue], _ onRow: (SQLiteRowValues) throws -> Void) throws {
        guard let db else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
        let statement = try prepared(sql, db)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        try bind(binds, to: statement, db)
        let columnCount = sqlite_nio_sqlite3_column_count(statement)
        var columns: [String]?
        while true {
            let rc = sqlite_nio_sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw failure(rc, db) }
            if columns == nil {
                columns = (0..<columnCount).map { String(cString: sqlite_nio_sqlite3_column_name(statement, $0)) }
            }
            var values: [SQLiteValue] = []
            values.reserveCapacity(Int(columnCount))
            for i in 0..<columnCount {
                values.append(Self.column(statement, i))
            }
            try onRow(SQLiteRowValues(columns: columns!, values: values))
        }
    }

    /// Runs the one-row statement `sql` once per element of `rows`, binding each element's values
    /// with `bind` (typed, no intermediate values): the fastest way to insert many rows.
    func runEach<Row>(_ sql: String, _ rows: some Sequence<Row>, bind: (Row, inout SQLiteBinder) -> Void) throws {
        guard let db else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
        let statement = try prepared(sql, db)
        defer { sqlite_nio_sqlite3_clear_bindings(statement) }
        for row in rows {
            var binder = SQLiteBinder(statement: statement)
            bind(row, &binder)
            if binder.rc != SQLITE_OK {
                sqlite_nio_sqlite3_reset(statement)
                throw failure(binder.rc, db)
            }
            let rc = sqlite_nio_sqlite3_step(statement)
            sqlite_nio_sqlite3_reset(statement)
            guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw failure(rc, db) }
        }
    }

    /// Runs statements that return nothing, such as `BEGIN` or `PRAGMA x = y`.
    func exec(_ sql: String) throws {
        try run(sql, []) { _ in }
    }

    private func prepared(_ sql: String, _ db: OpaquePointer) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let rc = sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(rc, db) }
        if statements.count >= Self.statementCacheLimit {
            for (_, s) in statements { sqlite_nio_sqlite3_finalize(s) }
            statements.removeAll(keepingCapacity: true)
        }
        statements[sql] = statement
        return statement
    }

    private func bind(_ binds: [SQLiteValue], to statement: OpaquePointer, _ db: OpaquePointer) throws {
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite_nio_sqlite3_bind_null(statement, index)
            case .integer(let v): rc = sqlite_nio_sqlite3_bind_int64(statement, index, v)
            case .real(let v): rc = sqlite_nio_sqlite3_bind_double(statement, index, v)
            case .text(let v):
                var s = v
                rc = s.withUTF8 { buffer in
                    sqlite_nio_sqlite3_bind_text64(statement, index, UnsafeRawPointer(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                                                   UInt64(buffer.count), transient, UInt8(SQLITE_UTF8))
                }
            case .blob(let v):
                rc = v.withUnsafeBytes { buffer in
                    sqlite_nio_sqlite3_bind_blob64(statement, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, UInt64(buffer.count), transient)
                }
            }
            guard rc == SQLITE_OK else { throw failure(rc, db) }
        }
    }

    private static func column(_ statement: OpaquePointer, _ i: Int32) -> SQLiteValue {
        switch sqlite_nio_sqlite3_column_type(statement, i) {
        case SQLITE_INTEGER: return .integer(sqlite_nio_sqlite3_column_int64(statement, i))
        case SQLITE_FLOAT: return .real(sqlite_nio_sqlite3_column_double(statement, i))
        case SQLITE_TEXT:
            guard let text = sqlite_nio_sqlite3_column_text(statement, i) else { return .text("") }
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, i))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, i))
            guard count > 0, let bytes = sqlite_nio_sqlite3_column_blob(statement, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    private func failure(_ rc: Int32, _ db: OpaquePointer) -> SQLiteFailure {
        SQLiteFailure(code: sqlite_nio_sqlite3_extended_errcode(db), message: String(cString: sqlite_nio_sqlite3_errmsg(db)))
    }
}

/// Binds the parameters of one execution of a prepared statement, in order from 1. The first
/// failure is kept in `rc`.
struct SQLiteBinder {
    let statement: OpaquePointer
    private var index: Int32 = 0
    private(set) var rc: Int32 = SQLITE_OK

    init(statement: OpaquePointer) {
        self.statement = statement
    }

    private mutating func record(_ result: Int32) {
        if rc == SQLITE_OK { rc = result }
    }

    mutating func bind(_ v: Int64) {
        index += 1
        record(sqlite_nio_sqlite3_bind_int64(statement, index, v))
    }

    mutating func bind(_ v: Double) {
        index += 1
        record(sqlite_nio_sqlite3_bind_double(statement, index, v))
    }

    mutating func bind(_ v: [UInt8]) {
        index += 1
        let (statement, i) = (self.statement, index)
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        record(v.withUnsafeBytes { buffer in
            sqlite_nio_sqlite3_bind_blob64(statement, i, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, UInt64(buffer.count), transient)
        })
    }

    mutating func bind(_ v: String?) {
        index += 1
        guard var v else { return record(sqlite_nio_sqlite3_bind_null(statement, index)) }
        let (statement, i) = (self.statement, index)
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        record(v.withUTF8 { buffer in
            sqlite_nio_sqlite3_bind_text64(statement, i, UnsafeRawPointer(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                                           UInt64(buffer.count), transient, UInt8(SQLITE_UTF8))
        })
    }
}

/// An error from SQLite with its extended result code.
struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var primaryCode: Int32 { code & 0xFF }
    var description: String { "SQLite error \(code): \(message)" }
}

/// The values of one result row.
struct SQLiteRowValues: Sendable {
    let columns: [String]
    let values: [SQLiteValue]

    func value(_ column: String) -> SQLiteValue? {
        guard let i = columns.firstIndex(of: column) else { return nil }
        return values[i]
    }
}
