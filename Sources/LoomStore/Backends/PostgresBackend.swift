import Foundation
import LoomCore
import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import SQLKit
import Synchronization

/// PostgreSQL for teams and for several stateless replicas.
///
/// Connections come from PostgresNIO's `PostgresClient` pool, which reconnects by itself after the
/// server restarts; while it cannot, calls fail with `unavailable` (HTTP 503).
public final class PostgresBackend: SQLBackend {
    public let engine = SQLEngine.postgresql
    let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger
    /// The schema all tables live in (tests use one schema each).
    public let schema: String?

    private init(client: PostgresClient, runTask: Task<Void, Never>, schema: String?, logger: Logger) {
        self.client = client
        self.runTask = runTask
        self.schema = schema
        self.logger = logger
    }

    /// Connects to `url` (`postgresql://user:pass@host:port/db?schema=name&sslmode=disable`).
    public static func connect(url: String, maxConnections: Int = 16, logger: Logger) async throws -> PostgresBackend {
        guard let comps = URLComponents(string: url), let scheme = comps.scheme, scheme.hasPrefix("postgres") else {
            throw LoomError.invalidParameter("not a PostgreSQL URL: \(Redaction.redactURL(url))")
        }
        let query = Dictionary((comps.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let database = comps.path.hasPrefix("/") ? String(comps.path.dropFirst()) : comps.path
        var config: PostgresClient.Configuration
        let user = comps.user.map { $0.removingPercentEncoding ?? $0 } ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        let password = comps.password.map { $0.removingPercentEncoding ?? $0 }
        if let socket = query["host"], socket.hasPrefix("/") {
            let port = comps.port ?? 5432
            config = .init(unixSocketPath: "\(socket)/.s.PGSQL.\(port)", username: user, password: password, database: database.isEmpty ? nil : database)
        } else {
            let tls: PostgresClient.Configuration.TLS = (query["sslmode"] ?? "disable") == "require" ? .require(.makeClientConfiguration()) : .disable
            config = .init(host: comps.host ?? "127.0.0.1", port: comps.port ?? 5432, username: user, password: password, database: database.isEmpty ? nil : database, tls: tls)
        }
        let schema = query["schema"].flatMap { $0.isEmpty ? nil : $0 }
        if let schema {
            guard schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw LoomError.invalidParameter("invalid schema name in store URL")
            }
            config.options.additionalStartupParameters = [("search_path", schema)]
        }
        config.options.additionalStartupParameters.append(("statement_timeout", "60000"))
        config.options.maximumConnections = maxConnections
        config.options.minimumConnections = 0
        config.options.connectTimeout = .seconds(3)
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)
        let client = PostgresClient(configuration: config, backgroundLogger: quiet)
        let task = Task { await client.run() }
        let backend = PostgresBackend(client: client, runTask: task, schema: schema, logger: quiet)
        if let schema {
            try await backend.withReader { db in
                try await db.raw("CREATE SCHEMA IF NOT EXISTS \(ident: schema)").run()
            }
        }
        return backend
    }

    /// How long a call waits for a connection before answering `unavailable`: while the server
    /// restarts, the pool keeps retrying in the background and callers get a prompt 503 instead
    /// of hanging. Once a connection is leased, statements are bounded by `statement_timeout`.
    static let leaseTimeout: Duration = .seconds(10)

    /// Runs `operation` on a leased connection, failing with `unavailable` if none is leased in time.
    func leased<T: Sendable>(_ timeout: Duration = leaseTimeout, _ operation: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = self.client
        let gotConnection = LeaseFlag()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await client.withConnection { conn in
                    gotConnection.value.store(true, ordering: .releasing)
                    return try await operation(conn)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                if gotConnection.value.load(ordering: .acquiring) { return nil }
                throw LoomError.unavailable("the database did not answer in time")
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let value = next { return value }
            }
            throw LoomError.unavailable("the database did not answer in time")
        }
    }

    public func withReader<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await leased { conn in try await body(PinnedPostgresDatabase(conn)) }
    }

    public func withWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await leased { conn in try await Self.transaction(conn, body) }
    }

    public func withLongWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await leased(.seconds(60)) { conn in try await Self.transaction(conn, body) }
    }

    static func transaction<T: Sendable>(_ conn: PostgresConnection, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let db = PinnedPostgresDatabase(conn)
        try await db.raw("BEGIN").run()
        do {
            let result = try await body(db)
            try await db.raw("COMMIT").run()
            return result
        } catch {
            // Once the connection is gone the server has rolled back by itself.
            if !conn.isClosed { try? await db.raw("ROLLBACK").run() }
            throw error
        }
    }

    public func classify(_ error: any Error) -> LoomError? {
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState] {
                switch state {
                case "23505": return .alreadyExists("the entity already exists")
                case "23503": return .notFound("a referenced entity does not exist")
                case "40001", "40P01": return .unavailable("a concurrent transaction conflicted; retry")
                case "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006": return .unavailable("the database is restarting or unreachable")
                default: return nil
                }
            }
            switch e.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
                return .unavailable("the database connection was lost")
            default:
                return .unavailable("the database is unavailable")
            }
        }
        if error is ChannelError || error is IOError || error is NIOConnectionError {
            return .unavailable("the database is unreachable")
        }
        let text = String(describing: error)
        if text.contains("Connection refused") || text.contains("connectTimeout") || text.contains("PoolError") {
            return .unavailable("the database is unreachable")
        }
        return nil
    }

    /// Drops a schema and everything in it (test cleanup).
    public func dropSchema(_ name: String) async throws {
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw LoomError.invalidParameter("invalid schema name") }
        try await withReader { db in try await db.raw("DROP SCHEMA IF EXISTS \(ident: name) CASCADE").run() }
    }

    public func ping() async throws {
        try await withReader { db in _ = try await db.raw("SELECT 1 AS one").all() }
    }

    public func shutdown() async {
        runTask.cancel()
        _ = await runTask.value
    }
}

/// A connection's SQL interface that hands every statement to the connection's event loop and
/// checks there that the channel is still open.
///
/// PostgresNIO writes a query to its channel with no write promise: if the channel closes (the
/// server restarted) between the caller's check and the write reaching the event loop, the write
/// fails silently and the query's own promise is never completed, so the caller hangs for good.
/// Written from the event loop itself, an open channel still has its handler, which fails the
/// query properly when the connection goes away.
struct PinnedPostgresDatabase: SQLDatabase {
    let connection: PostgresConnection
    let base: any SQLDatabase

    init(_ connection: PostgresConnection) {
        self.connection = connection
        self.base = connection.sql(queryLogLevel: nil)
    }

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { connection.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let connection = self.connection
        let base = self.base
        return connection.eventLoop.flatSubmit {
            guard !connection.isClosed else {
                return connection.eventLoop.makeFailedFuture(LoomError.unavailable("the database connection was lost"))
            }
            return base.execute(sql: query, onRow)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await execute(sql: query, onRow).get()
    }
}

/// Set once a connection has been leased.
final class LeaseFlag: Sendable {
    let value = Atomic<Bool>(false)
}
