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
        _ results: [MonitorResult], monitor: String, workspace: String, nextRunTime: Millis?, owner: String?
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
                      summary, detail_json)
                    VALUES (\(bind: r.passID), \(bind: r.workspace), \(bind: r.monitor), \(bind: r.signal), \(bind: r.kind), \(bind: r.time),
                      \(bind: r.windowStart), \(bind: r.windowEnd), \(bind: r.rows), \(bind: r.value), \(bind: r.passed ? 1 : 0), \(bind: r.summary),
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
                          pass_count, summary, action_run_id)
                        VALUES (\(bind: alert.id), \(bind: workspace), \(bind: monitor), \(bind: r.signal), 'open', \(bind: r.time), NULL,
                          \(bind: passID), \(bind: passID), 1, \(bind: r.summary), NULL)
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
                case (var alert?, true):
                    try await db.raw("""
                        UPDATE monitor_alerts SET state = 'resolved', resolved_time = \(bind: r.time) WHERE id = \(bind: alert.id)
                        """).run()
                    alert.state = .resolved
                    alert.resolvedTime = r.time
                    changes.resolved.append(alert)
                case (nil, true):
                    break
                }
            }
            return changes
        }
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
                    value: try row.optionalDouble("value"), passed: try row.int64("passed") != 0, summary: try row.string("summary"),
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
            summary: try row.string("summary"), actionRunID: try row.optionalString("action_run_id"))
    }
}
