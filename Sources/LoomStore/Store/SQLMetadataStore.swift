import Foundation
import LoomCore
import Logging
import SQLKit
import Synchronization

/// The one implementation of ``MetadataStore`` over SQL; ``SQLBackend`` supplies SQLite or PostgreSQL.
public final class SQLMetadataStore: MetadataStore {
    let backend: any SQLBackend
    let batcher: WriteBatcher
    let logger: Logger
    private let shutDown = Mutex(false)

    public var engine: SQLEngine { backend.engine }

    public init(backend: any SQLBackend, logger: Logger) {
        self.backend = backend
        self.logger = logger
        self.batcher = WriteBatcher(backend: backend, logger: logger)
    }

    /// With the metric log merged at `metricLogMergePoints` points instead of the default (tests).
    init(backend: any SQLBackend, logger: Logger, metricLogMergePoints: Int) {
        self.backend = backend
        self.logger = logger
        self.batcher = WriteBatcher(backend: backend, logger: logger, mergePoints: metricLogMergePoints)
    }

    /// Opens the store named by `url`: a `postgresql://` URL, or a SQLite file path / `sqlite:` URL.
    public static func open(url: String, logger: Logger, sqliteDurability: SQLiteBackend.Durability = .process) async throws -> SQLMetadataStore {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return SQLMetadataStore(backend: try await PostgresBackend.connect(url: url, logger: logger), logger: logger)
        }
        var path = url
        if path.hasPrefix("sqlite:///") { path = String(path.dropFirst("sqlite://".count)) }
        else if path.hasPrefix("sqlite://") { path = String(path.dropFirst("sqlite://".count)) }
        else if path.hasPrefix("sqlite:") { path = String(path.dropFirst("sqlite:".count)) }
        guard !path.isEmpty else { throw LoomError.invalidParameter("empty SQLite path in store URL") }
        return SQLMetadataStore(backend: try await SQLiteBackend.open(path: path, durability: sqliteDurability, logger: logger), logger: logger)
    }

    // MARK: Plumbing

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await backend.withReader(body)
        } catch {
            throw batcher.translate(error)
        }
    }

    /// Runs `body` in the next write batch and appends its audit record in the same transaction.
    /// `validatesFirst` declares that `body` throws domain errors only before its first change.
    func write<T: Sendable>(
        _ action: String, _ entityType: String, _ entityID: String, detail: String? = nil, validatesFirst: Bool = false,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        try await write(action, entityType, entityIDFrom: { _ in entityID }, detail: detail, validatesFirst: validatesFirst, body)
    }

    func write<T: Sendable>(
        _ action: String, _ entityType: String, entityIDFrom: @escaping @Sendable (T) -> String, detail: String? = nil,
        validatesFirst: Bool = false, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        let context = AuditContext.current
        return try await batcher.submit(validatesFirst: validatesFirst) { db in
            let result = try await body(db)
            let event = AuditEvent(
                time: Clock.nowMillis(), actor: context.actor, action: action, entityType: entityType,
                entityID: entityIDFrom(result), workspace: context.workspace, status: 0,
                detail: detail.map { "\(context.origin) \($0)" } ?? context.origin)
            return (result, event)
        }
    }

    /// Runs `body` in the next write batch without an audit record: for bookkeeping a process
    /// repeats every second (lease renewals), which the audit log would drown in.
    func writeUnaudited<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await batcher.submit { db in (try await body(db), nil) }
    }

    // MARK: Lifecycle

    public func upgrade() async throws -> [Int] {
        do {
            return try await Migrator(backend: backend, logger: logger).upgrade(now: Clock.nowMillis())
        } catch {
            throw batcher.translate(error)
        }
    }

    public func appliedMigrations() async throws -> [Int] {
        do {
            return try await Migrator(backend: backend, logger: logger).appliedVersions().sorted()
        } catch {
            throw batcher.translate(error)
        }
    }

    public func bootstrap(defaultArtifactLocation: String) async throws {
        let exists = try await read { db in try await db.raw("SELECT experiment_id FROM experiments WHERE experiment_id = 0").first() }
        guard exists == nil else { return }
        let now = Clock.nowMillis()
        do {
            _ = try await AuditContext.$current.withValue(AuditContext(actor: "system", origin: "bootstrap")) {
                try await write("create_experiment", "experiment", "0") { db in
                    try await db.raw("""
                        INSERT INTO experiments (experiment_id, workspace, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                        VALUES (0, \(bind: Workspace.defaultName), 'Default', \(bind: defaultArtifactLocation), 'active', \(bind: now), \(bind: now))
                        """).run()
                }
            }
        } catch let e as LoomError where e.code == .alreadyExists {
            // Another replica created it first.
        }
    }

    public func ping() async throws {
        do { try await backend.ping() } catch { throw batcher.translate(error) }
    }

    public func shutdown() async {
        // Idempotent: the first caller closes, later calls return at once.
        guard shutDown.withLock({ done in defer { done = true }; return !done }) else { return }
        await batcher.close()
        await backend.shutdown()
    }
}

/// Wall-clock time in MLflow's unit.
public enum Clock {
    public static func nowMillis() -> Millis {
        Millis((Date().timeIntervalSince1970 * 1000).rounded())
    }
}

// MARK: - Row helpers

extension SQLRow {
    func string(_ column: String) throws -> String { try decode(column: column, as: String.self) }
    func optionalString(_ column: String) throws -> String? { try decodeNil(column: column) ? nil : try decode(column: column, as: String.self) }
    func int64(_ column: String) throws -> Int64 { try decode(column: column, as: Int64.self) }
    func optionalInt64(_ column: String) throws -> Int64? { try decodeNil(column: column) ? nil : try decode(column: column, as: Int64.self) }
    func optionalDouble(_ column: String) throws -> Double? { try decodeNil(column: column) ? nil : try decode(column: column, as: Double.self) }
}

/// Parses an integer id given as a string; unknown formats are simply "not found".
func parseID(_ id: String) -> Int64? {
    guard let v = Int64(id), v >= 0 else { return nil }
    return v
}

extension Array {
    /// Splits into chunks so that IN-lists and multi-row inserts stay under bind limits.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
