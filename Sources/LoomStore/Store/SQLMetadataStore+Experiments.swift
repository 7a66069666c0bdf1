import LoomCore
import SQLKit

extension SQLMetadataStore {
    // MARK: Workspaces

    public func createWorkspace(_ workspace: Workspace) async throws -> Workspace {
        try await write("create_workspace", "workspace", workspace.name) { db in
            try await db.raw("INSERT INTO workspaces (name, description, creation_time) VALUES (\(bind: workspace.name), \(bind: workspace.description), \(bind: workspace.creationTime))").run()
            return workspace
        }
    }

    public func workspace(named name: String) async throws -> Workspace? {
        try await read { db in
            try await db.raw("SELECT * FROM workspaces WHERE name = \(bind: name)").first().map(Self.decodeWorkspace)
        }
    }

    public func listWorkspaces() async throws -> [Workspace] {
        try await read { db in
            try await db.raw("SELECT * FROM workspaces ORDER BY name").all().map(Self.decodeWorkspace)
        }
    }

    static func decodeWorkspace(_ row: any SQLRow) throws -> Workspace {
        Workspace(name: try row.string("name"), description: try row.optionalString("description"), creationTime: try row.int64("creation_time"))
    }

    // MARK: Experiments

    public func createExperiment(
        name: String, workspace: String, artifactLocation: String?, defaultArtifactLocation: @escaping @Sendable (String) -> String,
        tags: [Tag], time: Millis
    ) async throws -> Experiment {
        do {
            return try await write("create_experiment", "experiment", entityIDFrom: { (e: Experiment) in e.id }) { db in
                guard let row = try await db.raw("""
                    INSERT INTO experiments (workspace, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                    VALUES (\(bind: workspace), \(bind: name), \(bind: artifactLocation ?? ""), 'active', \(bind: time), \(bind: time))
                    RETURNING experiment_id
                    """).first()
                else { throw LoomError.internalError("insert returned no id") }
                let id = try row.int64("experiment_id")
                let location = artifactLocation ?? defaultArtifactLocation(String(id))
                if artifactLocation == nil {
                    try await db.raw("UPDATE experiments SET artifact_location = \(bind: location) WHERE experiment_id = \(bind: id)").run()
                }
                for tag in tags {
                    try await db.raw("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (\(bind: id), \(bind: tag.key), \(bind: tag.value))").run()
                }
                return Experiment(id: String(id), name: name, artifactLocation: location, lifecycleStage: .active, creationTime: time, lastUpdateTime: time, tags: tags, workspace: workspace)
            }
        } catch let e as LoomError where e.code == .alreadyExists {
            throw LoomError.alreadyExists("Experiment '\(name)' already exists.")
        }
    }

    public func experiment(id: String) async throws -> Experiment? {
        guard let eid = parseID(id) else { return nil }
        return try await read { db in
            guard let row = try await db.raw("SELECT * FROM experiments WHERE experiment_id = \(bind: eid)").first() else { return nil }
            var e = try Self.decodeExperiment(row)
            e.tags = try await Self.experimentTags(db, ids: [eid])[eid] ?? []
            return e
        }
    }

    public func experiment(named name: String, workspace: String) async throws -> Experiment? {
        try await read { db in
            guard let row = try await db.raw("SELECT * FROM experiments WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() else { return nil }
            var e = try Self.decodeExperiment(row)
            let eid = try row.int64("experiment_id")
            e.tags = try await Self.experimentTags(db, ids: [eid])[eid] ?? []
            return e
        }
    }

    public func searchExperiments(_ search: EntitySearch) async throws -> Page<Experiment> {
        var conditions: [SQLQueryString] = []
        let stages = search.viewType.stages.map(\.rawValue) as [any Encodable & Sendable]
        conditions.append("e.lifecycle_stage IN (\(binds: stages))")
        if let ws = search.workspace { conditions.append("e.workspace = \(bind: ws)") }
        let p = predicates
        for clause in search.filter {
            switch clause.entity {
            case .attribute:
                switch clause.key {
                case "name": conditions.append(p.string("e.name", clause.comparator, clause.value))
                case "experiment_id":
                    switch clause.value {
                    case .list(let items):
                        let ids = items.compactMap { Int64($0) } as [any Encodable & Sendable]
                        let op = clause.comparator == .notIn ? "NOT IN" : "IN"
                        conditions.append(ids.isEmpty ? (clause.comparator == .notIn ? "1 = 1" : "1 = 0") : "e.experiment_id \(unsafeRaw: op) (\(binds: ids))")
                    case .string(let s):
                        guard let id = Int64(s), clause.comparator == .equal || clause.comparator == .notEqual else {
                            throw LoomError.invalidParameter("Invalid experiment_id comparison in filter")
                        }
                        conditions.append(p.number("e.experiment_id", clause.comparator, Double(id), integer: true))
                    case .number(let v):
                        conditions.append(p.number("e.experiment_id", clause.comparator, v, integer: true))
                    case .none:
                        throw LoomError.invalidParameter("Invalid experiment_id comparison in filter")
                    }
                case "creation_time", "last_update_time":
                    if case .number(let v) = clause.value { conditions.append(p.number("e.\(clause.key)", clause.comparator, v, integer: true)) }
                default: throw LoomError.invalidParameter("Invalid attribute key '\(clause.key)'")
                }
            case .tag:
                conditions.append(tagPredicate(table: "experiment_tags", ownerColumn: "experiment_id", outerColumn: "e.experiment_id", clause: clause))
            default:
                throw LoomError.invalidParameter("Invalid entity type '\(clause.entity.rawValue)' for searching experiments")
            }
        }
        var orders: [String] = []
        for o in search.orderBy {
            guard o.entity == .attribute else { throw LoomError.invalidParameter("Invalid order_by entity '\(o.entity.rawValue)' for experiments") }
            switch o.key {
            case "name", "experiment_id", "creation_time", "last_update_time": orders.append(p.order("e.\(o.key)", ascending: o.ascending))
            default: throw LoomError.invalidParameter("Invalid order_by key '\(o.key)'")
            }
        }
        if search.orderBy.isEmpty { orders.append("e.creation_time DESC") }
        orders.append("e.experiment_id ASC")
        let whereSQL = conditions.joined(separator: " AND ")
        let limit = search.maxResults + 1
        let query: SQLQueryString = "SELECT e.* FROM experiments e WHERE \(whereSQL) ORDER BY \(unsafeRaw: orders.joined(separator: ", ")) LIMIT \(bind: limit) OFFSET \(bind: search.offset)"
        return try await read { db in
            let rows = try await db.raw(query).all()
            var items = try rows.prefix(search.maxResults).map(Self.decodeExperiment)
            let ids = items.compactMap { parseID($0.id) }
            let tags = try await Self.experimentTags(db, ids: ids)
            for i in items.indices { items[i].tags = tags[parseID(items[i].id) ?? -1] ?? [] }
            let next = rows.count > search.maxResults ? PageToken.encode(offset: search.offset + search.maxResults) : nil
            return Page(items: items, nextPageToken: next)
        }
    }

    public func renameExperiment(id: String, to name: String, time: Millis) async throws {
        guard let eid = parseID(id) else { throw LoomError.notFound("No Experiment with id=\(id) exists") }
        do {
            try await write("rename_experiment", "experiment", id, detail: name) { db in
                let row = try await db.raw("SELECT lifecycle_stage FROM experiments WHERE experiment_id = \(bind: eid)").first()
                guard let row else { throw LoomError.notFound("No Experiment with id=\(id) exists") }
                guard try row.string("lifecycle_stage") == "active" else {
                    throw LoomError.invalidParameter("Cannot rename a non-active experiment.")
                }
                try await db.raw("UPDATE experiments SET name = \(bind: name), last_update_time = \(bind: time) WHERE experiment_id = \(bind: eid)").run()
            }
        } catch let e as LoomError where e.code == .alreadyExists {
            throw LoomError.alreadyExists("Experiment '\(name)' already exists.")
        }
    }

    public func setExperimentLifecycle(id: String, stage: LifecycleStage, time: Millis) async throws {
        guard let eid = parseID(id) else { throw LoomError.notFound("No Experiment with id=\(id) exists") }
        try await write(stage == .deleted ? "delete_experiment" : "restore_experiment", "experiment", id) { db in
            guard let row = try await db.raw("SELECT lifecycle_stage FROM experiments WHERE experiment_id = \(bind: eid)").first() else {
                throw LoomError.notFound("No Experiment with id=\(id) exists")
            }
            let current = try row.string("lifecycle_stage")
            if stage == .deleted {
                guard eid != 0 else { throw LoomError.invalidParameter("Cannot delete the default experiment '0'. This is an internally reserved experiment.") }
                guard current == "active" else { throw LoomError.invalidParameter("Cannot delete an already deleted experiment.") }
            } else {
                guard current == "deleted" else { throw LoomError.invalidParameter("Cannot restore an active experiment.") }
            }
            try await db.raw("UPDATE experiments SET lifecycle_stage = \(bind: stage.rawValue), last_update_time = \(bind: time) WHERE experiment_id = \(bind: eid)").run()
            if stage == .deleted {
                try await db.raw("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = \(bind: time) WHERE experiment_id = \(bind: eid) AND lifecycle_stage = 'active'").run()
            } else {
                try await db.raw("UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = \(bind: eid) AND lifecycle_stage = 'deleted'").run()
            }
        }
    }

    public func setExperimentTag(id: String, tag: Tag) async throws {
        guard let eid = parseID(id) else { throw LoomError.notFound("No Experiment with id=\(id) exists") }
        try await write("set_experiment_tag", "experiment", id, detail: tag.key) { db in
            try await Self.requireActiveExperiment(db, eid, id)
            try await db.raw("""
                INSERT INTO experiment_tags (experiment_id, key, value) VALUES (\(bind: eid), \(bind: tag.key), \(bind: tag.value))
                ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value
                """).run()
        }
    }

    public func deleteExperimentTag(id: String, key: String) async throws {
        guard let eid = parseID(id) else { throw LoomError.notFound("No Experiment with id=\(id) exists") }
        try await write("delete_experiment_tag", "experiment", id, detail: key) { db in
            try await Self.requireActiveExperiment(db, eid, id)
            let gone = try await db.raw("DELETE FROM experiment_tags WHERE experiment_id = \(bind: eid) AND key = \(bind: key) RETURNING key").all()
            guard !gone.isEmpty else { throw LoomError.notFound("No tag with name: \(key) in experiment with id \(id)") }
        }
    }

    static func requireActiveExperiment(_ db: any SQLDatabase, _ eid: Int64, _ id: String) async throws {
        guard let row = try await db.raw("SELECT lifecycle_stage FROM experiments WHERE experiment_id = \(bind: eid)").first() else {
            throw LoomError.notFound("No Experiment with id=\(id) exists")
        }
        guard try row.string("lifecycle_stage") == "active" else {
            throw LoomError.invalidParameter("The experiment \(id) must be in the 'active' state. Current state is deleted.")
        }
    }

    static func decodeExperiment(_ row: any SQLRow) throws -> Experiment {
        Experiment(
            id: String(try row.int64("experiment_id")),
            name: try row.string("name"),
            artifactLocation: try row.string("artifact_location"),
            lifecycleStage: LifecycleStage(rawValue: try row.string("lifecycle_stage")) ?? .active,
            creationTime: try row.int64("creation_time"),
            lastUpdateTime: try row.int64("last_update_time"),
            workspace: try row.string("workspace"))
    }

    static func experimentTags(_ db: any SQLDatabase, ids: [Int64]) async throws -> [Int64: [Tag]] {
        guard !ids.isEmpty else { return [:] }
        var out: [Int64: [Tag]] = [:]
        for chunk in ids.chunked(500) {
            let binds = Array(chunk) as [any Encodable & Sendable]
            let rows = try await db.raw("SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (\(binds: binds)) ORDER BY key").all()
            for r in rows {
                out[try r.int64("experiment_id"), default: []].append(Tag(key: try r.string("key"), value: try r.string("value")))
            }
        }
        return out
    }
}
