import ArgumentParser
import Configuration
import Foundation
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking
import Logging
import Synchronization

/// Where the data lives; shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Data folder of the embedded default (SQLite file and artifacts). Env: LOOM_DATA.", valueName: "dir"))
    var data: String?

    @Option(name: .long, help: ArgumentHelp("Metadata store: a postgresql:// URL or a SQLite file path. Env: LOOM_STORE.", valueName: "url"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp("Artifact store: a local directory or file:// URI. Env: LOOM_ARTIFACTS.", valueName: "uri"))
    var artifacts: String?

    @Option(name: .customLong("sqlite-sync"), help: ArgumentHelp("SQLite durability: 'normal' (survives a process crash, the default) or 'full' (fsync every commit). Env: LOOM_SQLITE_SYNC.", valueName: "mode"))
    var sqliteSync: String?

    /// Resolved settings: flags first, then `LOOM_*` environment variables, then defaults.
    func resolve(extra: [AbsoluteConfigKey: ConfigValue] = [:]) -> ConfigReader {
        var values = extra
        if let data { values["loom.data"] = .init(.string(data), isSecret: false) }
        if let store { values["loom.store"] = .init(.string(store), isSecret: true) }
        if let artifacts { values["loom.artifacts"] = .init(.string(artifacts), isSecret: false) }
        if let sqliteSync { values["loom.sqlite.sync"] = .init(.string(sqliteSync), isSecret: false) }
        return ConfigReader(providers: [
            InMemoryProvider(name: "arguments", values: values),
            EnvironmentVariablesProvider(secretsSpecifier: .specific(["LOOM_STORE", "LOOM_ADMIN_PASSWORD"])),
        ])
    }

    struct Resolved {
        let dataDirectory: String
        let storeURL: String
        let artifactRoot: String
        let durability: SQLiteBackend.Durability
    }

    func locations(_ config: ConfigReader) throws -> Resolved {
        let data = config.string(forKey: "loom.data", default: "./loom-data")
        let store = config.string(forKey: "loom.store", isSecret: true) ?? (data + "/loom.db")
        var artifacts = config.string(forKey: "loom.artifacts") ?? (data + "/artifacts")
        if artifacts.hasPrefix("file://") { artifacts = String(artifacts.dropFirst("file://".count)) }
        if artifacts.contains("://") {
            throw LoomError.invalidParameter("unsupported artifact store '\(artifacts)': only local directories are supported in this version")
        }
        let syncText = config.string(forKey: "loom.sqlite.sync", default: "normal").lowercased()
        guard let durability: SQLiteBackend.Durability = syncText == "full" ? .full : syncText == "normal" ? .process : nil else {
            throw LoomError.invalidParameter("--sqlite-sync must be 'normal' or 'full', got '\(syncText)'")
        }
        return Resolved(dataDirectory: data, storeURL: store, artifactRoot: artifacts, durability: durability)
    }

    /// Opens the store and the artifact store; migrations run unless `upgrade` is false.
    func open(logger: Logger, upgrade: Bool = true) async throws -> (TrackingService, Resolved) {
        let resolved = try locations(resolve())
        let store = try await SQLMetadataStore.open(url: resolved.storeURL, logger: logger, sqliteDurability: resolved.durability)
        let artifacts = try LocalArtifactStore(root: resolved.artifactRoot)
        OpenStores.register(store)
        let tracking = TrackingService(store: store, artifacts: artifacts, logger: logger)
        if upgrade {
            do {
                _ = try await tracking.prepare()
            } catch {
                await store.shutdown()
                throw error
            }
        }
        return (tracking, resolved)
    }
}

/// `--json` on listings.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false
}

/// A logger for command-line tools: warnings and errors only, to standard error.
func cliLogger() -> Logger {
    var logger = Logger(label: "loom") { LineLogHandler(label: $0, format: .text) }
    logger.logLevel = .warning
    return logger
}

/// Stores opened by the running command, closed before the process exits on every path
/// (success or error), so that no connection is dropped unclosed.
enum OpenStores {
    private static let stores = Mutex<[any MetadataStore]>([])

    static func register(_ store: any MetadataStore) {
        stores.withLock { $0.append(store) }
    }

    static func closeAll() async {
        let all = stores.withLock { s in defer { s = [] }; return s }
        for store in all { await store.shutdown() }
    }
}

/// The store options for commands whose `--data` names the data to work on (`loom train`,
/// `loom predict`): the data folder is `--data-dir` there.
struct DataDirStoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Data folder of the embedded default (SQLite file and artifacts). Env: LOOM_DATA.", valueName: "dir"))
    var dataDirectory: String?

    @Option(name: .long, help: ArgumentHelp("Metadata store: a postgresql:// URL or a SQLite file path. Env: LOOM_STORE.", valueName: "url"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp("Artifact store: a local directory or file:// URI. Env: LOOM_ARTIFACTS.", valueName: "uri"))
    var artifacts: String?

    @Option(name: .customLong("sqlite-sync"), help: ArgumentHelp("SQLite durability: 'normal' or 'full'. Env: LOOM_SQLITE_SYNC.", valueName: "mode"))
    var sqliteSync: String?

    func open(logger: Logger) async throws -> (TrackingService, StoreOptions.Resolved) {
        var options = StoreOptions()
        options.data = dataDirectory
        options.store = store
        options.artifacts = artifacts
        options.sqliteSync = sqliteSync
        return try await options.open(logger: logger)
    }
}
