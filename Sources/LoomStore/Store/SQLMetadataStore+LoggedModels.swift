import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func createLoggedModel(_ model: LoggedModel) async throws -> LoggedModel {
        guard let eid = parseID(model.experimentID) else { throw LoomError.notFound("No Experiment with id=\(model.experimentID) exists") }
        return try await write("create_logged_model", "logged_model", model.modelID) { db in
            try await Self.requireActiveExperiment(db, eid, model.experimentID)
            if let run = model.sourceRunID {
                guard try await db.raw("SELECT run_uuid FROM runs WHERE run_uuid = \(bind: run)").first() != nil else {
                    throw LoomError.notFound("Run with id=\(run) not found")
                }
            }
            try await db.raw("""
                INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp, last_updated_timestamp, status, status_message, model_type, source_run_id, lifecycle_stage)
                VALUES (\(bind: model.modelID), \(bind: eid), \(bind: model.name), \(bind: model.artifactLocation), \(bind: model.creationTimestamp), \(bind: model.lastUpdatedTimestamp),
                        \(bind: model.status.rawValue), \(bind: model.statusMessage), \(bind: model.modelType), \(bind: model.sourceRunID), 'active')
                """).run()
            try await Self.upsertTags(db, table: "logged_model_tags", owner: "model_id", id: model.modelID, tags: model.tags)
            if !model.params.isEmpty {
                try await Self.insertParams(db, table: "logged_model_params", owner: "model_id", id: model.modelID, params: model.params)
            }
            return model
        }
    }

    public func loggedModel(id: String) async throws -> LoggedModel? {
        try await read { db in
            guard let row = try await db.raw("SELECT * FROM logged_models WHERE model_id = \(bind: id)").first() else { return nil }
            return try await Self.loadLoggedModels(db, rows: [row]).first
        }
    }

    public func finalizeLoggedModel(id: String, status: LoggedModelStatus, time: Millis) async throws -> LoggedModel {
        try await write("finalize_logged_model", "logged_model", id, detail: status.rawValue) { db in
            guard try await db.raw("SELECT model_id FROM logged_models WHERE model_id = \(bind: id) AND lifecycle_stage = 'active'").first() != nil else {
                throw LoomError.notFound("Logged model with ID '\(id)' not found.")
            }
            try await db.raw("UPDATE logged_models SET status = \(bind: status.rawValue), last_updated_timestamp = \(bind: time) WHERE model_id = \(bind: id)").run()
            let row = try await db.raw("SELECT * FROM logged_models WHERE model_id = \(bind: id)").first()!
            return try await Self.loadLoggedModels(db, rows: [row])[0]
        }
    }

    public func deleteLoggedModel(id: String, time: Millis) async throws {
        try await write("delete_logged_model", "logged_model", id) { db in
            guard try await db.raw("SELECT model_id FROM logged_models WHERE model_id = \(bind: id) AND lifecycle_stage = 'active'").first() != nil else {
                throw LoomError.notFound("Logged model with ID '\(id)' not found.")
            }
            try await db.raw("UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp = \(bind: time) WHERE model_id = \(bind: id)").run()
        }
    }

    public func searchLoggedModels(_ search: EntitySearch) async throws -> Page<LoggedModel> {
        let p = predicates
        var conditions: [SQLQueryString] = []
        let ids = search.experimentIDs.compactMap(parseID) as [any Encodable & Sendable]
        if !search.experimentIDs.isEmpty {
            conditions.append(ids.isEmpty ? "1 = 0" : "lm.experiment_id IN (\(binds: ids))")
        }
        let stages = search.viewType.stages.map(\.rawValue) as [any Encodable & Sendable]
        conditions.append("lm.lifecycle_stage IN (\(binds: stages))")
        for clause in search.filter {
            switch clause.entity {
            case .attribute:
                let column: String
                switch clause.key {
                case "name": column = "lm.name"
                case "model_id": column = "lm.model_id"
                case "model_type": column = "lm.model_type"
                case "status": column = "lm.status"
                case "source_run_id": column = "lm.source_run_id"
                case "creation_timestamp": column = "lm.creation_timestamp"
                case "last_updated_timestamp": column = "lm.last_updated_timestamp"
                default: throw LoomError.invalidParameter("Invalid attribute key '\(clause.key)' for logged models")
                }
                if case .number(let v) = clause.value {
                    conditions.append(p.number(column, clause.comparator, v, integer: true))
                } else {
                    conditions.append(p.string(column, clause.comparator, clause.value))
                }
            case .metric:
                guard case .number(let v) = clause.value else { continue }
                conditions.append("""
                    EXISTS (SELECT 1 FROM metrics mm WHERE mm.model_id = lm.model_id AND mm.key = \(bind: clause.key) AND mm.is_nan = 0 AND \(p.number("mm.value", clause.comparator, v)))
                    """)
            case .param:
                conditions.append(tagPredicate(table: "logged_model_params", ownerColumn: "model_id", outerColumn: "lm.model_id", clause: clause))
            case .tag:
                conditions.append(tagPredicate(table: "logged_model_tags", ownerColumn: "model_id", outerColumn: "lm.model_id", clause: clause))
            case .dataset:
                throw LoomError.invalidParameter("Invalid entity type 'dataset' for logged models")
            }
        }
        var orders: [String] = []
        var orderJoins: [SQLQueryString] = []
        for (i, o) in search.orderBy.enumerated() {
            switch o.entity {
            case .attribute:
                let column = ["name": "lm.name", "model_id": "lm.model_id", "creation_timestamp": "lm.creation_timestamp", "last_updated_timestamp": "lm.last_updated_timestamp", "status": "lm.status", "model_type": "lm.model_type", "source_run_id": "lm.source_run_id"][o.key] ?? "lm.creation_timestamp"
                orders.append(p.order(column, ascending: o.ascending))
            case .metric:
                let alias = "om\(i)"
                orderJoins.append("LEFT JOIN (SELECT model_id, MAX(value) AS value FROM metrics WHERE key = \(bind: o.key) AND model_id IS NOT NULL AND is_nan = 0 GROUP BY model_id) \(unsafeRaw: alias) ON \(unsafeRaw: alias).model_id = lm.model_id")
                orders.append(p.order("\(alias).value", ascending: o.ascending))
            default:
                throw LoomError.invalidParameter("Invalid order_by entity '\(o.entity.rawValue)' for logged models")
            }
        }
        orders.append("lm.creation_timestamp DESC")
        orders.append("lm.model_id ASC")
        let query: SQLQueryString = """
            SELECT lm.* FROM logged_models lm \(orderJoins.joined(separator: " ")) WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(unsafeRaw: orders.joined(separator: ", ")) LIMIT \(bind: search.maxResults + 1) OFFSET \(bind: search.offset)
            """
        return try await read { db in
            let rows = try await db.raw(query).all()
            let models = try await Self.loadLoggedModels(db, rows: Array(rows.prefix(search.maxResults)))
            return Page(items: models, nextPageToken: rows.count > search.maxResults ? PageToken.encode(offset: search.offset + search.maxResults) : nil)
        }
    }

    public func setLoggedModelTags(id: String, tags: [Tag]) async throws {
        try await write("set_logged_model_tags", "logged_model", id) { db in
            try await Self.requireLoggedModel(db, id)
            try await Self.upsertTags(db, table: "logged_model_tags", owner: "model_id", id: id, tags: tags)
        }
    }

    public func deleteLoggedModelTag(id: String, key: String) async throws {
        try await write("delete_logged_model_tag", "logged_model", id, detail: key) { db in
            try await Self.requireLoggedModel(db, id)
            let gone = try await db.raw("DELETE FROM logged_model_tags WHERE model_id = \(bind: id) AND key = \(bind: key) RETURNING key").all()
            guard !gone.isEmpty else { throw LoomError.notFound("No tag with key '\(key)' found for logged model with ID '\(id)'.") }
        }
    }

    public func logLoggedModelParams(id: String, params: [Param]) async throws {
        try await write("log_logged_model_params", "logged_model", id) { db in
            try await Self.requireLoggedModel(db, id)
            try await Self.insertParams(db, table: "logged_model_params", owner: "model_id", id: id, params: params)
        }
    }

    static func requireLoggedModel(_ db: any SQLDatabase, _ id: String) async throws {
        guard try await db.raw("SELECT model_id FROM logged_models WHERE model_id = \(bind: id) AND lifecycle_stage = 'active'").first() != nil else {
            throw LoomError.notFound("Logged model with ID '\(id)' not found.")
        }
    }

    static func loadLoggedModels(_ db: any SQLDatabase, rows: [any SQLRow]) async throws -> [LoggedModel] {
        var models: [LoggedModel] = try rows.map { r in
            LoggedModel(
                modelID: try r.string("model_id"), experimentID: String(try r.int64("experiment_id")), name: try r.string("name"),
                artifactLocation: try r.string("artifact_location"), creationTimestamp: try r.int64("creation_timestamp"),
                lastUpdatedTimestamp: try r.int64("last_updated_timestamp"),
                status: LoggedModelStatus(rawValue: try r.string("status")) ?? .pending, statusMessage: try r.optionalString("status_message"),
                modelType: try r.optionalString("model_type"), sourceRunID: try r.optionalString("source_run_id"),
                lifecycleStage: LifecycleStage(rawValue: try r.string("lifecycle_stage")) ?? .active)
        }
        guard !models.isEmpty else { return [] }
        let ids = models.map(\.modelID) as [any Encodable & Sendable]
        var tags: [String: [Tag]] = [:], params: [String: [Param]] = [:], metrics: [String: [Metric]] = [:]
        for r in try await db.raw("SELECT model_id, key, value FROM logged_model_tags WHERE model_id IN (\(binds: ids)) ORDER BY key").all() {
            tags[try r.string("model_id"), default: []].append(Tag(key: try r.string("key"), value: try r.string("value")))
        }
        for r in try await db.raw("SELECT model_id, key, value FROM logged_model_params WHERE model_id IN (\(binds: ids)) ORDER BY key").all() {
            params[try r.string("model_id"), default: []].append(Param(key: try r.string("key"), value: try r.string("value")))
        }
        for r in try await db.raw("""
            SELECT run_uuid, model_id, key, value, is_nan, timestamp, step, dataset_name, dataset_digest FROM metrics
            WHERE model_id IN (\(binds: ids)) ORDER BY key, step, timestamp
            """).all() {
            var m = try decodeMetric(r, runID: try r.string("run_uuid"))
            m.modelID = try r.string("model_id")
            // Keep the newest point per (key, dataset).
            var list = metrics[m.modelID!, default: []]
            if let i = list.firstIndex(where: { $0.key == m.key && $0.datasetName == m.datasetName && $0.datasetDigest == m.datasetDigest }) {
                list[i] = m
            } else {
                list.append(m)
            }
            metrics[m.modelID!] = list
        }
        for i in models.indices {
            let id = models[i].modelID
            models[i].tags = tags[id] ?? []
            models[i].params = params[id] ?? []
            models[i].metrics = metrics[id] ?? []
        }
        return models
    }
}
