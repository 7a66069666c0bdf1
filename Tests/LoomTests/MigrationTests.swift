import Foundation
import LoomCore
import LoomTesting
import Testing

@testable import LoomStore

/// Upgrading a store that already holds data keeps every row and every query answer.
@Suite("Migrations")
struct MigrationTests {
    @Test(arguments: TestBackend.available)
    func metricsWrittenBeforeVersions2And5SurviveTheUpgrade(_ backend: TestBackend) async throws {
        let t = try await TestStore.make(backend)
        do {
            try await check(t)
            await t.tearDown()
        } catch {
            await t.tearDown()
            throw error
        }
    }

    /// Writes version-1 rows with SQL of that version (today's code speaks only the latest
    /// schema), upgrades, and reads them back through the store.
    private func check(_ t: TestStore) async throws {
        let store = t.store
        let migrator = Migrator(backend: store.backend, logger: TestStore.logger)
        #expect(try await migrator.upgrade(now: 1, through: 1) == [1])
        let runID = "0123456789abcdef0123456789abcdef"
        var points: [Metric] = []
        for step in 0..<300 {
            points.append(Metric(key: "loss", value: 1 / Double(step + 1), timestamp: 1000 + Int64(step), step: Int64(step)))
            points.append(Metric(key: "acc", value: step == 7 ? .nan : Double(step) / 300, timestamp: 1000, step: Int64(step)))
        }
        let stored = points
        try await store.backend.withWriteTransaction { db in
            try await db.raw("""
                INSERT INTO experiments (workspace, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                VALUES ('default', 'before-v2', 'mlflow-artifacts:/1', 'active', 1, 1)
                """).run()
            let eid = try #require(try await db.raw("SELECT experiment_id FROM experiments WHERE name = 'before-v2'").first()).decode(column: "experiment_id", as: Int64.self)
            try await db.raw("""
                INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, artifact_uri, lifecycle_stage)
                VALUES (\(bind: runID), \(bind: eid), 'r', 'u', 'RUNNING', 1, 'mlflow-artifacts:/1/r/artifacts', 'active')
                """).run()
            for m in stored {
                let (value, isNaN) = SQLMetadataStore.storedValue(m.value)
                try await db.raw("""
                    INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan)
                    VALUES (\(bind: runID), \(bind: m.key), \(bind: m.step), \(bind: m.timestamp), \(bind: value), \(bind: isNaN))
                    """).run()
            }
            try await db.raw("""
                INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan)
                VALUES (\(bind: runID), 'loss', 299, 1299, \(bind: 1.0 / 300), 0), (\(bind: runID), 'acc', 299, 1000, \(bind: 299.0 / 300), 0)
                """).run()
        }

        // Version 3's metric log held one row per point; version 5 moves what is left in it to
        // `metrics` (a point that `metrics` already has stays once).
        #expect(try await migrator.upgrade(now: 1, through: 4) == [2, 3, 4])
        // Audit events written before version 6 keep their ids; later ones follow them.
        try await store.backend.withWriteTransaction { db in
            for (id, action) in [(7, "create_run"), (9, "log_batch")] as [(Int64, String)] {
                try await db.raw("""
                    INSERT INTO audit_events (id, time, actor, action, entity_type, entity_id, workspace, status, detail)
                    VALUES (\(bind: id), 5, 'alice', \(bind: action), 'run', \(bind: runID), 'default', 200, NULL)
                    """).run()
            }
        }
        let logged = (300..<305).map { Metric(key: "loss", value: 1 / Double($0 + 1), timestamp: 1000 + Int64($0), step: Int64($0)) } + [stored[0]]
        try await store.backend.withWriteTransaction { db in
            for m in logged {
                let (value, isNaN) = SQLMetadataStore.storedValue(m.value)
                try await db.raw("""
                    INSERT INTO metric_log (run_uuid, key, step, timestamp, value, is_nan)
                    VALUES (\(bind: runID), \(bind: m.key), \(bind: m.step), \(bind: m.timestamp), \(bind: value), \(bind: isNaN))
                    """).run()
            }
        }

        #expect(try await store.upgrade() == Array(5...Migrator.latestVersion))

        let history = try await store.metricHistory(runID: runID, key: "loss", maxResults: 1000, offset: 0).items
        #expect(history.map(\.step) == (0..<305).map(Int64.init))
        #expect(history.map(\.value) == (0..<305).map { 1 / Double($0 + 1) })
        #expect(history.map(\.timestamp) == (0..<305).map { 1000 + Int64($0) })
        let acc = try await store.metricHistory(runID: runID, key: "acc", maxResults: 1000, offset: 0).items
        #expect(acc.count == 300 && acc[7].value.isNaN && acc[8].value == 8.0 / 300)
        let latest = try #require(try await store.run(id: runID)).metrics
        #expect(latest.sorted { $0.key < $1.key }.map(\.step) == [299, 299])

        // Writes after the upgrade: duplicates are still ignored, new points land.
        let tracking = try t.tracking()
        try await tracking.logBatch(runID: runID, metrics: [points[0], Metric(key: "loss", value: 0.001, timestamp: 5000, step: 300)], params: [], tags: [])
        let after = try await store.metricHistory(runID: runID, key: "loss", maxResults: 1000, offset: 0).items
        #expect(after.count == 306)
        let newest = try #require(try await store.run(id: runID)).metrics.first { $0.key == "loss" }
        #expect(newest?.step == 300 && newest?.value == 0.001)

        let audit = try await store.auditEvents(AuditQuery(entityType: "run", entityID: runID)).items
        #expect(audit.count == 3)
        let old = audit.filter { $0.actor == "alice" }
        #expect(old.map(\.id) == [9, 7] && old.map(\.action) == ["log_batch", "create_run"])
        if store.backend.engine == .sqlite {
            // (PostgreSQL's identity column does not count ids inserted by hand.)
            #expect(audit[0].id > 9 && audit[0].action == "log_batch" && audit[0].actor != "alice")
        }
    }
}
