import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func searchRuns(_ search: RunSearch) async throws -> Page<Run> {
        let query = try runSearchQuery(search)
        return try await read { db in
            let rows = try await db.raw(query).all()
            let infos = try rows.prefix(search.maxResults).map(Self.decodeRunInfo)
            let runs = try await Self.loadRuns(db, infos: infos)
            let next = rows.count > search.maxResults ? PageToken.encode(offset: search.offset + search.maxResults) : nil
            return Page(items: runs, nextPageToken: next)
        }
    }

    /// Builds the page query. Metric filters become inner joins on `latest_metrics` so the planner
    /// can walk the `(key, value)` index; an order on the same metric reuses that join.
    func runSearchQuery(_ search: RunSearch) throws -> SQLQueryString {
        let p = predicates
        let experimentIDs = search.experimentIDs.compactMap(parseID) as [any Encodable & Sendable]
        var joins: [SQLQueryString] = []
        var conditions: [SQLQueryString] = []
        if experimentIDs.isEmpty {
            conditions.append("1 = 0")
        } else if experimentIDs.count == 1 {
            conditions.append("r.experiment_id = \(bind: experimentIDs[0])")
        } else {
            conditions.append("r.experiment_id IN (\(binds: experimentIDs))")
        }
        let stages = search.viewType.stages.map(\.rawValue)
        if stages.count == 1 {
            conditions.append("r.lifecycle_stage = \(bind: stages[0])")
        }
        var metricAlias: [String: String] = [:]
        var nanFree: Set<String> = []
        var aliasCounter = 0
        func nextAlias(_ prefix: String) -> String {
            aliasCounter += 1
            return "\(prefix)\(aliasCounter)"
        }
        for clause in search.filter {
            switch clause.entity {
            case .metric:
                guard case .number(let v) = clause.value else { continue }
                let alias: String
                if let a = metricAlias[clause.key] {
                    alias = a
                } else {
                    alias = nextAlias("m")
                    metricAlias[clause.key] = alias
                    joins.append("JOIN latest_metrics \(unsafeRaw: alias) ON \(unsafeRaw: alias).run_uuid = r.run_uuid AND \(unsafeRaw: alias).key = \(bind: clause.key)")
                }
                if clause.comparator == .notEqual {
                    // A NaN value differs from every number.
                    conditions.append("(\(unsafeRaw: alias).is_nan = 1 OR \(p.number("\(alias).value", clause.comparator, v)))")
                } else {
                    conditions.append(p.number("\(alias).value", clause.comparator, v))
                    conditions.append("\(unsafeRaw: alias).is_nan = 0")
                    nanFree.insert(clause.key)
                }
            case .param:
                conditions.append(keyValuePredicate(table: "params", clause: clause))
            case .tag:
                conditions.append(keyValuePredicate(table: "tags", clause: clause))
            case .attribute:
                conditions.append(try runAttributePredicate(clause))
            case .dataset:
                conditions.append(datasetPredicate(clause))
            }
        }
        var orders: [String] = []
        for order in search.orderBy {
            switch order.entity {
            case .metric:
                if let alias = metricAlias[order.key], nanFree.contains(order.key) {
                    // Inner-joined and NaN-free: plain order, so the (key, value) index can serve it.
                    orders.append("\(alias).value \(order.ascending ? "ASC" : "DESC")")
                } else if let alias = metricAlias[order.key] {
                    orders.append("\(alias).is_nan ASC, \(alias).value \(order.ascending ? "ASC" : "DESC")")
                } else {
                    let alias = nextAlias("o")
                    joins.append("LEFT JOIN latest_metrics \(unsafeRaw: alias) ON \(unsafeRaw: alias).run_uuid = r.run_uuid AND \(unsafeRaw: alias).key = \(bind: order.key)")
                    // NaN sorts after numbers, missing values last, as MLflow does.
                    orders.append("(\(alias).value IS NULL), \(alias).is_nan ASC, \(alias).value \(order.ascending ? "ASC" : "DESC")")
                }
            case .param, .tag:
                let alias = nextAlias("o")
                let table = order.entity == .param ? "params" : "tags"
                joins.append("LEFT JOIN \(unsafeRaw: table) \(unsafeRaw: alias) ON \(unsafeRaw: alias).run_uuid = r.run_uuid AND \(unsafeRaw: alias).key = \(bind: order.key)")
                orders.append(p.order("\(alias).value", ascending: order.ascending))
            case .attribute:
                let column = Self.runAttributeColumn(order.key) ?? "r.start_time"
                orders.append(p.order(column, ascending: order.ascending))
            case .dataset:
                throw LoomError.invalidParameter("Invalid order_by entity type 'dataset'")
            }
        }
        if !search.orderBy.contains(where: { $0.entity == .attribute && $0.key == "start_time" }) {
            orders.append("r.start_time DESC")
        }
        orders.append("r.run_uuid ASC")
        let joinSQL = joins.joined(separator: " ")
        let whereSQL = conditions.joined(separator: " AND ")
        return "SELECT r.* FROM runs r \(joinSQL) WHERE \(whereSQL) ORDER BY \(unsafeRaw: orders.joined(separator: ", ")) LIMIT \(bind: search.maxResults + 1) OFFSET \(bind: search.offset)"
    }

    static func runAttributeColumn(_ key: String) -> String? {
        switch key {
        case "run_id": return "r.run_uuid"
        case "run_name": return "r.name"
        case "user_id": return "r.user_id"
        case "status": return "r.status"
        case "start_time": return "r.start_time"
        case "end_time": return "r.end_time"
        case "artifact_uri": return "r.artifact_uri"
        case "lifecycle_stage": return "r.lifecycle_stage"
        default: return nil
        }
    }

    func runAttributePredicate(_ clause: SearchClause) throws -> SQLQueryString {
        guard let column = Self.runAttributeColumn(clause.key) else {
            throw LoomError.invalidParameter("Invalid attribute key '\(clause.key)' specified.")
        }
        if case .number(let v) = clause.value {
            return predicates.number(column, clause.comparator, v, integer: true)
        }
        return predicates.string(column, clause.comparator, clause.value)
    }

    func keyValuePredicate(table: String, clause: SearchClause) -> SQLQueryString {
        let p = predicates
        switch clause.comparator {
        case .isNull:
            return "NOT EXISTS (SELECT 1 FROM \(unsafeRaw: table) kv WHERE kv.run_uuid = r.run_uuid AND kv.key = \(bind: clause.key))"
        case .isNotNull:
            return "EXISTS (SELECT 1 FROM \(unsafeRaw: table) kv WHERE kv.run_uuid = r.run_uuid AND kv.key = \(bind: clause.key))"
        default:
            return "EXISTS (SELECT 1 FROM \(unsafeRaw: table) kv WHERE kv.run_uuid = r.run_uuid AND kv.key = \(bind: clause.key) AND \(p.string("kv.value", clause.comparator, clause.value)))"
        }
    }

    func datasetPredicate(_ clause: SearchClause) -> SQLQueryString {
        let p = predicates
        if clause.key == "context" {
            return """
                EXISTS (SELECT 1 FROM run_dataset_input_tags it WHERE it.run_uuid = r.run_uuid
                AND it.key = 'mlflow.data.context' AND \(p.string("it.value", clause.comparator, clause.value)))
                """
        }
        let column = clause.key == "digest" ? "d.digest" : "d.name"
        return """
            EXISTS (SELECT 1 FROM run_dataset_inputs di JOIN datasets d ON d.dataset_uuid = di.dataset_uuid
            WHERE di.run_uuid = r.run_uuid AND \(p.string(column, clause.comparator, clause.value)))
            """
    }
}
