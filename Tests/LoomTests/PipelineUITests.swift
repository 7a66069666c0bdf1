import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomCore
import LoomPipelines
import LoomServer
import LoomTesting
import LoomTracking
import Testing

/// The pipeline pages: the list, a pipeline's runs, a run drawn as a DAG, and the lineage graph.
@Suite("Pipeline UI pages")
struct PipelineUITests {
    @Test("a run is drawn as a DAG with each step's state; lineage pages link every node")
    func pages() async throws {
        try await withTestApp { client, services, _ in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-ui-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            try "x,y\n1,a\n2,b\n".write(to: folder.appendingPathComponent("d.csv"), atomically: true, encoding: .utf8)
            let yaml = """
                pipeline: ui<demo>
                steps:
                  load: {kind: ingest, with: {path: d.csv, dataset: uidata}}
                  shout: {kind: command, command: echo hi, needs: [load]}
                  broken: {kind: command, command: exit 4, needs: [load]}
                  after: {kind: command, command: echo never, needs: [broken]}
                """
            var (status, html) = try await DatasetUITests.page(client, "/pipelines")
            #expect(status == .ok && html.contains("No pipelines yet"))
            // The spec's name is refused (not a valid pipeline name): nothing to draw.
            #expect(throws: LoomError.self) { _ = try PipelineSpec.parse(yaml: yaml) }
            let good = yaml.replacingOccurrences(of: "ui<demo>", with: "uidemo")
            let runner = PipelineRunner(
                store: services.store, operations: TrackingStepOperations(tracking: services.tracking, trackingURI: nil), logger: TestStore.logger)
            let run = try await runner.submit(
                spec: try PipelineSpec.parse(yaml: good), text: good, parameters: [:], options: PipelineRunOptions(directory: folder.path))
            let finished = try await runner.execute(runID: run.id)
            #expect(finished.state == .failed)

            (status, html) = try await DatasetUITests.page(client, "/pipelines")
            #expect(status == .ok && html.contains("href=\"/pipelines/uidemo\"") && html.contains("href=\"/pipeline-runs/\(run.id)\""))
            (status, html) = try await DatasetUITests.page(client, "/pipelines/uidemo")
            #expect(status == .ok && html.contains("state-failed") && html.contains("pipeline: uidemo"))
            (status, html) = try await DatasetUITests.page(client, "/pipeline-runs/\(run.id)")
            #expect(status == .ok)
            #expect(html.contains("<svg class=\"dag\""))
            for (step, state) in [("load", "succeeded"), ("shout", "succeeded"), ("broken", "failed"), ("after", "skipped")] {
                #expect(html.contains("data-step=\"\(step)\" data-state=\"\(state)\""), "\(step) drawn as \(state)")
            }
            #expect(html.contains("/api/v1/pipeline-runs/\(run.id)/steps/shout/logs"))
            #expect(html.contains("the command exited with status 4"))

            (status, html) = try await DatasetUITests.page(client, "/lineage?node=dataset:uidata@1")
            #expect(status == .ok && html.contains("<svg class=\"lineage\""))
            #expect(html.contains("data-node=\"step:\(run.id)/load\"") && html.contains("href=\"/pipeline-runs/\(run.id)\""))
            #expect(html.contains("data-node=\"dataset:uidata@1\""))
            (status, _) = try await DatasetUITests.page(client, "/lineage?node=dataset:nothing@1")
            #expect(status == .notFound)
            (status, _) = try await DatasetUITests.page(client, "/pipeline-runs/nope")
            #expect(status == .notFound)
        }
    }
}
