import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func createEndpoint(_ e: Endpoint) async throws {
        do {
            _ = try await write("create_endpoint", "endpoint", e.name) { db in
                try await db.raw("""
                    INSERT INTO endpoints (workspace, name, description, auth_mode, key_hash, traffic_json, mirror_json, sticky_header, sampling_rate,
                      concurrency_limit, timeout_ms, max_body_bytes, generation, created_by, creation_time, last_updated_time)
                    VALUES (\(bind: e.workspace), \(bind: e.name), \(bind: e.description), \(bind: e.auth.rawValue), \(bind: e.keyHash),
                      \(bind: try Self.weights(e.traffic)), \(bind: try Self.weights(e.mirror)), \(bind: e.stickyHeader), \(bind: e.samplingRate),
                      \(bind: e.concurrencyLimit.map(Int64.init)), \(bind: Int64(e.timeoutMillis)), \(bind: Int64(e.maxBodyBytes)), \(bind: e.generation),
                      \(bind: e.createdBy), \(bind: e.creationTime), \(bind: e.lastUpdatedTime))
                    """).run()
                return true
            }
        } catch let error as LoomError where error.code == .alreadyExists {
            throw LoomError.alreadyExists("Endpoint '\(e.name)' already exists.")
        }
    }

    public func endpoint(name: String, workspace: String) async throws -> Endpoint? {
        try await read { db in
            try await db.raw("SELECT * FROM endpoints WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first().map(Self.endpoint)
        }
    }

    public func endpoints(workspace: String?) async throws -> [Endpoint] {
        try await read { db in
            let filter: SQLQueryString = workspace.map { "WHERE workspace = \(bind: $0)" } ?? ""
            return try await db.raw("SELECT * FROM endpoints \(filter) ORDER BY workspace, name").all().map(Self.endpoint)
        }
    }

    public func updateEndpoint(_ e: Endpoint) async throws -> Endpoint? {
        let detail = "traffic \(try Self.weights(e.traffic)) mirror \(try Self.weights(e.mirror))"
        return try await write("update_endpoint", "endpoint", e.name, detail: detail) { db in
            guard let stored = try await db.raw("SELECT * FROM endpoints WHERE workspace = \(bind: e.workspace) AND name = \(bind: e.name)")
                .first().map(Self.endpoint)
            else { throw LoomError.notFound("No endpoint named \(e.name)") }
            guard stored.generation == e.generation else { return nil }
            let names = Set(try await db.raw("SELECT name FROM deployments WHERE workspace = \(bind: e.workspace) AND endpoint = \(bind: e.name)")
                .all().map { try $0.string("name") })
            for name in Array(e.traffic.keys) + Array(e.mirror.keys) where !names.contains(name) {
                throw LoomError.invalidParameter("Endpoint \(e.name) has no deployment named \(name)")
            }
            var saved = e
            saved.generation = stored.generation + 1
            try await db.raw("""
                UPDATE endpoints SET description = \(bind: e.description), auth_mode = \(bind: e.auth.rawValue), key_hash = \(bind: e.keyHash),
                  traffic_json = \(bind: try Self.weights(e.traffic)), mirror_json = \(bind: try Self.weights(e.mirror)),
                  sticky_header = \(bind: e.stickyHeader), sampling_rate = \(bind: e.samplingRate), concurrency_limit = \(bind: e.concurrencyLimit.map(Int64.init)),
                  timeout_ms = \(bind: Int64(e.timeoutMillis)), max_body_bytes = \(bind: Int64(e.maxBodyBytes)), generation = \(bind: saved.generation),
                  last_updated_time = \(bind: e.lastUpdatedTime)
                WHERE workspace = \(bind: e.workspace) AND name = \(bind: e.name) AND generation = \(bind: stored.generation)
                """).run()
            return saved
        }
    }

    public func deleteEndpoint(name: String, workspace: String) async throws -> Bool {
        try await write("delete_endpoint", "endpoint", name) { db in
            guard try await db.raw("SELECT name FROM endpoints WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() != nil else {
                return false
            }
            try await db.raw("DELETE FROM deployments WHERE workspace = \(bind: workspace) AND endpoint = \(bind: name)").run()
            try await db.raw("DELETE FROM endpoints WHERE workspace = \(bind: workspace) AND name = \(bind: name)").run()
            return true
        }
    }

    public func createDeployment(_ d: Deployment) async throws {
        do {
            _ = try await write("create_deployment", "deployment", "\(d.endpoint)/\(d.name)", detail: "\(d.runtime.rawValue) \(d.model)") { db in
                try await Self.bumpEndpoint(db, d.workspace, d.endpoint, at: d.lastUpdatedTime)
                try await db.raw("""
                    INSERT INTO deployments (workspace, endpoint, name, model, model_version, runtime, settings_json, created_by, creation_time, last_updated_time)
                    VALUES (\(bind: d.workspace), \(bind: d.endpoint), \(bind: d.name), \(bind: d.model), \(bind: d.modelVersion), \(bind: d.runtime.rawValue),
                      \(bind: try Self.json(d.settings)), \(bind: d.createdBy), \(bind: d.creationTime), \(bind: d.lastUpdatedTime))
                    """).run()
                return true
            }
        } catch let error as LoomError where error.code == .alreadyExists {
            throw LoomError.alreadyExists("Endpoint \(d.endpoint) already has a deployment named \(d.name)")
        }
    }

    public func updateDeployment(_ d: Deployment) async throws {
        _ = try await write("update_deployment", "deployment", "\(d.endpoint)/\(d.name)", detail: "\(d.runtime.rawValue) \(d.model)") { db in
            try await Self.bumpEndpoint(db, d.workspace, d.endpoint, at: d.lastUpdatedTime)
            guard try await db.raw("""
                SELECT name FROM deployments WHERE workspace = \(bind: d.workspace) AND endpoint = \(bind: d.endpoint) AND name = \(bind: d.name)
                """).first() != nil
            else { throw LoomError.notFound("Endpoint \(d.endpoint) has no deployment named \(d.name)") }
            try await db.raw("""
                UPDATE deployments SET model = \(bind: d.model), model_version = \(bind: d.modelVersion), runtime = \(bind: d.runtime.rawValue),
                  settings_json = \(bind: try Self.json(d.settings)), last_updated_time = \(bind: d.lastUpdatedTime)
                WHERE workspace = \(bind: d.workspace) AND endpoint = \(bind: d.endpoint) AND name = \(bind: d.name)
                """).run()
            return true
        }
    }

    public func deployments(endpoint: String, workspace: String) async throws -> [Deployment] {
        try await read { db in
            try await db.raw("SELECT * FROM deployments WHERE workspace = \(bind: workspace) AND endpoint = \(bind: endpoint) ORDER BY name")
                .all().map(Self.deployment)
        }
    }

    public func deleteDeployment(endpoint: String, name: String, workspace: String) async throws {
        _ = try await write("delete_deployment", "deployment", "\(endpoint)/\(name)") { db in
            guard let e = try await db.raw("SELECT * FROM endpoints WHERE workspace = \(bind: workspace) AND name = \(bind: endpoint)")
                .first().map(Self.endpoint)
            else { throw LoomError.notFound("No endpoint named \(endpoint)") }
            guard try await db.raw("""
                SELECT name FROM deployments WHERE workspace = \(bind: workspace) AND endpoint = \(bind: endpoint) AND name = \(bind: name)
                """).first() != nil
            else { throw LoomError.notFound("Endpoint \(endpoint) has no deployment named \(name)") }
            if let weight = e.traffic[name], weight > 0 {
                throw LoomError.invalidState("Deployment \(name) gets \(weight)% of endpoint \(endpoint)'s live traffic: set it to 0 before deleting it")
            }
            if let weight = e.mirror[name], weight > 0 {
                throw LoomError.invalidState("Deployment \(name) gets \(weight)% of endpoint \(endpoint)'s traffic mirrored: set it to 0 before deleting it")
            }
            var traffic = e.traffic
            var mirror = e.mirror
            traffic[name] = nil
            mirror[name] = nil
            try await db.raw("DELETE FROM deployments WHERE workspace = \(bind: workspace) AND endpoint = \(bind: endpoint) AND name = \(bind: name)").run()
            try await db.raw("""
                UPDATE endpoints SET traffic_json = \(bind: try Self.weights(traffic)), mirror_json = \(bind: try Self.weights(mirror)),
                  generation = generation + 1, last_updated_time = \(bind: Clock.nowMillis())
                WHERE workspace = \(bind: workspace) AND name = \(bind: endpoint)
                """).run()
            return true
        }
    }

    /// Bumps an endpoint's generation (a deployment changed); `notFound` when there is none.
    static func bumpEndpoint(_ db: any SQLDatabase, _ workspace: String, _ name: String, at: Millis) async throws {
        guard try await db.raw("SELECT name FROM endpoints WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() != nil else {
            throw LoomError.notFound("No endpoint named \(name)")
        }
        try await db.raw("""
            UPDATE endpoints SET generation = generation + 1, last_updated_time = \(bind: at) WHERE workspace = \(bind: workspace) AND name = \(bind: name)
            """).run()
    }

    static func weights(_ map: [String: Int]) throws -> String { try json(map) }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String, _ what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw LoomError.internalError("stored \(what) is not valid JSON: \(error)")
        }
    }

    static func endpoint(_ row: any SQLRow) throws -> Endpoint {
        let auth = try row.string("auth_mode")
        guard let mode = Endpoint.AuthMode(rawValue: auth) else { throw LoomError.internalError("endpoint auth mode '\(auth)'") }
        return Endpoint(
            workspace: try row.string("workspace"), name: try row.string("name"), description: try row.string("description"), auth: mode,
            keyHash: try row.optionalString("key_hash"), traffic: try decodeJSON([String: Int].self, try row.string("traffic_json"), "traffic"),
            mirror: try decodeJSON([String: Int].self, try row.string("mirror_json"), "mirror"), stickyHeader: try row.optionalString("sticky_header"),
            samplingRate: try row.optionalDouble("sampling_rate") ?? 0, concurrencyLimit: try row.optionalInt64("concurrency_limit").map(Int.init),
            timeoutMillis: Int(try row.int64("timeout_ms")), maxBodyBytes: Int(try row.int64("max_body_bytes")), generation: try row.int64("generation"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), lastUpdatedTime: try row.int64("last_updated_time"))
    }

    static func deployment(_ row: any SQLRow) throws -> Deployment {
        let runtime = try row.string("runtime")
        guard let parsed = Deployment.Runtime(rawValue: runtime) else { throw LoomError.internalError("deployment runtime '\(runtime)'") }
        return Deployment(
            workspace: try row.string("workspace"), endpoint: try row.string("endpoint"), name: try row.string("name"), model: try row.string("model"),
            modelVersion: try row.optionalString("model_version"), runtime: parsed,
            settings: try decodeJSON(Deployment.Settings.self, try row.string("settings_json"), "deployment settings"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), lastUpdatedTime: try row.int64("last_updated_time"))
    }
}
