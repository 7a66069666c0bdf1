import Foundation
import LoomArtifacts
import LoomCore
import LoomTesting
import LoomTracking
import Testing

@testable import LoomStore

/// While writes never stop, the checkpointer still gets moments with no write transaction open
/// (the write batcher parks between two batches when asked), so that SQLite's write-ahead log
/// can start over instead of growing until every commit checkpoints by itself.
@Suite("SQLite log restarts")
struct WALRestartTests {
    @Test func theLogStartsOverWhileWritesNeverPause() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-wal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("loom.db").path
        let restartFrames: Int64 = 256
        let backend = try await SQLiteBackend.open(path: path, logger: TestStore.logger, walRestartFrames: restartFrames)
        let store = SQLMetadataStore(backend: backend, logger: TestStore.logger)
        let tracking = TrackingService(store: store, artifacts: try LocalArtifactStore(root: dir.appendingPathComponent("artifacts").path), logger: TestStore.logger)
        _ = try await tracking.prepare()
        let exp = try await tracking.createExperiment(name: "wal", artifactLocation: nil, tags: [])
        let run = try await tracking.createRun(experimentID: exp.id, userID: "u", startTime: 1, runName: "r", tags: [])

        let writers = 16, rounds = 150, keys = 10
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for i in 0..<rounds {
                        // Many keys per write: each commit touches many pages.
                        let metrics = (0..<keys).map { k in Metric(key: "k\(k)", value: Double(i), timestamp: 1, step: Int64(w * 1000 + i)) }
                        try await tracking.logBatch(runID: run.info.runID, metrics: metrics, params: [], tags: [])
                    }
                }
            }
            try await group.waitForAll()
        }
        let history = try await store.metricHistory(runID: run.info.runID, key: "k3", maxResults: 5000, offset: 0)
        #expect(history.items.count == writers * rounds)
        // Writes never paused on their own, yet the checkpointer got its quiet moments (the batcher
        // parked between batches) and the log started over. Whether that shortens the tail of
        // the write latency is for the benchmark to show (BENCHMARKS.md), not for a test.
        #expect(backend.largestLogFrames >= restartFrames, "the writes were too few to need a restart")
        #expect(backend.quietCheckpoints >= 1)
        #expect(backend.logRestarts >= 1)
        await store.shutdown()
    }
}
