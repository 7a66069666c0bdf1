import Foundation
import LoomCore
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import Synchronization

/// The embedded default: one SQLite file in WAL mode, one writer connection and a few readers.
public final class SQLiteBackend: SQLBackend {
    /// How hard a commit is made durable.
    public enum Durability: String, Sendable {
        /// `synchronous=NORMAL` in WAL mode: a committed write survives a crash of the process
        /// (kill -9) but may be lost on power failure. The default.
        case process
        /// `synchronous=FULL`: every commit is fsynced; survives power loss.
        case full
    }

    public let engine = SQLEngine.sqlite
    public let path: String
    private let threadPool: NIOThreadPool
    private let ownsThreadPool: Bool
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let nextReader = ManagedAtomicCounter()
    private let logger: Logger

    private init(path: String, threadPool: NIOThreadPool, ownsThreadPool: Bool, writer: SQLiteConnection, readers: [SQLiteConnection], logger: Logger) {
        self.path = path
        self.threadPool = threadPool
        self.ownsThreadPool = ownsThreadPool
        self.writer = writer
        self.readers = readers
        self.logger = logger
    }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readers readerCount: Int = 4, durability: Durability = .process, logger: Logger) async throws -> SQLiteBackend {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let pool = NIOThreadPool(numberOfThreads: max(2, readerCount + 1))
        pool.start()
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var quietLogger = logger
        quietLogger.logLevel = max(logger.logLevel, .info)
        do {
            let writer = try await SQLiteConnection.open(storage: .file(path: path), threadPool: pool, logger: quietLogger, on: loop)
            let db = writer.sql(queryLogLevel: nil)
            // The busy timeout replaces sqlite-nio's spinning busy handler.
            try await db.raw("PRAGMA busy_timeout = 10000").run()
            try await db.raw("PRAGMA journal_mode = WAL").run()
            try await db.raw(durability == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL").run()
            try await db.raw("PRAGMA foreign_keys = ON").run()
            try await db.raw("PRAGMA temp_store = MEMORY").run()
            try await db.raw("PRAGMA cache_size = -32000").run()
            var readers: [SQLiteConnection] = []
            for _ in 0..<max(1, readerCount) {
                let r = try await SQLiteConnection.open(storage: .file(path: path), threadPool: pool, logger: quietLogger, on: MultiThreadedEventLoopGroup.singleton.any())
                let rdb = r.sql(queryLogLevel: nil)
                try await rdb.raw("PRAGMA busy_timeout = 10000").run()
                try await rdb.raw("PRAGMA temp_store = MEMORY").run()
                try await rdb.raw("PRAGMA cache_size = -16000").run()
                readers.append(r)
            }
            return SQLiteBackend(path: path, threadPool: pool, ownsThreadPool: true, writer: writer, readers: readers, logger: logger)
        } catch {
            try? await pool.shutdownGracefully()
            throw LoomError.unavailable("cannot open SQLite database at \(path): \(error)")
        }
    }

    public func withReader<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let i = nextReader.next() % readers.count
        return try await body(readers[i].sql(queryLogLevel: nil))
    }

    public func withWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let db = writer.sql(queryLogLevel: nil)
        try await db.raw("BEGIN IMMEDIATE").run()
        do {
            let result = try await body(db)
            try await db.raw("COMMIT").run()
            return result
        } catch {
            try? await db.raw("ROLLBACK").run()
            throw error
        }
    }

    public func classify(_ error: any Error) -> LoomError? {
        guard let e = error as? SQLiteError else { return nil }
        switch e.reason {
        case .constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed:
            return .alreadyExists("the entity already exists")
        case .constraintForeignKeyFailed:
            return .notFound("a referenced entity does not exist")
        case .busy, .locked, .busyTimeout, .ioError, .full, .cantOpen, .readOnly:
            return .unavailable("the database is busy or unavailable: \(e.message)")
        default:
            return nil
        }
    }

    public func ping() async throws {
        try await withReader { db in _ = try await db.raw("SELECT 1 AS one").all() }
    }

    public func shutdown() async {
        for r in readers { try? await r.close() }
        try? await writer.sql(queryLogLevel: nil).raw("PRAGMA wal_checkpoint(PASSIVE)").run()
        try? await writer.close()
        if ownsThreadPool { try? await threadPool.shutdownGracefully() }
    }
}

/// A tiny lock-protected counter for round-robin choices.
final class ManagedAtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int {
        value.wrappingAdd(1, ordering: .relaxed).newValue & Int.max
    }
}
