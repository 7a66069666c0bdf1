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

    @Option(name: .long, help: ArgumentHelp("Artifact store: a local directory, file:// URI, or s3://BUCKET/PREFIX (with LOOM_S3_ENDPOINT, LOOM_S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Env: LOOM_ARTIFACTS.", valueName: "uri"))
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
            EnvironmentVariablesProvider(secretsSpecifier: .specific(["LOOM_STORE", "LOOM_ADMIN_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])),
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
        if artifacts.contains("://") && !artifacts.hasPrefix("s3://") {
            throw LoomError.invalidParameter("unsupported artifact store '\(artifacts)': a local directory, file:// or s3://BUCKET/PREFIX")
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
        let artifacts: any ArtifactStore
        do {
            artifacts = try Self.artifactStore(resolved.artifactRoot, resolve())
        } catch {
            await store.shutdown()
            throw error
        }
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

extension StoreOptions {
    /// The artifact store at `location`: a local directory, or `s3://BUCKET/PREFIX` with the
    /// endpoint (`LOOM_S3_ENDPOINT`, default AWS's for the region), region (`LOOM_S3_REGION`,
    /// default us-east-1) and credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// optionally `AWS_SESSION_TOKEN`) from the configuration.
    static func artifactStore(_ location: String, _ config: ConfigReader) throws -> any ArtifactStore {
        guard location.hasPrefix("s3://") else { return try LocalArtifactStore(root: location) }
        let (bucket, prefix) = try S3ArtifactStore.parse(location)
        let region = config.string(forKey: "loom.s3.region") ?? config.string(forKey: "aws.region") ?? "us-east-1"
        let endpointText = config.string(forKey: "loom.s3.endpoint") ?? "https://s3.\(region).amazonaws.com"
        guard let endpoint = URL(string: endpointText), endpoint.scheme == "http" || endpoint.scheme == "https" else {
            throw LoomError.invalidParameter("LOOM_S3_ENDPOINT must be an http:// or https:// URL, not \(endpointText)")
        }
        guard let key = config.string(forKey: "aws.access.key.id"), let secret = config.string(forKey: "aws.secret.access.key", isSecret: true) else {
            throw LoomError.invalidParameter("an s3:// artifact store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        return try S3ArtifactStore(
            endpoint: endpoint, region: region, bucket: bucket, prefix: prefix,
            credentials: .init(accessKeyID: key, secretAccessKey: secret, sessionToken: config.string(forKey: "aws.session.token", isSecret: true)))
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
