import Foundation
import LoomCore
import LoomTesting
import Testing

@testable import LoomStore

/// Upgrading a store that already holds data keeps every row and every query answer.
@Suite("Migrations")
struct MigrationTests {
    @Test(arguments: TestBackend.available)
    func metricsWrittenBeforeVersion2SurviveTheUpgrade(_ backend: TestBackend) async throws {
        let t = try await TestStore.make(backend)
        do {
            try await check(t)
            await t.tearDown()
        } catch {
            await t.tearDown()
            throw error
        }
    }

    private func check(_ t: TestStore) async throws {
        let store = t.store
        let migrator = Migrator(backend: store.backend, logger: TestStore.logger)
        #expect(try await migrator.upgrade(now: 1, through: 1) == [1])
        let tracking = try t.tracking()
        let exp = try await tracking.createExperiment(name: "before-v2", artifactLocation: nil, tags: [])
        let run = try await tracking.createRun(experimentID: exp.id, userID: "u", startTime: 1, runName: "r", tags: [])
        let runID = run.info.runID
        var points: [Metric] = []
        for step in 0..<300 {
            points.append(Metric(key: "loss", value: 1 / Double(step + 1), timestamp: 1000 + Int64(step), step: Int64(step)))
            points.append(Metric(key: "acc", value: step == 7 ? .nan : Double(step) / 300, timestamp: 1000, step: Int64(step)))
        }
        try await tracking.logBatch(runID: runID, metrics: points, params: [], tags: [])
        let historyBefore = try await store.metricHistory(runID: runID, key: "loss", maxResults: 1000, offset: 0).items
        let latestBefore = try #require(try await store.run(id: runID)).metrics

        #expect(try await store.upgrade() == Array(2...Migrator.latestVersion))

        let historyAfter = try await store.metricHistory(runID: runID, key: "loss", maxResults: 1000, offset: 0).items
        #expect(historyAfter.count == 300)
        #expect(historyAfter == historyBefore)
        let accAfter = try await store.metricHistory(runID: runID, key: "acc", maxResults: 1000, offset: 0).items
        #expect(accAfter.count == 300 && accAfter[7].value.isNaN)
        let latestAfter = try #require(try await store.run(id: runID)).metrics
        #expect(Set(latestAfter.map(\.key)) == ["loss", "acc"])
        #expect(latestAfter.sorted { $0.key < $1.key }.map(\.step) == latestBefore.sorted { $0.key < $1.key }.map(\.step))

        // Writes after the upgrade: duplicates are still ignored, new points land.
        try await tracking.logBatch(runID: runID, metrics: [points[0], Metric(key: "loss", value: 0.001, timestamp: 5000, step: 300)], params: [], tags: [])
        let history = try await store.metricHistory(runID: runID, key: "loss", maxResults: 1000, offset: 0).items
        #expect(history.count == 301)
        let latest = try #require(try await store.run(id: runID)).metrics.first { $0.key == "loss" }
        #expect(latest?.step == 300 && latest?.value == 0.001)
    }
}
