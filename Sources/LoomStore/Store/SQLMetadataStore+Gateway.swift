import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func applyGatewayResource(_ r: GatewayResource) async throws -> (GatewayResource, changed: Bool) {
        let outcome: (GatewayResource, Bool) = try await write("apply_\(r.kind.rawValue)", r.kind.rawValue, r.workspace + "/" + r.name) { db in
            let match = SQLQueryString("workspace = \(bind: r.workspace) AND kind = \(bind: r.kind.rawValue) AND name = \(bind: r.name)")
            if let row = try await db.raw("SELECT * FROM gateway_resources WHERE \(match)").first() {
                let old = try Self.gatewayResource(row)
                guard old.specText != r.specText else { return (old, false) }
                try await db.raw("""
                    UPDATE gateway_resources SET spec_text = \(bind: r.specText), version = version + 1, last_updated_time = \(bind: r.lastUpdatedTime)
                    WHERE \(match)
                    """).run()
            } else {
                try await db.raw("""
                    INSERT INTO gateway_resources (workspace, kind, name, spec_text, version, created_by, creation_time, last_updated_time)
                    VALUES (\(bind: r.workspace), \(bind: r.kind.rawValue), \(bind: r.name), \(bind: r.specText), 1, \(bind: r.createdBy),
                      \(bind: r.creationTime), \(bind: r.lastUpdatedTime))
                    """).run()
            }
            guard let saved = try await db.raw("SELECT * FROM gateway_resources WHERE \(match)").first() else {
                throw LoomError.internalError("\(r.kind.rawValue) \(r.name) vanished while it was applied")
            }
            return (try Self.gatewayResource(saved), true)
        }
        return (outcome.0, changed: outcome.1)
    }

    public func gatewayResources(workspace: String?, kind: GatewayResource.Kind?) async throws -> [GatewayResource] {
        try await read { db in
            var conditions: [SQLQueryString] = []
            if let workspace { conditions.append("workspace = \(bind: workspace)") }
            if let kind { conditions.append("kind = \(bind: kind.rawValue)") }
            let filter: SQLQueryString = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            return try await db.raw("SELECT * FROM gateway_resources\(filter) ORDER BY workspace, kind, name").all().map(Self.gatewayResource)
        }
    }

    public func deleteGatewayResource(kind: GatewayResource.Kind, name: String, workspace: String) async throws -> Bool {
        try await write("delete_\(kind.rawValue)", kind.rawValue, workspace + "/" + name) { db in
            let match = SQLQueryString("workspace = \(bind: workspace) AND kind = \(bind: kind.rawValue) AND name = \(bind: name)")
            guard try await db.raw("SELECT name FROM gateway_resources WHERE \(match)").first() != nil else { return false }
            try await db.raw("DELETE FROM gateway_resources WHERE \(match)").run()
            return true
        }
    }

    public func upsertCatalogModels(_ models: [CatalogModel]) async throws {
        guard !models.isEmpty else { return }
        let detail = models.count == 1 ? "\(models[0].provider)/\(models[0].model)" : "\(models.count) models"
        try await write("update_catalog", "catalog", models[0].workspace, detail: detail) { db in
            for m in models {
                try await db.raw("""
                    INSERT INTO catalog_models (workspace, provider, model, capabilities, context_length, input_price, output_price, license, status,
                      deprecation_date, description, source, last_updated_time)
                    VALUES (\(bind: m.workspace), \(bind: m.provider), \(bind: m.model), \(bind: Self.jsonList(m.capabilities)), \(bind: m.contextLength),
                      \(bind: m.inputPrice), \(bind: m.outputPrice), \(bind: m.license), \(bind: m.status), \(bind: m.deprecationDate),
                      \(bind: m.description), \(bind: m.source), \(bind: m.lastUpdatedTime))
                    ON CONFLICT (workspace, provider, model) DO UPDATE SET capabilities = excluded.capabilities,
                      context_length = excluded.context_length, input_price = excluded.input_price, output_price = excluded.output_price,
                      license = excluded.license, status = excluded.status, deprecation_date = excluded.deprecation_date,
                      description = excluded.description, source = excluded.source, last_updated_time = excluded.last_updated_time
                    """).run()
            }
        }
    }

    public func catalogModels(workspace: String?, provider: String?) async throws -> [CatalogModel] {
        try await read { db in
            var conditions: [SQLQueryString] = []
            if let workspace { conditions.append("workspace = \(bind: workspace)") }
            if let provider { conditions.append("provider = \(bind: provider)") }
            let filter: SQLQueryString = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            return try await db.raw("SELECT * FROM catalog_models\(filter) ORDER BY workspace, provider, model").all().map(Self.catalogModel)
        }
    }

    public func deleteCatalogModel(provider: String, model: String, workspace: String) async throws -> Bool {
        try await write("delete_catalog_model", "catalog", workspace, detail: "\(provider)/\(model)") { db in
            let match = SQLQueryString("workspace = \(bind: workspace) AND provider = \(bind: provider) AND model = \(bind: model)")
            guard try await db.raw("SELECT model FROM catalog_models WHERE \(match)").first() != nil else { return false }
            try await db.raw("DELETE FROM catalog_models WHERE \(match)").run()
            return true
        }
    }

    public func createGatewayKey(_ k: GatewayKey) async throws -> GatewayKey {
        try await write("create_gateway_key", "gateway_key", k.id, detail: "\(k.name) (\(k.prefix)…)") { db in
            try await db.raw("""
                INSERT INTO gateway_keys (id, workspace, name, key_prefix, key_hash, routes, requests_per_minute, tokens_per_minute, spend_per_day,
                  created_by, creation_time, revoked_time)
                VALUES (\(bind: k.id), \(bind: k.workspace), \(bind: k.name), \(bind: k.prefix), \(bind: k.keyHash), \(bind: Self.jsonList(k.routes)),
                  \(bind: k.requestsPerMinute), \(bind: k.tokensPerMinute), \(bind: k.spendPerDay), \(bind: k.createdBy), \(bind: k.creationTime), NULL)
                """).run()
            return k
        }
    }

    public func gatewayKeys(workspace: String?) async throws -> [GatewayKey] {
        try await read { db in
            let filter: SQLQueryString = workspace.map { " WHERE workspace = \(bind: $0)" } ?? ""
            return try await db.raw("SELECT * FROM gateway_keys\(filter) ORDER BY workspace, name, creation_time").all().map(Self.gatewayKey)
        }
    }

    public func revokeGatewayKey(id: String, workspace: String, time: Millis) async throws -> Bool {
        try await write("revoke_gateway_key", "gateway_key", id) { db in
            let match = SQLQueryString("id = \(bind: id) AND workspace = \(bind: workspace) AND revoked_time IS NULL")
            guard try await db.raw("SELECT id FROM gateway_keys WHERE \(match)").first() != nil else { return false }
            try await db.raw("UPDATE gateway_keys SET revoked_time = \(bind: time) WHERE \(match)").run()
            return true
        }
    }

    public func addGatewayUsage(_ rows: [GatewayUsage]) async throws {
        guard !rows.isEmpty else { return }
        try await writeUnaudited { db in
            for u in rows {
                try await db.raw("""
                    INSERT INTO gateway_usage (workspace, day, key_id, route, provider, model, requests, errors, cached, prompt_tokens, completion_tokens, cost)
                    VALUES (\(bind: u.workspace), \(bind: u.day), \(bind: u.key), \(bind: u.route), \(bind: u.provider), \(bind: u.model), \(bind: u.requests),
                      \(bind: u.errors), \(bind: u.cached), \(bind: u.promptTokens), \(bind: u.completionTokens), \(bind: u.cost))
                    ON CONFLICT (workspace, day, key_id, route, provider, model) DO UPDATE SET requests = gateway_usage.requests + excluded.requests,
                      errors = gateway_usage.errors + excluded.errors, cached = gateway_usage.cached + excluded.cached,
                      prompt_tokens = gateway_usage.prompt_tokens + excluded.prompt_tokens,
                      completion_tokens = gateway_usage.completion_tokens + excluded.completion_tokens, cost = gateway_usage.cost + excluded.cost
                    """).run()
            }
        }
    }

    public func gatewayUsage(workspace: String, fromDay: String, toDay: String) async throws -> [GatewayUsage] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM gateway_usage WHERE workspace = \(bind: workspace) AND day >= \(bind: fromDay) AND day <= \(bind: toDay)
                ORDER BY day, key_id, route, provider, model
                """).all().map { row in
                GatewayUsage(
                    workspace: try row.string("workspace"), day: try row.string("day"), key: try row.string("key_id"), route: try row.string("route"),
                    provider: try row.string("provider"), model: try row.string("model"), requests: try row.int64("requests"),
                    errors: try row.int64("errors"), cached: try row.int64("cached"), promptTokens: try row.int64("prompt_tokens"),
                    completionTokens: try row.int64("completion_tokens"), cost: try row.optionalDouble("cost") ?? 0)
            }
        }
    }

    /// Rows per INSERT when traces are written to PostgreSQL: one statement per 50 traces, not
    /// per trace (SQLite binds each trace to one prepared statement instead).
    static let tracesPerStatement = 50

    public func addGatewayTraces(_ traces: [GatewayTrace]) async throws {
        guard !traces.isEmpty else { return }
        try await writeUnaudited { db in
            if let sqlite = db as? DirectSQLiteDatabase {
                // One prepared one-row INSERT per trace with its values bound as they are: no SQL
                // text or list of binds built for thousands of traces a flush.
                try sqlite.handle.runEach("""
                    INSERT INTO gateway_traces (id, workspace, route, key_id, task, provider, model, status, stream, start_time, duration_us,
                      prompt_tokens, completion_tokens, cost, input, output, error, spans)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO NOTHING
                    """, traces) { t, b in
                    b.bind(t.id)
                    b.bind(t.workspace)
                    b.bind(t.route)
                    b.bind(t.key)
                    b.bind(t.task)
                    b.bind(t.provider)
                    b.bind(t.model)
                    b.bind(Int64(t.status))
                    b.bind(t.stream ? Int64(1) : Int64(0))
                    b.bind(t.startTime)
                    b.bind(t.durationMicros)
                    b.bind(t.promptTokens)
                    b.bind(t.completionTokens)
                    b.bind(t.cost)
                    b.bind(t.input)
                    b.bind(t.output)
                    b.bind(t.error)
                    b.bind(t.spansJSON)
                }
                return
            }
            var start = 0
            while start < traces.count {
                let batch = traces[start..<min(start + Self.tracesPerStatement, traces.count)]
                start = batch.endIndex
                let rows: [SQLQueryString] = batch.map { t in
                    """
                    (\(bind: t.id), \(bind: t.workspace), \(bind: t.route), \(bind: t.key), \(bind: t.task), \(bind: t.provider), \(bind: t.model),
                      \(bind: Int64(t.status)), \(bind: t.stream ? Int64(1) : Int64(0)), \(bind: t.startTime), \(bind: t.durationMicros), \(bind: t.promptTokens),
                      \(bind: t.completionTokens), \(bind: t.cost), \(bind: t.input), \(bind: t.output), \(bind: t.error), \(bind: t.spansJSON))
                    """
                }
                try await db.raw("""
                    INSERT INTO gateway_traces (id, workspace, route, key_id, task, provider, model, status, stream, start_time, duration_us,
                      prompt_tokens, completion_tokens, cost, input, output, error, spans)
                    VALUES \(rows.joined(separator: ", "))
                    ON CONFLICT (id) DO NOTHING
                    """).run()
            }
        }
    }

    public func gatewayTraces(workspace: String, route: String?, failedOnly: Bool, before: Millis?, limit: Int) async throws -> [GatewayTrace] {
        try await read { db in
            var conditions: [SQLQueryString] = ["workspace = \(bind: workspace)"]
            if let route { conditions.append("route = \(bind: route)") }
            if failedOnly { conditions.append("status >= 400") }
            if let before { conditions.append("start_time < \(bind: before)") }
            return try await db.raw("""
                SELECT * FROM gateway_traces WHERE \(conditions.joined(separator: " AND ")) ORDER BY start_time DESC, id LIMIT \(bind: Int64(limit))
                """).all().map(Self.gatewayTrace)
        }
    }

    public func gatewayTrace(id: String, workspace: String) async throws -> GatewayTrace? {
        try await read { db in
            try await db.raw("SELECT * FROM gateway_traces WHERE id = \(bind: id) AND workspace = \(bind: workspace)").first().map(Self.gatewayTrace)
        }
    }

    public func deleteGatewayTraces(before time: Millis) async throws -> Int {
        try await writeUnaudited { db in
            let n = try await db.raw("SELECT COUNT(*) AS n FROM gateway_traces WHERE start_time < \(bind: time)").first()?.int64("n") ?? 0
            if n > 0 { try await db.raw("DELETE FROM gateway_traces WHERE start_time < \(bind: time)").run() }
            return Int(n)
        }
    }

    static func gatewayTrace(_ row: any SQLRow) throws -> GatewayTrace {
        GatewayTrace(
            id: try row.string("id"), workspace: try row.string("workspace"), route: try row.string("route"), key: try row.string("key_id"),
            task: try row.string("task"), provider: try row.optionalString("provider"), model: try row.optionalString("model"),
            status: Int(try row.int64("status")), stream: try row.int64("stream") != 0, startTime: try row.int64("start_time"),
            durationMicros: try row.int64("duration_us"), promptTokens: try row.int64("prompt_tokens"), completionTokens: try row.int64("completion_tokens"),
            cost: try row.optionalDouble("cost") ?? 0, input: try row.string("input"), output: try row.string("output"), error: try row.optionalString("error"),
            spansJSON: try row.string("spans"))
    }

    // MARK: Rows

    static func jsonList(_ items: [String]) -> String {
        "[" + items.map(JSONValue.quoted).joined(separator: ",") + "]"
    }

    static func list(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func gatewayResource(_ row: any SQLRow) throws -> GatewayResource {
        let kind = try row.string("kind")
        guard let parsed = GatewayResource.Kind(rawValue: kind) else { throw LoomError.internalError("gateway resource kind '\(kind)'") }
        return GatewayResource(
            workspace: try row.string("workspace"), kind: parsed, name: try row.string("name"), specText: try row.string("spec_text"),
            version: try row.int64("version"), createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"),
            lastUpdatedTime: try row.int64("last_updated_time"))
    }

    static func catalogModel(_ row: any SQLRow) throws -> CatalogModel {
        CatalogModel(
            workspace: try row.string("workspace"), provider: try row.string("provider"), model: try row.string("model"),
            capabilities: list(try row.string("capabilities")), contextLength: try row.optionalInt64("context_length"),
            inputPrice: try row.optionalDouble("input_price"), outputPrice: try row.optionalDouble("output_price"), license: try row.optionalString("license"),
            status: try row.string("status"), deprecationDate: try row.optionalString("deprecation_date"), description: try row.string("description"),
            source: try row.string("source"), lastUpdatedTime: try row.int64("last_updated_time"))
    }

    static func gatewayKey(_ row: any SQLRow) throws -> GatewayKey {
        GatewayKey(
            id: try row.string("id"), workspace: try row.string("workspace"), name: try row.string("name"), prefix: try row.string("key_prefix"),
            keyHash: try row.string("key_hash"), routes: list(try row.string("routes")), requestsPerMinute: try row.optionalInt64("requests_per_minute"),
            tokensPerMinute: try row.optionalInt64("tokens_per_minute"), spendPerDay: try row.optionalDouble("spend_per_day"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), revokedTime: try row.optionalInt64("revoked_time"))
    }
}
