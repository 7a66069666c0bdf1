import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func createRollout(_ r: Rollout, decision: RolloutDecision) async throws {
        let engine = self.engine
        _ = try await write("start_rollout", "rollout", r.id, detail: "\(r.endpoint) \(r.spec.strategy.rawValue) → \(r.spec.deployment)") { db in
            if engine == .postgresql {
                // Two starts on one endpoint take turns, so that only one becomes active.
                try await db.raw("SELECT pg_advisory_xact_lock(7311005, hashtext(\(bind: r.workspace + "/" + r.endpoint)))").run()
            }
            if let active = try await db.raw("""
                SELECT id FROM rollouts WHERE workspace = \(bind: r.workspace) AND endpoint = \(bind: r.endpoint) AND state IN ('running', 'paused')
                """).first() {
                throw LoomError.invalidState("Endpoint \(r.endpoint) has a rollout in progress (\(try active.string("id"))): promote, abort or wait for it")
            }
            try await db.raw("""
                INSERT INTO rollouts (id, workspace, endpoint, spec_json, baseline, state, stage, stage_started, previous_traffic_json, previous_mirror_json,
                  message, created_by, creation_time, last_updated_time, end_time)
                VALUES (\(bind: r.id), \(bind: r.workspace), \(bind: r.endpoint), \(bind: try Self.json(r.spec)), \(bind: r.baseline), \(bind: r.state.rawValue),
                  \(bind: Int64(r.stage)), \(bind: r.stageStarted), \(bind: try Self.json(r.previousTraffic)), \(bind: try Self.json(r.previousMirror)),
                  \(bind: r.message), \(bind: r.createdBy), \(bind: r.creationTime), \(bind: r.lastUpdatedTime), \(bind: r.endTime))
                """).run()
            try await Self.insertDecision(db, decision)
            return true
        }
    }

    public func rollout(id: String) async throws -> Rollout? {
        try await read { db in try await db.raw("SELECT * FROM rollouts WHERE id = \(bind: id)").first().map(Self.rollout) }
    }

    public func rollouts(endpoint: String, workspace: String, limit: Int) async throws -> [Rollout] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM rollouts WHERE workspace = \(bind: workspace) AND endpoint = \(bind: endpoint)
                ORDER BY creation_time DESC, id DESC LIMIT \(bind: limit)
                """).all().map(Self.rollout)
        }
    }

    public func activeRollouts() async throws -> [Rollout] {
        try await read { db in
            try await db.raw("SELECT * FROM rollouts WHERE state IN ('running', 'paused') ORDER BY creation_time, id").all().map(Self.rollout)
        }
    }

    public func leaseRollout(id: String, owner: String, until: Millis, now: Millis) async throws -> Bool {
        // Renewed every second by the replica driving it: no audit entry for each.
        try await writeUnaudited { db in
            try await db.raw("""
                UPDATE rollouts SET lease_owner = \(bind: owner), lease_expiry = \(bind: until)
                WHERE id = \(bind: id) AND state IN ('running', 'paused')
                  AND (lease_owner IS NULL OR lease_owner = \(bind: owner) OR lease_expiry < \(bind: now))
                """).run()
            let row = try await db.raw("SELECT lease_owner, lease_expiry FROM rollouts WHERE id = \(bind: id)").first()
            return try row?.optionalString("lease_owner") == owner && row?.optionalInt64("lease_expiry") == until
        }
    }

    public func advanceRollout(_ r: Rollout, owner: String, handled: String?, decision: RolloutDecision) async throws -> Bool {
        try await write("rollout_\(decision.kind.replacingOccurrences(of: "-", with: "_"))", "rollout", r.id, detail: decision.summary) { db in
            let release: SQLQueryString = r.state.isActive ? "" : ", lease_owner = NULL, lease_expiry = NULL"
            try await db.raw("""
                UPDATE rollouts SET state = \(bind: r.state.rawValue), stage = \(bind: Int64(r.stage)), stage_started = \(bind: r.stageStarted),
                  message = \(bind: r.message), last_updated_time = \(bind: r.lastUpdatedTime), end_time = \(bind: r.endTime),
                  requested_action = CASE WHEN requested_action = \(bind: handled ?? "") THEN NULL ELSE requested_action END \(release)
                WHERE id = \(bind: r.id) AND lease_owner = \(bind: owner) AND state IN ('running', 'paused')
                """).run()
            guard let saved = try await db.raw("SELECT * FROM rollouts WHERE id = \(bind: r.id)").first().map(Self.rollout),
                saved.state == r.state, saved.stage == r.stage, saved.lastUpdatedTime == r.lastUpdatedTime
            else { return false }
            try await Self.insertDecision(db, decision)
            return true
        }
    }

    public func requestRolloutAction(id: String, action: String, actor: String) async throws -> Bool {
        try await write("request_rollout_\(action)", "rollout", id) { db in
            try await db.raw("""
                UPDATE rollouts SET requested_action = \(bind: action), requested_by = \(bind: actor)
                WHERE id = \(bind: id) AND state IN ('running', 'paused')
                """).run()
            return try await db.raw("SELECT requested_action FROM rollouts WHERE id = \(bind: id)").first()?.optionalString("requested_action") == action
        }
    }

    public func rolloutDecisions(id: String) async throws -> [RolloutDecision] {
        try await read { db in
            try await db.raw("SELECT * FROM rollout_decisions WHERE rollout_id = \(bind: id) ORDER BY sequence").all().map { row in
                RolloutDecision(
                    rolloutID: try row.string("rollout_id"), sequence: try row.int64("sequence"), time: try row.int64("time"), kind: try row.string("kind"),
                    outcome: try row.string("outcome"), summary: try row.string("summary"), detail: try row.optionalString("detail"),
                    actor: try row.string("actor"))
            }
        }
    }

    static func insertDecision(_ db: any SQLDatabase, _ d: RolloutDecision) async throws {
        let next = try await db.raw("SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM rollout_decisions WHERE rollout_id = \(bind: d.rolloutID)").first()
        try await db.raw("""
            INSERT INTO rollout_decisions (rollout_id, sequence, time, kind, outcome, summary, detail, actor)
            VALUES (\(bind: d.rolloutID), \(bind: try next?.int64("next") ?? 1), \(bind: d.time), \(bind: d.kind), \(bind: d.outcome), \(bind: d.summary),
              \(bind: d.detail), \(bind: d.actor))
            """).run()
    }

    static func rollout(_ row: any SQLRow) throws -> Rollout {
        let state = try row.string("state")
        guard let parsed = Rollout.State(rawValue: state) else { throw LoomError.internalError("rollout state '\(state)'") }
        return Rollout(
            id: try row.string("id"), workspace: try row.string("workspace"), endpoint: try row.string("endpoint"),
            spec: try decodeJSON(RolloutSpec.self, try row.string("spec_json"), "rollout spec"), baseline: try row.string("baseline"), state: parsed,
            stage: Int(try row.int64("stage")), stageStarted: try row.optionalInt64("stage_started"),
            previousTraffic: try decodeJSON([String: Int].self, try row.string("previous_traffic_json"), "traffic"),
            previousMirror: try decodeJSON([String: Int].self, try row.string("previous_mirror_json"), "mirror"), message: try row.optionalString("message"),
            requestedAction: try row.optionalString("requested_action"), requestedBy: try row.optionalString("requested_by"), createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), lastUpdatedTime: try row.int64("last_updated_time"),
            endTime: try row.optionalInt64("end_time"))
    }
}
