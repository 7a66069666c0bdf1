import Foundation
import LoomCore
import LoomTesting
import SQLKit
import Testing

@testable import LoomStore

/// What the writes of one batch may assume about each other (`WriteBatcher.apply`), seen in one
/// batch built by hand: concurrent requests cannot be made to share a batch in a given order.
@Suite("Write batches")
struct WriteBatchTests {
    /// A metric write as `SQLMetadataStore.logBatch` makes it: the run must be active.
    static func logPoint(_ runID: String, step: Int64) -> WriteBatcher.Operation {
        WriteBatcher.Operation(run: { db in
            try await SQLMetadataStore.ensureActiveRun(db, runID)
            try await SQLMetadataStore.insertMetrics(db, runID: runID, metrics: [Metric(key: "m", value: 1, timestamp: 1, step: step)])
            return ((), nil)
        }, validatesFirst: true)
    }

    static func setStage(_ runID: String, _ stage: String) -> WriteBatcher.Operation {
        WriteBatcher.Operation(run: { db in
            try await db.raw("UPDATE runs SET lifecycle_stage = \(bind: stage) WHERE run_uuid = \(bind: runID)").run()
            return ((), nil)
        }, validatesFirst: false)
    }

    static func failure(_ outcome: Result<any Sendable, any Error>) -> LoomError? {
        if case .failure(let e as LoomError) = outcome { return e }
        return nil
    }

    @Test func writesAfterADeleteInTheSameBatchSeeTheRunDeleted() async throws {
        let dir = try MetricLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try await MetricLogTests.Fixture.open(dir, mergePoints: 1_000_000)
        let (_, runID) = try await f.newRun()
        let backend = f.backend
        // The first write finds the run active; the second deletes it; the third must not take
        // the first one's word for it.
        let outcomes = try await backend.withWriteTransaction { db in
            try await WriteBatcher.apply([Self.logPoint(runID, step: 1), Self.setStage(runID, "deleted"), Self.logPoint(runID, step: 2)], db, backend, mergeLog: false).outcomes
        }
        #expect(Self.failure(outcomes[0]) == nil)
        #expect(Self.failure(outcomes[1]) == nil)
        #expect(Self.failure(outcomes[2])?.code == .invalidParameter)
        #expect(Self.failure(outcomes[2])?.message.contains("must be in the 'active' state") == true)
        await f.store.shutdown()
    }

    @Test func writesAfterARolledBackRestoreSeeTheRunDeleted() async throws {
        let dir = try MetricLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try await MetricLogTests.Fixture.open(dir, mergePoints: 1_000_000)
        let (_, runID) = try await f.newRun()
        try await f.tracking.deleteRun(id: runID)
        let backend = f.backend
        // A restore that fails after its change is rolled back to its savepoint, and a write in
        // between saw the run active: the last write must see it deleted again.
        let restoreThenCheck = WriteBatcher.Operation(run: { db in
            try await db.raw("UPDATE runs SET lifecycle_stage = 'active' WHERE run_uuid = \(bind: runID)").run()
            try await SQLMetadataStore.ensureActiveRun(db, runID)
            throw LoomError.invalidParameter("made to fail after its change")
        }, validatesFirst: false)
        let outcomes = try await backend.withWriteTransaction { db in
            try await WriteBatcher.apply([restoreThenCheck, Self.logPoint(runID, step: 1)], db, backend, mergeLog: false).outcomes
        }
        #expect(Self.failure(outcomes[0])?.message == "made to fail after its change")
        #expect(Self.failure(outcomes[1])?.code == .invalidParameter)
        await f.store.shutdown()
    }
}
