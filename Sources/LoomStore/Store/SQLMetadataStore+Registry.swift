import LoomCore
import SQLKit

extension SQLMetadataStore {
    static let deletedStage = "Deleted_Internal"

    // MARK: Registered models

    public func createRegisteredModel(name: String, workspace: String, description: String?, tags: [Tag], time: Millis) async throws -> RegisteredModel {
        do {
            return try await write("create_registered_model", "registered_model", name) { db in
                guard let row = try await db.raw("""
                    INSERT INTO registered_models (workspace, name, creation_time, last_updated_time, description)
                    VALUES (\(bind: workspace), \(bind: name), \(bind: time), \(bind: time), \(bind: description)) RETURNING id
                    """).first() else { throw LoomError.internalError("insert returned no id") }
                let ref = try row.int64("id")
                for tag in Self.dedupeLast(tags) {
                    try await db.raw("INSERT INTO registered_model_tags (model_ref, key, value) VALUES (\(bind: ref), \(bind: tag.key), \(bind: tag.value))").run()
                }
                return RegisteredModel(name: name, creationTimestamp: time, lastUpdatedTimestamp: time, description: description, tags: Self.dedupeLast(tags), workspace: workspace)
            }
        } catch let e as LoomError where e.code == .alreadyExists {
            throw LoomError.alreadyExists("Registered Model (name=\(name)) already exists.")
        }
    }

    public func registeredModel(named name: String, workspace: String) async throws -> RegisteredModel? {
        try await read { db in
            guard let row = try await db.raw("SELECT * FROM registered_models WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() else { return nil }
            return try await Self.loadRegisteredModels(db, rows: [row]).first
        }
    }

    public func renameRegisteredModel(name: String, workspace: String, to newName: String, time: Millis) async throws -> RegisteredModel {
        do {
            return try await write("rename_registered_model", "registered_model", name, detail: newName) { db in
                let ref = try await Self.modelRef(db, name, workspace)
                try await db.raw("UPDATE registered_models SET name = \(bind: newName), last_updated_time = \(bind: time) WHERE id = \(bind: ref)").run()
                let row = try await db.raw("SELECT * FROM registered_models WHERE id = \(bind: ref)").first()!
                return try await Self.loadRegisteredModels(db, rows: [row])[0]
            }
        } catch let e as LoomError where e.code == .alreadyExists {
            throw LoomError.alreadyExists("Registered Model (name=\(newName)) already exists.")
        }
    }

    public func updateRegisteredModel(name: String, workspace: String, description: String?, time: Millis) async throws -> RegisteredModel {
        try await write("update_registered_model", "registered_model", name) { db in
            let ref = try await Self.modelRef(db, name, workspace)
            try await db.raw("UPDATE registered_models SET description = \(bind: description), last_updated_time = \(bind: time) WHERE id = \(bind: ref)").run()
            let row = try await db.raw("SELECT * FROM registered_models WHERE id = \(bind: ref)").first()!
            return try await Self.loadRegisteredModels(db, rows: [row])[0]
        }
    }

    public func deleteRegisteredModel(name: String, workspace: String) async throws {
        try await write("delete_registered_model", "registered_model", name) { db in
            let ref = try await Self.modelRef(db, name, workspace)
            try await db.raw("DELETE FROM registered_model_aliases WHERE model_ref = \(bind: ref)").run()
            try await db.raw("DELETE FROM model_version_tags WHERE model_ref = \(bind: ref)").run()
            try await db.raw("DELETE FROM model_versions WHERE model_ref = \(bind: ref)").run()
            try await db.raw("DELETE FROM registered_model_tags WHERE model_ref = \(bind: ref)").run()
            try await db.raw("DELETE FROM registered_models WHERE id = \(bind: ref)").run()
            try await db.raw("DELETE FROM resource_permissions WHERE kind = 'registered_model' AND resource = \(bind: name)").run()
        }
    }

    public func searchRegisteredModels(_ search: EntitySearch) async throws -> Page<RegisteredModel> {
        let p = predicates
        var conditions: [SQLQueryString] = ["rm.workspace = \(bind: search.workspace ?? Workspace.defaultName)"]
        if let prompts = search.prompts {
            conditions.append("\(unsafeRaw: prompts ? "EXISTS" : "NOT EXISTS") (SELECT 1 FROM registered_model_tags pt WHERE pt.model_ref = rm.id AND pt.key = 'mlflow.prompt.is_prompt' AND pt.value = 'true')")
        }
        for clause in search.filter {
            switch clause.entity {
            case .attribute where clause.key == "name":
                conditions.append(p.string("rm.name", clause.comparator, clause.value))
            case .tag:
                conditions.append(tagPredicate(table: "registered_model_tags", ownerColumn: "model_ref", outerColumn: "rm.id", clause: clause))
            default:
                throw LoomError.invalidParameter("Invalid filter key '\(clause.entity.rawValue).\(clause.key)' for registered models. Supported: name, tags.<key>")
            }
        }
        var orders: [String] = []
        for o in search.orderBy {
            switch o.key {
            case "name": orders.append("rm.name \(o.ascending ? "ASC" : "DESC")")
            case "timestamp", "creation_timestamp": orders.append("rm.creation_time \(o.ascending ? "ASC" : "DESC")")
            case "last_updated_timestamp": orders.append("rm.last_updated_time \(o.ascending ? "ASC" : "DESC")")
            default: throw LoomError.invalidParameter("Invalid order by key '\(o.key)' specified. Valid keys are '{'name', 'timestamp'}'")
            }
        }
        if !search.orderBy.contains(where: { $0.key == "name" }) { orders.append("rm.name ASC") }
        let query: SQLQueryString = """
            SELECT rm.* FROM registered_models rm WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(unsafeRaw: orders.joined(separator: ", ")) LIMIT \(bind: search.maxResults + 1) OFFSET \(bind: search.offset)
            """
        return try await read { db in
            let rows = try await db.raw(query).all()
            let models = try await Self.loadRegisteredModels(db, rows: Array(rows.prefix(search.maxResults)))
            return Page(items: models, nextPageToken: rows.count > search.maxResults ? PageToken.encode(offset: search.offset + search.maxResults) : nil)
        }
    }

    public func setRegisteredModelTag(name: String, workspace: String, tag: Tag) async throws {
        try await write("set_registered_model_tag", "registered_model", name, detail: tag.key) { db in
            let ref = try await Self.modelRef(db, name, workspace)
            try await db.raw("""
                INSERT INTO registered_model_tags (model_ref, key, value) VALUES (\(bind: ref), \(bind: tag.key), \(bind: tag.value))
                ON CONFLICT (model_ref, key) DO UPDATE SET value = excluded.value
                """).run()
        }
    }

    public func deleteRegisteredModelTag(name: String, workspace: String, key: String) async throws {
        try await write("delete_registered_model_tag", "registered_model", name, detail: key) { db in
            let ref = try await Self.modelRef(db, name, workspace)
            let gone = try await db.raw("DELETE FROM registered_model_tags WHERE model_ref = \(bind: ref) AND key = \(bind: key) RETURNING key").all()
            guard !gone.isEmpty else { throw LoomError.notFound("Registered model tag with key '\(key)' not found for model '\(name)'") }
        }
    }

    // MARK: Model versions

    public func createModelVersion(_ new: NewModelVersion, workspace: String) async throws -> ModelVersion {
        try await write("create_model_version", "model_version", entityIDFrom: { (v: ModelVersion) in "\(v.name)/\(v.version)" }) { db in
            let ref = try await Self.modelRef(db, new.name, workspace)
            let row = try await db.raw("SELECT MAX(version) AS v FROM model_versions WHERE model_ref = \(bind: ref)").first()
            let next = (try row?.optionalInt64("v") ?? 0) + 1
            try await db.raw("""
                INSERT INTO model_versions (model_ref, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, run_link, status, status_message, storage_location, logged_model_id)
                VALUES (\(bind: ref), \(bind: next), \(bind: new.time), \(bind: new.time), \(bind: new.description), \(bind: new.userID), 'None', \(bind: new.source),
                        \(bind: new.runID), \(bind: new.runLink), 'READY', NULL, NULL, \(bind: new.modelID))
                """).run()
            for tag in Self.dedupeLast(new.tags) {
                try await db.raw("INSERT INTO model_version_tags (model_ref, version, key, value) VALUES (\(bind: ref), \(bind: next), \(bind: tag.key), \(bind: tag.value))").run()
            }
            try await db.raw("UPDATE registered_models SET last_updated_time = \(bind: new.time) WHERE id = \(bind: ref)").run()
            return ModelVersion(name: new.name, version: String(next), creationTimestamp: new.time, lastUpdatedTimestamp: new.time, userID: new.userID,
                                currentStage: .none, description: new.description, source: new.source, runID: new.runID, runLink: new.runLink,
                                status: .ready, tags: Self.dedupeLast(new.tags), modelID: new.modelID)
        }
    }

    public func modelVersion(name: String, version: String, workspace: String) async throws -> ModelVersion? {
        guard let v = Self.parseVersion(version) else { return nil }
        return try await read { db in
            guard let row = try await db.raw("""
                SELECT mv.*, rm.name AS model_name FROM model_versions mv JOIN registered_models rm ON rm.id = mv.model_ref
                WHERE rm.workspace = \(bind: workspace) AND rm.name = \(bind: name) AND mv.version = \(bind: v) AND mv.current_stage != \(bind: Self.deletedStage)
                """).first() else { return nil }
            return try await Self.loadModelVersions(db, rows: [row]).first
        }
    }

    public func updateModelVersion(name: String, version: String, workspace: String, description: String?, time: Millis) async throws -> ModelVersion {
        try await write("update_model_version", "model_version", "\(name)/\(version)") { db in
            let (ref, v) = try await Self.versionRef(db, name, version, workspace)
            try await db.raw("UPDATE model_versions SET description = \(bind: description), last_updated_time = \(bind: time) WHERE model_ref = \(bind: ref) AND version = \(bind: v)").run()
            return try await Self.fetchVersion(db, ref, v)
        }
    }

    public func transitionModelVersionStage(name: String, version: String, workspace: String, stage: ModelStage, archiveExisting: Bool, time: Millis) async throws -> ModelVersion {
        try await write("transition_model_version_stage", "model_version", "\(name)/\(version)", detail: stage.rawValue) { db in
            let (ref, v) = try await Self.versionRef(db, name, version, workspace)
            if archiveExisting && (stage == .staging || stage == .production) {
                try await db.raw("""
                    UPDATE model_versions SET current_stage = 'Archived', last_updated_time = \(bind: time)
                    WHERE model_ref = \(bind: ref) AND version != \(bind: v) AND current_stage = \(bind: stage.rawValue)
                    """).run()
            }
            try await db.raw("UPDATE model_versions SET current_stage = \(bind: stage.rawValue), last_updated_time = \(bind: time) WHERE model_ref = \(bind: ref) AND version = \(bind: v)").run()
            try await db.raw("UPDATE registered_models SET last_updated_time = \(bind: time) WHERE id = \(bind: ref)").run()
            return try await Self.fetchVersion(db, ref, v)
        }
    }

    public func deleteModelVersion(name: String, version: String, workspace: String) async throws {
        try await write("delete_model_version", "model_version", "\(name)/\(version)") { db in
            let (ref, v) = try await Self.versionRef(db, name, version, workspace)
            try await db.raw("DELETE FROM registered_model_aliases WHERE model_ref = \(bind: ref) AND version = \(bind: v)").run()
            try await db.raw("DELETE FROM model_version_tags WHERE model_ref = \(bind: ref) AND version = \(bind: v)").run()
            // The row stays (marked deleted) so that version numbers are never reused.
            try await db.raw("""
                UPDATE model_versions SET current_stage = \(bind: Self.deletedStage), description = NULL, source = 'REDACTED', run_id = NULL, run_link = NULL, logged_model_id = NULL
                WHERE model_ref = \(bind: ref) AND version = \(bind: v)
                """).run()
        }
    }

    public func searchModelVersions(_ search: EntitySearch) async throws -> Page<ModelVersion> {
        let p = predicates
        var conditions: [SQLQueryString] = [
            "rm.workspace = \(bind: search.workspace ?? Workspace.defaultName)",
            "mv.current_stage != \(bind: Self.deletedStage)",
        ]
        if let prompts = search.prompts {
            conditions.append("\(unsafeRaw: prompts ? "EXISTS" : "NOT EXISTS") (SELECT 1 FROM registered_model_tags pt WHERE pt.model_ref = rm.id AND pt.key = 'mlflow.prompt.is_prompt' AND pt.value = 'true')")
        }
        for clause in search.filter {
            switch clause.entity {
            case .attribute:
                switch clause.key {
                case "name": conditions.append(p.string("rm.name", clause.comparator, clause.value))
                case "run_id": conditions.append(p.string("mv.run_id", clause.comparator, clause.value))
                case "source_path": conditions.append(p.string("mv.source", clause.comparator, clause.value))
                case "model_id": conditions.append(p.string("mv.logged_model_id", clause.comparator, clause.value))
                case "version_number":
                    if case .number(let n) = clause.value { conditions.append(p.number("mv.version", clause.comparator, n, integer: true)) }
                default: throw LoomError.invalidParameter("Invalid filter key '\(clause.key)' for model versions")
                }
            case .tag:
                conditions.append("""
                    \(unsafeRaw: clause.comparator == .isNull ? "NOT EXISTS" : "EXISTS") (SELECT 1 FROM model_version_tags t WHERE t.model_ref = mv.model_ref AND t.version = mv.version
                    AND t.key = \(bind: clause.key) \(clause.comparator == .isNull || clause.comparator == .isNotNull ? "" : "AND " + p.string("t.value", clause.comparator, clause.value)))
                    """)
            default:
                throw LoomError.invalidParameter("Invalid filter key '\(clause.entity.rawValue).\(clause.key)' for model versions")
            }
        }
        var orders: [String] = []
        for o in search.orderBy {
            let dir = o.ascending ? "ASC" : "DESC"
            switch o.key {
            case "name": orders.append("rm.name \(dir)")
            case "version_number": orders.append("mv.version \(dir)")
            case "timestamp", "creation_timestamp": orders.append("mv.creation_time \(dir)")
            case "last_updated_timestamp": orders.append("mv.last_updated_time \(dir)")
            case "run_id": orders.append("mv.run_id \(dir)")
            case "source_path": orders.append("mv.source \(dir)")
            default: throw LoomError.invalidParameter("Invalid order by key '\(o.key)' for model versions")
            }
        }
        if search.orderBy.isEmpty { orders.append("mv.last_updated_time DESC") }
        orders.append("rm.name ASC")
        orders.append("mv.version DESC")
        let query: SQLQueryString = """
            SELECT mv.*, rm.name AS model_name FROM model_versions mv JOIN registered_models rm ON rm.id = mv.model_ref
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(unsafeRaw: orders.joined(separator: ", "))
            LIMIT \(bind: search.maxResults + 1) OFFSET \(bind: search.offset)
            """
        return try await read { db in
            let rows = try await db.raw(query).all()
            let versions = try await Self.loadModelVersions(db, rows: Array(rows.prefix(search.maxResults)))
            return Page(items: versions, nextPageToken: rows.count > search.maxResults ? PageToken.encode(offset: search.offset + search.maxResults) : nil)
        }
    }

    public func latestVersions(name: String, workspace: String, stages: [ModelStage]) async throws -> [ModelVersion] {
        try await read { db in
            let ref = try await Self.modelRef(db, name, workspace)
            return try await Self.latestVersions(db, refs: [ref], stages: stages)[ref] ?? []
        }
    }

    public func setModelVersionTag(name: String, version: String, workspace: String, tag: Tag) async throws {
        try await write("set_model_version_tag", "model_version", "\(name)/\(version)", detail: tag.key) { db in
            let (ref, v) = try await Self.versionRef(db, name, version, workspace)
            try await db.raw("""
                INSERT INTO model_version_tags (model_ref, version, key, value) VALUES (\(bind: ref), \(bind: v), \(bind: tag.key), \(bind: tag.value))
                ON CONFLICT (model_ref, version, key) DO UPDATE SET value = excluded.value
                """).run()
        }
    }

    public func deleteModelVersionTag(name: String, version: String, workspace: String, key: String) async throws {
        try await write("delete_model_version_tag", "model_version", "\(name)/\(version)", detail: key) { db in
            let (ref, v) = try await Self.versionRef(db, name, version, workspace)
            let gone = try await db.raw("DELETE FROM model_version_tags WHERE model_ref = \(bind: ref) AND version = \(bind: v) AND key = \(bind: key) RETURNING key").all()
            guard !gone.isEmpty else { throw LoomError.notFound("Model version tag with key '\(key)' not found for \(name) version \(version)") }
        }
    }

    public func setAlias(name: String, workspace: String, alias: String, version: String) async throws {
        try await write("set_registered_model_alias", "registered_model", name, detail: "\(alias)=\(version)") { db in
            let (ref, v) = try await Self.versionRef(db, name, version, workspace)
            try await db.raw("""
                INSERT INTO registered_model_aliases (model_ref, alias, version) VALUES (\(bind: ref), \(bind: alias), \(bind: v))
                ON CONFLICT (model_ref, alias) DO UPDATE SET version = excluded.version
                """).run()
        }
    }

    public func deleteAlias(name: String, workspace: String, alias: String) async throws {
        try await write("delete_registered_model_alias", "registered_model", name, detail: alias) { db in
            let ref = try await Self.modelRef(db, name, workspace)
            try await db.raw("DELETE FROM registered_model_aliases WHERE model_ref = \(bind: ref) AND alias = \(bind: alias)").run()
        }
    }

    public func modelVersion(name: String, alias: String, workspace: String) async throws -> ModelVersion? {
        try await read { db in
            let ref = try await Self.modelRef(db, name, workspace)
            guard let row = try await db.raw("SELECT version FROM registered_model_aliases WHERE model_ref = \(bind: ref) AND alias = \(bind: alias)").first() else {
                return nil
            }
            return try await Self.fetchVersion(db, ref, try row.int64("version"))
        }
    }

    // MARK: Helpers

    static func parseVersion(_ s: String) -> Int64? {
        guard let v = Int64(s), v > 0 else { return nil }
        return v
    }

    static func modelRef(_ db: any SQLDatabase, _ name: String, _ workspace: String) async throws -> Int64 {
        guard let row = try await db.raw("SELECT id FROM registered_models WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() else {
            throw LoomError.notFound("Registered Model with name=\(name) not found")
        }
        return try row.int64("id")
    }

    static func versionRef(_ db: any SQLDatabase, _ name: String, _ version: String, _ workspace: String) async throws -> (Int64, Int64) {
        let ref = try await modelRef(db, name, workspace)
        guard let v = parseVersion(version),
              try await db.raw("SELECT version FROM model_versions WHERE model_ref = \(bind: ref) AND version = \(bind: v) AND current_stage != \(bind: deletedStage)").first() != nil
        else {
            throw LoomError.notFound("Model Version (name=\(name), version=\(version)) not found")
        }
        return (ref, v)
    }

    static func fetchVersion(_ db: any SQLDatabase, _ ref: Int64, _ v: Int64) async throws -> ModelVersion {
        guard let row = try await db.raw("""
            SELECT mv.*, rm.name AS model_name FROM model_versions mv JOIN registered_models rm ON rm.id = mv.model_ref
            WHERE mv.model_ref = \(bind: ref) AND mv.version = \(bind: v)
            """).first() else { throw LoomError.notFound("Model version not found") }
        return try await loadModelVersions(db, rows: [row])[0]
    }

    static func loadModelVersions(_ db: any SQLDatabase, rows: [any SQLRow]) async throws -> [ModelVersion] {
        guard !rows.isEmpty else { return [] }
        var versions: [(ref: Int64, mv: ModelVersion)] = try rows.map { r in
            (try r.int64("model_ref"), ModelVersion(
                name: try r.string("model_name"), version: String(try r.int64("version")),
                creationTimestamp: try r.int64("creation_time"), lastUpdatedTimestamp: try r.int64("last_updated_time"),
                userID: try r.optionalString("user_id"), currentStage: ModelStage(rawValue: try r.string("current_stage")) ?? .none,
                description: try r.optionalString("description"), source: try r.string("source"), runID: try r.optionalString("run_id"),
                runLink: try r.optionalString("run_link"), status: ModelVersionStatus(rawValue: try r.string("status")) ?? .ready,
                statusMessage: try r.optionalString("status_message"), modelID: try r.optionalString("logged_model_id"),
                storageLocation: try r.optionalString("storage_location")))
        }
        let refs = Array(Set(versions.map(\.ref))) as [any Encodable & Sendable]
        var tags: [String: [Tag]] = [:]
        var aliases: [String: [String]] = [:]
        let wanted = Set(versions.map { "\($0.ref)/\($0.mv.version)" })
        for r in try await db.raw("SELECT model_ref, version, key, value FROM model_version_tags WHERE model_ref IN (\(binds: refs)) ORDER BY key").all() {
            let k = "\(try r.int64("model_ref"))/\(try r.int64("version"))"
            if wanted.contains(k) { tags[k, default: []].append(Tag(key: try r.string("key"), value: try r.string("value"))) }
        }
        for r in try await db.raw("SELECT model_ref, alias, version FROM registered_model_aliases WHERE model_ref IN (\(binds: refs)) ORDER BY alias").all() {
            let k = "\(try r.int64("model_ref"))/\(try r.int64("version"))"
            if wanted.contains(k) { aliases[k, default: []].append(try r.string("alias")) }
        }
        for i in versions.indices {
            let k = "\(versions[i].ref)/\(versions[i].mv.version)"
            versions[i].mv.tags = tags[k] ?? []
            versions[i].mv.aliases = aliases[k] ?? []
        }
        return versions.map(\.mv)
    }

    static func latestVersions(_ db: any SQLDatabase, refs: [Int64], stages: [ModelStage]) async throws -> [Int64: [ModelVersion]] {
        guard !refs.isEmpty else { return [:] }
        let refBinds = refs as [any Encodable & Sendable]
        let rows = try await db.raw("""
            SELECT mv.*, rm.name AS model_name FROM model_versions mv JOIN registered_models rm ON rm.id = mv.model_ref
            WHERE mv.model_ref IN (\(binds: refBinds)) AND mv.current_stage != \(bind: deletedStage)
              AND mv.version = (SELECT MAX(v2.version) FROM model_versions v2 WHERE v2.model_ref = mv.model_ref AND v2.current_stage = mv.current_stage)
            ORDER BY mv.model_ref, mv.version
            """).all()
        let wantedStages = Set((stages.isEmpty ? ModelStage.allCases : stages).map(\.rawValue))
        let filtered = try rows.filter { wantedStages.contains(try $0.string("current_stage")) }
        let versions = try await loadModelVersions(db, rows: filtered)
        var out: [Int64: [ModelVersion]] = [:]
        for (row, v) in zip(filtered, versions) {
            out[try row.int64("model_ref"), default: []].append(v)
        }
        return out
    }

    static func loadRegisteredModels(_ db: any SQLDatabase, rows: [any SQLRow]) async throws -> [RegisteredModel] {
        guard !rows.isEmpty else { return [] }
        let refs = try rows.map { try $0.int64("id") }
        let binds = refs as [any Encodable & Sendable]
        var tags: [Int64: [Tag]] = [:]
        var aliases: [Int64: [ModelAlias]] = [:]
        for r in try await db.raw("SELECT model_ref, key, value FROM registered_model_tags WHERE model_ref IN (\(binds: binds)) ORDER BY key").all() {
            tags[try r.int64("model_ref"), default: []].append(Tag(key: try r.string("key"), value: try r.string("value")))
        }
        for r in try await db.raw("SELECT model_ref, alias, version FROM registered_model_aliases WHERE model_ref IN (\(binds: binds)) ORDER BY alias").all() {
            aliases[try r.int64("model_ref"), default: []].append(ModelAlias(alias: try r.string("alias"), version: String(try r.int64("version"))))
        }
        let latest = try await latestVersions(db, refs: refs, stages: [])
        return try zip(rows, refs).map { row, ref in
            RegisteredModel(
                name: try row.string("name"), creationTimestamp: try row.int64("creation_time"), lastUpdatedTimestamp: try row.int64("last_updated_time"),
                description: try row.optionalString("description"), tags: tags[ref] ?? [], aliases: aliases[ref] ?? [],
                latestVersions: latest[ref] ?? [], workspace: try row.string("workspace"))
        }
    }
}
