import ArgumentParser
import Configuration
import Foundation
import Hummingbird
import LoomArtifacts
import LoomCore
import LoomServer
import LoomStore
import LoomTracking
import Logging

/// `loom server`: the HTTP server (MLflow-compatible API, Loom API, UI, metrics).
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the Loom server.",
        discussion: """
            Every option can also be set in the environment: LOOM_HOST, LOOM_PORT, LOOM_DATA, LOOM_STORE,
            LOOM_ARTIFACTS, LOOM_AUTH, LOOM_LOG_LEVEL, LOOM_LOG_FORMAT, LOOM_SQLITE_SYNC, and LOOM_SCHEDULER_INTERVAL \
            (seconds between looks at pipeline schedules and dataset triggers, default 10), LOOM_WORKER_LEASE (seconds a \
            worker's lease on a step lasts without a renewal, default 30). With auth on and no users yet,
            an administrator is created from LOOM_ADMIN_USERNAME (default admin) and LOOM_ADMIN_PASSWORD
            (generated and printed once when unset).
            """)

    @Option(name: .long, help: ArgumentHelp("Address to listen on (default 127.0.0.1). Env: LOOM_HOST.", valueName: "address"))
    var host: String?

    @Option(name: .long, help: ArgumentHelp("Port to listen on (default 5000; 0 picks a free port). Env: LOOM_PORT.", valueName: "port"))
    var port: Int?

    @Flag(inversion: .prefixedNo, help: "Require authentication (default: off on loopback, on otherwise). Env: LOOM_AUTH.")
    var auth: Bool?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error. Env: LOOM_LOG_LEVEL.", valueName: "level"))
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: ArgumentHelp("text or json. Env: LOOM_LOG_FORMAT.", valueName: "format"))
    var logFormat: String?

    @Option(name: .customLong("max-artifact-size"), help: ArgumentHelp("Largest artifact upload in bytes (default unlimited). Env: LOOM_MAX_ARTIFACT_SIZE.", valueName: "bytes"))
    var maxArtifactSize: Int64?

    @OptionGroup var storage: StoreOptions

    func run() async throws {
        ProcessTimeZone.pinToGMT()
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        if let host { values["loom.host"] = .init(.string(host), isSecret: false) }
        if let port { values["loom.port"] = .init(.int(port), isSecret: false) }
        if let auth { values["loom.auth"] = .init(.bool(auth), isSecret: false) }
        if let logLevel { values["loom.log.level"] = .init(.string(logLevel), isSecret: false) }
        if let logFormat { values["loom.log.format"] = .init(.string(logFormat), isSecret: false) }
        if let maxArtifactSize { values["loom.max.artifact.size"] = .init(.int(Int(maxArtifactSize)), isSecret: false) }
        let config = storage.resolve(extra: values)

        let host = config.string(forKey: "loom.host", default: "127.0.0.1")
        let port = config.int(forKey: "loom.port", default: 5000)
        guard (0...65535).contains(port) else { throw LoomError.invalidParameter("--port must be between 0 and 65535") }
        let authEnabled = config.bool(forKey: "loom.auth", default: !Self.isLoopback(host))
        let logger = try Self.makeLogger(level: config.string(forKey: "loom.log.level", default: "info"), format: config.string(forKey: "loom.log.format", default: "text"))
        let maxArtifact = config.int(forKey: "loom.max.artifact.size").map(Int64.init)

        LoomMetrics.bootstrap()
        let (tracking, resolved) = try await storage.open(logger: logger)
        let access = AccessService(store: tracking.store)
        if authEnabled {
            let username = config.string(forKey: "loom.admin.username", default: "admin")
            let password = config.string(forKey: "loom.admin.password", isSecret: true)
            if let (user, generated) = try await access.bootstrapAdmin(username: username, password: password) {
                if let generated {
                    FileHandle.standardError.write(Data("loom: created administrator '\(user.username)' with password: \(generated)\nloom: this password is shown once; change it with `loom users set-password`.\n".utf8))
                } else {
                    logger.notice("created administrator from LOOM_ADMIN_USERNAME/LOOM_ADMIN_PASSWORD", metadata: ["user": "\(user.username)"])
                }
            }
        } else if !Self.isLoopback(host) {
            logger.warning("authentication is OFF on a non-loopback address; anyone who can reach this port has full access")
        }
        var configuration = ServerConfiguration(host: host, port: port, authEnabled: authEnabled, maxArtifactBytes: maxArtifact, dataDirectory: resolved.dataDirectory)
        configuration.workerLeaseSeconds = max(1, config.double(forKey: "loom.worker.lease", default: 30))
        let pipelines = PipelineService(tracking: tracking, logger: logger, tickSeconds: config.double(forKey: "loom.scheduler.interval", default: 10))
        let endpoints = EndpointService(
            tracking: tracking, logRoot: resolved.dataDirectory + "/endpoints", logger: logger,
            refreshSeconds: max(0.1, config.double(forKey: "loom.endpoint.refresh", default: 2)), ownClient: true)
        let services = ServerServices(
            tracking: tracking, access: access, configuration: configuration, logger: logger, pipelines: pipelines, endpoints: endpoints,
            monitors: MonitorService(
                tracking: tracking, logger: logger, tickSeconds: max(0.1, config.double(forKey: "loom.monitor.interval", default: 15)),
                retrySeconds: max(0.1, config.double(forKey: "loom.webhook.retry", default: 5)), pipelines: pipelines, endpoints: endpoints),
            gateway: GatewayService(
                tracking: tracking, logger: logger, reloadSeconds: max(0.1, config.double(forKey: "loom.gateway.reload", default: 5)),
                flushSeconds: max(0.05, config.double(forKey: "loom.gateway.flush", default: 2)),
                traceRetentionDays: max(0, config.double(forKey: "loom.trace.retention.days", default: 7)),
                otlpEndpoint: config.string(forKey: "loom.otlp.endpoint"), sourcesRoot: config.string(forKey: "loom.sources.root")))
        let storeDescription = Redaction.redactURL(resolved.storeURL)
        let app = buildApplication(services: services) { boundPort in
            let base = "http://\(host.contains(":") ? "[\(host)]" : host):\(boundPort)"
            let banner = """
                Loom \(LoomVersionInfo.current) is running at \(base)
                  UI:                  \(base)/
                  MLFLOW_TRACKING_URI: \(base)
                  metadata store:      \(storeDescription)
                  artifacts:           \(tracking.artifacts.location)
                  auth:                \(authEnabled ? "on" : "off")

                """
            FileHandle.standardOutput.write(Data(banner.utf8))
        }
        do {
            try await app.runService()
        } catch {
            // E.g. the port is taken: close the store before reporting.
            await tracking.store.shutdown()
            throw LoomError.unavailable("the server stopped: \(error)")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    static func makeLogger(level: String, format: String) throws -> Logger {
        guard let lvl = Logger.Level(rawValue: level.lowercased()) else {
            throw LoomError.invalidParameter("unknown log level '\(level)'")
        }
        let json: Bool
        switch format.lowercased() {
        case "json": json = true
        case "text": json = false
        default: throw LoomError.invalidParameter("--log-format must be 'text' or 'json'")
        }
        var logger = Logger(label: "loom") { label in
            LineLogHandler(label: label, format: json ? .json : .text)
        }
        logger.logLevel = lvl
        return logger
    }
}

/// `loom db upgrade|status`.
struct DBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Manage the metadata database.", subcommands: [Upgrade.self, Status.self])

    struct Upgrade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending schema migrations (also done automatically at server start).")
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, resolved) = try await storage.open(logger: cliLogger(), upgrade: false)
            let applied = try await tracking.prepare()
            await tracking.store.shutdown()
            if applied.isEmpty {
                print("database at \(Redaction.redactURL(resolved.storeURL)) is up to date")
            } else {
                print("applied migrations \(applied.map(String.init).joined(separator: ", ")) to \(Redaction.redactURL(resolved.storeURL))")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the applied schema migrations.")
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger(), upgrade: false)
            let applied = try await tracking.store.appliedMigrations()
            await tracking.store.shutdown()
            print("applied migrations: \(applied.isEmpty ? "none" : applied.map(String.init).joined(separator: ", "))")
        }
    }
}
