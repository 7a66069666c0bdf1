import LoomCore
import SQLKit

/// Which SQL engine a backend speaks; used where the dialects differ (DDL types, case-sensitive LIKE).
public enum SQLEngine: String, Sendable {
    case sqlite
    case postgresql
}

/// A database connection source: readers for queries and one serial writer for batched transactions.
///
/// Backends never interpret the data; ``SQLMetadataStore`` holds all the queries.
public protocol SQLBackend: Sendable {
    var engine: SQLEngine { get }
    /// Runs `body` on a connection for reading.
    func withReader<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Runs `body` inside one transaction on the writer connection. Called by one batch at a time.
    func withWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Like ``withWriteTransaction(_:)`` for maintenance work (migrations) that may take long.
    func withLongWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Maps a driver error to a domain error when it means something to the caller
    /// (a unique violation is `alreadyExists`, a lost connection `unavailable`), else nil.
    func classify(_ error: any Error) -> LoomError?
    /// Checks that the database answers (for `/ready`).
    func ping() async throws
    /// Releases connections; further calls fail.
    func shutdown() async
}

extension SQLBackend {
    public func withLongWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withWriteTransaction(body)
    }
}
