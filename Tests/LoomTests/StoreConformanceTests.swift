import LoomCore
import LoomStore
import LoomTesting
import Testing

/// The conformance suite against every backend (SQLite always; PostgreSQL when configured).
@Suite("Metadata store conformance")
struct StoreConformanceTests {
    @Test(arguments: TestBackend.available)
    func experiments(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.experiments(t) }
    }

    @Test(arguments: TestBackend.available)
    func runsAndMetrics(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.runsAndMetrics(t) }
    }

    @Test(arguments: TestBackend.available)
    func runSearch(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.runSearch(t) }
    }

    @Test(arguments: TestBackend.available)
    func registry(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.registry(t) }
    }

    @Test(arguments: TestBackend.available)
    func loggedModels(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.loggedModels(t) }
    }

    @Test(arguments: TestBackend.available)
    func datasets(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.datasets(t) }
    }

    @Test(arguments: TestBackend.available)
    func pipelines(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.pipelines(t) }
    }

    @Test(arguments: TestBackend.available)
    func workerSteps(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.workerSteps(t) }
    }

    @Test(arguments: TestBackend.available)
    func appliedPipelines(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.appliedPipelines(t) }
    }

    @Test(arguments: TestBackend.available)
    func endpoints(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.endpoints(t) }
    }

    @Test(arguments: TestBackend.available)
    func rollouts(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.rollouts(t) }
    }

    @Test(arguments: TestBackend.available)
    func evaluations(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.evaluations(t) }
    }

    @Test(arguments: TestBackend.available)
    func indexes(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.indexes(t) }
    }

    @Test(arguments: TestBackend.available)
    func gateway(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.gateway(t) }
    }

    @Test(arguments: TestBackend.available)
    func monitors(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.monitors(t) }
    }

    @Test(arguments: TestBackend.available)
    func lineage(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.lineage(t) }
    }

    @Test(arguments: TestBackend.available)
    func datasetVersions(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.datasetVersions(t) }
    }

    @Test(arguments: TestBackend.available)
    func access(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { s, _ in try await StoreConformance.access(s.store) }
    }

    @Test(arguments: TestBackend.available)
    func audit(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.audit(t) }
    }

    @Test(arguments: TestBackend.available)
    func groupCommit(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.groupCommit(t) }
    }

    @Test(arguments: TestBackend.available)
    func metricHistoryAcrossMerges(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { _, t in try await StoreConformance.metricHistoryAcrossMerges(t) }
    }

    @Test(arguments: TestBackend.available)
    func migrations(_ backend: TestBackend) async throws {
        try await withTestStore(backend) { s, _ in try await StoreConformance.migrations(s.store) }
    }
}
