import Foundation
import LoomCore
import SQLKit

extension SQLMetadataStore {
    public func applyMonitor(_ m: Monitor) async throws -> (Monitor, changed: Bool) {
        let key = m.workspace + "/" + m.name
        let outcome: (Monitor, Bool) = try await write("apply_monitor", "monitor", key, detail: "\(m.name) on endpoint \(m.endpoint)") { db in
            if let row = try await db.raw("SELECT * FROM monitors WHERE workspace = \(bind: m.workspace) AND name = \(bind: m.name)").first() {
                let old = try Self.monitor(row)
                guard old.specText != m.specText || old.endpoint != m.endpoint || !old.enabled else { return (old, false) }
                try await db.raw("""
                    UPDATE monitors SET endpoint = \(bind: m.endpoint), spec_text = \(bind: m.specText), version = version + 1, enabled = 1,
                      next_run_time = \(bind: m.nextRunTime), last_updated_time = \(bind: m.lastUpdatedTime)
                    WHERE workspace = \(bind: m.workspace) AND name = \(bind: m.name)
                    """).run()
            } else {
                try await db.raw("""
                    INSERT INTO monitors (workspace, name, endpoint, spec_text, version, enabled, next_run_time, last_run_time, created_by,
                      creation_time, last_updated_time)
                    VALUES (\(bind: m.workspace), \(bind: m.name), \(bind: m.endpoint), \(bind: m.specText), 1, 1, \(bind: m.nextRunTime), NULL,
                      \(bind: m.createdBy), \(bind: m.creationTime), \(bind: m.lastUpdatedTime))
                    """).run()
            }
            let saved = try await db.raw("SELECT * FROM monitors WHERE workspace = \(bind: m.workspace) AND name = \(bind: m.name)").first()
            guard let saved else { throw LoomError.internalError("monitor \(m.name) vanished while it was applied") }
            return (try Self.monitor(saved), true)
        }
        return (outcome.0, changed: outcome.1)
    }

    public func monitor(name: String, workspace: String) async throws -> Monitor? {
        try await read { db in
            try await db.raw("SELECT * FROM monitors WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first().map(Self.monitor)
        }
    }

    public func monitors(workspace: String) async throws -> [Monitor] {
        try await read { db in
            try await db.raw("SELECT * FROM monitors WHERE workspace = \(bind: workspace) ORDER BY name").all().map(Self.monitor)
        }
    }

    public func deleteMonitor(name: String, workspace: String) async throws -> Bool {
        try await write("delete_monitor", "monitor", workspace + "/" + name) { db in
            guard try await db.raw("SELECT name FROM monitors WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first() != nil else {
                return false
            }
            try await db.raw("DELETE FROM monitor_results WHERE workspace = \(bind: workspace) AND monitor = \(bind: name)").run()
            try await db.raw("DELETE FROM monitor_alerts WHERE workspace = \(bind: workspace) AND monitor = \(bind: name)").run()
            try await db.raw("DELETE FROM webhook_deliveries WHERE workspace = \(bind: workspace) AND monitor = \(bind: name)").run()
            try await db.raw("DELETE FROM monitors WHERE workspace = \(bind: workspace) AND name = \(bind: name)").run()
            return true
        }
    }

    public func dueMonitors(now: Millis) async throws -> [Monitor] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM monitors WHERE enabled = 1 AND next_run_time IS NOT NULL AND next_run_time <= \(bind: now)
                ORDER BY next_run_time, workspace, name
                """).all().map(Self.monitor)
        }
    }

    public func leaseMonitor(name: String, workspace: String, owner: String, until: Millis, now: Millis) async throws -> Bool {
        try await writeUnaudited { db in
            try await db.raw("""
                UPDATE monitors SET lease_owner = \(bind: owner), lease_expiry = \(bind: until)
                WHERE workspace = \(bind: workspace) AND name = \(bind: name)
                  AND (lease_owner IS NULL OR lease_owner = \(bind: owner) OR lease_expiry < \(bind: now))
                """).run()
            let row = try await db.raw("SELECT lease_owner, lease_expiry FROM monitors WHERE workspace = \(bind: workspace) AND name = \(bind: name)").first()
            return try row?.optionalString("lease_owner") == owner && row?.optionalInt64("lease_expiry") == until
        }
    }

    public func recordMonitorPass(
        _ results: [MonitorResult], monitor: String, workspace: String, nextRunTime: Millis?, owner: String?,
        deliveries: @escaping @Sendable (AlertChanges) -> [WebhookDelivery]
    ) async throws -> AlertChanges {
        let passID = results.first?.passID ?? ""
        let failed = results.filter { !$0.passed }.map(\.signal)
        let detail = failed.isEmpty ? "\(monitor): every signal passed" : "\(monitor): \(failed.joined(separator: ", ")) failed"
        return try await write("monitor_pass", "monitor", workspace + "/" + monitor, detail: detail) { db in
            guard try await db.raw("SELECT name FROM monitors WHERE workspace = \(bind: workspace) AND name = \(bind: monitor)").first() != nil else {
                throw LoomError.notFound("No monitor named \(monitor) in workspace \(workspace)")
            }
            for r in results {
                try await db.raw("""
                    INSERT INTO monitor_results (pass_id, workspace, monitor, signal, kind, time, window_start, window_end, rows_read, value, passed,
                      skipped, summary, detail_json)
                    VALUES (\(bind: r.passID), \(bind: r.workspace), \(bind: r.monitor), \(bind: r.signal), \(bind: r.kind), \(bind: r.time),
                      \(bind: r.windowStart), \(bind: r.windowEnd), \(bind: r.rows), \(bind: r.value), \(bind: r.passed ? 1 : 0), \(bind: r.skipped ? 1 : 0), \(bind: r.summary),
                      \(bind: r.detailJSON))
                    """).run()
            }
            let time = results.map(\.time).max() ?? Clock.nowMillis()
            let release: SQLQueryString = owner == nil ? "" : ", lease_owner = NULL, lease_expiry = NULL"
            try await db.raw("""
                UPDATE monitors SET last_run_time = \(bind: time), next_run_time = \(bind: nextRunTime) \(release)
                WHERE workspace = \(bind: workspace) AND name = \(bind: monitor)
                """).run()
            var changes = AlertChanges()
            for r in results {
                let open = try await db.raw("""
                    SELECT * FROM monitor_alerts WHERE workspace = \(bind: workspace) AND monitor = \(bind: monitor) AND signal = \(bind: r.signal)
                      AND state = 'open'
                    """).first().map(Self.alert)
                switch (open, r.passed) {
                case (nil, false):
                    let alert = MonitorAlert(
                        id: Identifiers.newHexID(), workspace: workspace, monitor: monitor, signal: r.signal, openedTime: r.time,
                        firstPassID: passID, lastPassID: passID, summary: r.summary)
                    try await db.raw("""
                        INSERT INTO monitor_alerts (id, workspace, monitor, signal, state, opened_time, resolved_time, first_pass_id, last_pass_id,
                          pass_count, summary, action_run_id, action_rollout_id, action_message, action_done)
                        VALUES (\(bind: alert.id), \(bind: workspace), \(bind: monitor), \(bind: r.signal), 'open', \(bind: r.time), NULL,
                          \(bind: passID), \(bind: passID), 1, \(bind: r.summary), NULL, NULL, NULL, 0)
                        """).run()
                    changes.opened.append(alert)
                case (var alert?, false):
                    try await db.raw("""
                        UPDATE monitor_alerts SET last_pass_id = \(bind: passID), pass_count = pass_count + 1, summary = \(bind: r.summary)
                        WHERE id = \(bind: alert.id)
                        """).run()
                    alert.lastPassID = passID
                    alert.count += 1
                    alert.summary = r.summary
                    changes.continued.append(alert)
                case (var alert?, true) where !r.skipped:
                    try await db.raw("""
                        UPDATE monitor_alerts SET state = 'resolved', resolved_time = \(bind: r.time) WHERE id = \(bind: alert.id)
                        """).run()
                    alert.state = .resolved
                    alert.resolvedTime = r.time
                    changes.resolved.append(alert)
                case (_, true):
                    break
                }
            }
            for d in deliveries(changes) {
                try await Self.insertDelivery(db, d)
            }
            return changes
        }
    }

    static func insertDelivery(_ db: any SQLDatabase, _ d: WebhookDelivery) async throws {
        try await db.raw("""
            INSERT INTO webhook_deliveries (id, workspace, monitor, alert_id, event, url, secret_env, payload, state, attempts, next_attempt_time,
              claim_owner, last_status, last_error, creation_time, delivered_time)
            VALUES (\(bind: d.id), \(bind: d.workspace), \(bind: d.monitor), \(bind: d.alertID), \(bind: d.event), \(bind: d.url), \(bind: d.secretEnv),
              \(bind: d.payload), \(bind: d.state.rawValue), \(bind: d.attempts), \(bind: d.nextAttemptTime), NULL, \(bind: d.lastStatus),
              \(bind: d.lastError), \(bind: d.creationTime), \(bind: d.deliveredTime))
            """).run()
    }

    public func dueWebhookDeliveries(now: Millis, limit: Int) async throws -> [WebhookDelivery] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_time <= \(bind: now)
                ORDER BY next_attempt_time, creation_time, id LIMIT \(bind: limit)
                """).all().map(Self.delivery)
        }
    }

    public func claimWebhookDelivery(id: String, owner: String, until: Millis, now: Millis) async throws -> Bool {
        try await writeUnaudited { db in
            try await db.raw("""
                UPDATE webhook_deliveries SET claim_owner = \(bind: owner), next_attempt_time = \(bind: until)
                WHERE id = \(bind: id) AND state = 'pending' AND next_attempt_time <= \(bind: now)
                """).run()
            let row = try await db.raw("SELECT claim_owner, next_attempt_time FROM webhook_deliveries WHERE id = \(bind: id)").first()
            return try row?.optionalString("claim_owner") == owner && row?.optionalInt64("next_attempt_time") == until
        }
    }

    public func finishWebhookAttempt(_ d: WebhookDelivery) async throws {
        let detail = "\(d.event) to \(d.url): \(d.state.rawValue) after \(d.attempts) attempt\(d.attempts == 1 ? "" : "s")"
        let body: @Sendable (any SQLDatabase) async throws -> Bool = { db in
            try await db.raw("""
                UPDATE webhook_deliveries SET state = \(bind: d.state.rawValue), attempts = \(bind: d.attempts), next_attempt_time = \(bind: d.nextAttemptTime),
                  claim_owner = NULL, last_status = \(bind: d.lastStatus), last_error = \(bind: d.lastError), delivered_time = \(bind: d.deliveredTime)
                WHERE id = \(bind: d.id)
                """).run()
            return true
        }
        // Retries are not audit events; the end of a call is.
        if d.state == .pending {
            _ = try await writeUnaudited(body)
        } else {
            _ = try await write("webhook_\(d.state.rawValue)", "webhook_delivery", d.id, detail: detail, body)
        }
    }

    public func webhookDeliveries(workspace: String, monitor: String?, limit: Int) async throws -> [WebhookDelivery] {
        try await read { db in
            let byMonitor: SQLQueryString = monitor.map { "AND monitor = \(bind: $0)" } ?? ""
            return try await db.raw("""
                SELECT * FROM webhook_deliveries WHERE workspace = \(bind: workspace) \(byMonitor)
                ORDER BY creation_time DESC, id DESC LIMIT \(bind: limit)
                """).all().map(Self.delivery)
        }
    }

    static func delivery(_ row: any SQLRow) throws -> WebhookDelivery {
        let state = try row.string("state")
        guard let parsed = WebhookDelivery.State(rawValue: state) else { throw LoomError.internalError("webhook delivery state '\(state)'") }
        return WebhookDelivery(
            id: try row.string("id"), workspace: try row.string("workspace"), monitor: try row.string("monitor"), alertID: try row.string("alert_id"),
            event: try row.string("event"), url: try row.string("url"), secretEnv: try row.optionalString("secret_env"), payload: try row.string("payload"),
            state: parsed, attempts: try row.int64("attempts"), nextAttemptTime: try row.int64("next_attempt_time"),
            lastStatus: try row.optionalInt64("last_status"), lastError: try row.optionalString("last_error"), creationTime: try row.int64("creation_time"),
            deliveredTime: try row.optionalInt64("delivered_time"))
    }

    public func monitorResults(monitor: String, workspace: String, signal: String?, limit: Int) async throws -> [MonitorResult] {
        try await read { db in
            let only: SQLQueryString = signal.map { "AND signal = \(bind: $0)" } ?? ""
            return try await db.raw("""
                SELECT * FROM monitor_results WHERE workspace = \(bind: workspace) AND monitor = \(bind: monitor) \(only)
                ORDER BY time DESC, pass_id DESC, signal LIMIT \(bind: limit)
                """).all().map { row in
                MonitorResult(
                    passID: try row.string("pass_id"), workspace: try row.string("workspace"), monitor: try row.string("monitor"),
                    signal: try row.string("signal"), kind: try row.string("kind"), time: try row.int64("time"),
                    windowStart: try row.int64("window_start"), windowEnd: try row.int64("window_end"), rows: try row.int64("rows_read"),
                    value: try row.optionalDouble("value"), passed: try row.int64("passed") != 0, skipped: try row.int64("skipped") != 0, summary: try row.string("summary"),
                    detailJSON: try row.string("detail_json"))
            }
        }
    }

    public func monitorAlerts(workspace: String, monitor: String?, state: MonitorAlert.State?, limit: Int) async throws -> [MonitorAlert] {
        try await read { db in
            let byMonitor: SQLQueryString = monitor.map { "AND monitor = \(bind: $0)" } ?? ""
            let byState: SQLQueryString = state.map { "AND state = \(bind: $0.rawValue)" } ?? ""
            return try await db.raw("""
                SELECT * FROM monitor_alerts WHERE workspace = \(bind: workspace) \(byMonitor) \(byState)
                ORDER BY opened_time DESC, id DESC LIMIT \(bind: limit)
                """).all().map(Self.alert)
        }
    }

    public func monitorAlert(id: String) async throws -> MonitorAlert? {
        try await read { db in try await db.raw("SELECT * FROM monitor_alerts WHERE id = \(bind: id)").first().map(Self.alert) }
    }

    public func setAlertAction(id: String, runID: String) async throws {
        _ = try await write("alert_action", "monitor_alert", id, detail: "pipeline run \(runID)") { db in
            try await db.raw("UPDATE monitor_alerts SET action_run_id = \(bind: runID) WHERE id = \(bind: id)").run()
            return true
        }
    }

    public func alertsAwaitingAction(limit: Int) async throws -> [MonitorAlert] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM monitor_alerts WHERE action_run_id IS NOT NULL AND action_done = 0 ORDER BY opened_time, id LIMIT \(bind: limit)
                """).all().map(Self.alert)
        }
    }

    public func finishAlertAction(id: String, rolloutID: String?, message: String) async throws {
        _ = try await write("alert_action_done", "monitor_alert", id, detail: message) { db in
            try await db.raw("""
                UPDATE monitor_alerts SET action_rollout_id = \(bind: rolloutID), action_message = \(bind: message), action_done = 1 WHERE id = \(bind: id)
                """).run()
            return true
        }
    }

    static func monitor(_ row: any SQLRow) throws -> Monitor {
        Monitor(
            workspace: try row.string("workspace"), name: try row.string("name"), endpoint: try row.string("endpoint"),
            specText: try row.string("spec_text"), version: try row.int64("version"), enabled: try row.int64("enabled") != 0,
            nextRunTime: try row.optionalInt64("next_run_time"), lastRunTime: try row.optionalInt64("last_run_time"),
            createdBy: try row.string("created_by"), creationTime: try row.int64("creation_time"), lastUpdatedTime: try row.int64("last_updated_time"))
    }

    static func alert(_ row: any SQLRow) throws -> MonitorAlert {
        let state = try row.string("state")
        guard let parsed = MonitorAlert.State(rawValue: state) else { throw LoomError.internalError("alert state '\(state)'") }
        return MonitorAlert(
            id: try row.string("id"), workspace: try row.string("workspace"), monitor: try row.string("monitor"), signal: try row.string("signal"),
            state: parsed, openedTime: try row.int64("opened_time"), resolvedTime: try row.optionalInt64("resolved_time"),
            firstPassID: try row.string("first_pass_id"), lastPassID: try row.string("last_pass_id"), count: try row.int64("pass_count"),
            summary: try row.string("summary"), actionRunID: try row.optionalString("action_run_id"),
            actionRolloutID: try row.optionalString("action_rollout_id"), actionMessage: try row.optionalString("action_message"),
            actionDone: try row.int64("action_done") != 0)
    }
}
