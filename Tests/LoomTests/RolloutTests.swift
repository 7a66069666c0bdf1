import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomCore
import LoomServer
@testable import LoomServing
import LoomStore
import LoomTesting
import NIOCore
import Testing

@Suite("Rollouts")
struct RolloutTests {
    typealias Reply = EndpointTests.Reply

    /// An endpoint `ep` whose deployments are external ones on the upstream: blue (`/score`,
    /// all live traffic), good (`/score`) and bad (`/fail`, every answer a 500).
    static func setUp(_ client: any TestClientProtocol, base: String) async throws {
        var (status, body) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "ep"}"#)
        #expect(status == .created)
        for (name, path) in [("blue", "/score"), ("good", "/score"), ("bad", "/fail")] {
            (status, body) = try await client.json(
                .post, "/api/v1/endpoints/ep/deployments", body: #"{"name": "\#(name)", "runtime": "external", "url": "\#(base)\#(path)"}"#)
            #expect(status == .created, "\(body)")
        }
        (status, _) = try await client.json(.put, "/api/v1/endpoints/ep/traffic", body: #"{"traffic": {"blue": 100}}"#)
        #expect(status == .ok)
    }

    /// Sends `n` requests; returns who answered with what.
    static func load(_ client: any TestClientProtocol, _ n: Int) async throws -> [(String, HTTPResponse.Status)] {
        var out: [(String, HTTPResponse.Status)] = []
        for _ in 0..<n {
            let r = try await EndpointTests.invoke(client, "ep", #"{"instances": [[1]]}"#)
            out.append((r.deployment ?? "?", r.code))
        }
        return out
    }

    static func traffic(_ services: ServerServices) async throws -> [String: Int] {
        try #require(try await services.store.endpoint(name: "ep", workspace: "default")).traffic.filter { $0.value > 0 }
    }

    @Test("a failing canary rolls back at its first gate; a passing one steps through to 100%, every decision logged", arguments: [TestBackend.sqlite])
    func canaryRollbackAndPromotion(_ backend: TestBackend) async throws {
        let upstream = Upstream()
        try await upstream.run { base in
            try await withTestApp(backend) { client, services, _ in
                try await Self.setUp(client, base: base)
                let controller = services.endpoints.rollouts

                // The bad candidate: half the traffic at the first step, and every answer a 500.
                var (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: """
                    {"deployment": "bad", "strategy": "canary", "steps": [50, 100], "bake": "30s", "gate_interval": "0.1s", "min_requests": 5,
                     "gates": [{"metric": "error_rate", "max_increase": 0.01}, {"metric": "latency_p99", "max_increase": 1000}]}
                    """)
                #expect(status == .created, "\(body)")
                let id = try #require(body["id"] as? String)
                #expect(body["state"] as? String == "running" && body["stages"] as? [String] == ["50% live", "100% live"])
                #expect(try await Self.traffic(services) == ["blue": 50, "bad": 50], "the first step is applied at once")
                let answered = try await Self.load(client, 40)
                #expect(answered.allSatisfy { ($0.0 == "blue" && $0.1 == .ok) || ($0.0 == "bad" && $0.1 == .internalServerError) })
                try await Task.sleep(for: .milliseconds(150))
                await controller.drive(id)
                (status, body) = try await client.json(.get, "/api/v1/endpoints/ep/rollouts/\(id)")
                #expect(body["state"] as? String == "rolled_back", "\(body)")
                #expect(try await Self.traffic(services) == ["blue": 100], "the previous traffic map is back")
                let decisions = try #require(body["decisions"] as? [[String: Any]])
                #expect(decisions.map { $0["kind"] as? String } == ["start", "step", "rollback"])
                let rollback = decisions[2]
                #expect((rollback["summary"] as? String)?.contains("error_rate 1 (current 0) is more than 0.010 above the current 0") == true, "\(rollback)")
                let detail = try #require(rollback["detail"] as? [String: Any])
                let gates = try #require(detail["gates"] as? [[String: Any]])
                #expect(gates.first?["outcome"] as? String == "failed" && gates.first?["candidate"] as? Double == 1 && gates.first?["thresholds"] as? String == "≤ current + 0.010")
                // The audit log has each decision.
                let audit = try await services.store.auditEvents(AuditQuery(entityType: "rollout", entityID: id, maxResults: 100)).items.map(\.action)
                #expect(audit.contains("start_rollout") && audit.contains("rollout_step") && audit.contains("rollout_rollback"), "\(audit)")
                for _ in 0..<20 { #expect(try await Self.load(client, 1).first?.0 == "blue") }

                // The good candidate passes each step and ends with all live traffic.
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: """
                    {"deployment": "good", "steps": [50, 100], "bake": "0.3s", "gate_interval": "0.1s", "min_requests": 5,
                     "gates": [{"metric": "error_rate", "max_increase": 0.01}, {"metric": "latency_p99", "max_increase": 2000}]}
                    """)
                #expect(status == .created, "\(body)")
                let good = try #require(body["id"] as? String)
                var state = "running"
                let deadline = ContinuousClock.now + .seconds(20)
                while state == "running", ContinuousClock.now < deadline {
                    // Enough for both deployments to reach min_requests in each window.
                    let answers = try await Self.load(client, 30)
                    #expect(answers.allSatisfy { $0.1 == .ok && ["blue", "good"].contains($0.0) }, "no request is lost: \(answers)")
                    await controller.drive(good)
                    state = try await services.store.rollout(id: good)?.state.rawValue ?? "?"
                }
                let summaries = try await services.store.rolloutDecisions(id: good).map(\.summary)
                #expect(state == "succeeded", "\(summaries)")
                #expect(try await Self.traffic(services) == ["good": 100])
                let log = try await services.store.rolloutDecisions(id: good)
                try #require(log.map(\.kind) == ["start", "step", "gate", "step", "promote"], "\(log.map(\.summary))")
                #expect(log[2].summary.hasPrefix("gates passed at 50% live") && log[4].summary.contains("good has all live traffic"))
                // The step at 100% was judged against what blue served earlier in the rollout.
                #expect(log[4].detail?.contains("since the rollout started") == true)
            }
        }
    }

    @Test("pause, resume, abort and promote; bad specs refused; one rollout at a time; a new owner takes over", arguments: [TestBackend.sqlite])
    func manualActionsAndTakeover(_ backend: TestBackend) async throws {
        let upstream = Upstream()
        try await upstream.run { base in
            try await withTestApp(backend) { client, services, _ in
                try await Self.setUp(client, base: base)
                for (bad, says) in [
                    (#"{"deployment": "good", "steps": [10, 50]}"#, "end at 100"),
                    (#"{"deployment": "good", "steps": [50, 20, 100]}"#, "must grow"),
                    (#"{"deployment": "good", "gates": [{"metric": "vibes", "max": 1}]}"#, "unknown metric vibes"),
                    (#"{"deployment": "good", "gates": [{"metric": "error_rate"}]}"#, "no threshold"),
                    (#"{"deployment": "good", "gates": [{"metric": "error_rate", "maximum": 1}]}"#, "unknown key maximum"),
                    (#"{"deployment": "good", "strategy": "yolo"}"#, "canary or blue-green"),
                    (#"{"deployment": "good", "bake": "soon"}"#, "duration"),
                    (#"{"deployment": "blue"}"#, "must not be the current one"),
                    (#"{"strategy": "canary"}"#, "Give the model"),
                    (#"{"deployment": "good", "mirror": 10}"#, "mirror is for blue-green"),
                    (#"{"deployment": "good", "strategy": "blue-green", "steps": [50, 100]}"#, "steps are for canary"),
                ] {
                    let (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: bad)
                    #expect(status == .badRequest && (body["message"] as? String)?.contains(says) == true, "\(bad): \(body)")
                }
                #expect(try await client.json(.post, "/api/v1/endpoints/nope/rollouts", body: #"{"deployment": "good"}"#).0 == .notFound)
                #expect(try await client.json(.post, "/api/v1/endpoints/ep/rollout/promote").0 == .badRequest, "nothing to promote")

                // Pause, resume, abort.
                var (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: #"{"deployment": "good", "steps": [20, 100], "bake": "1h"}"#)
                #expect(status == .created)
                let first = try #require(body["id"] as? String)
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: #"{"deployment": "bad"}"#)
                #expect(status == .badRequest && (body["message"] as? String)?.contains("in progress") == true)
                #expect(try await Self.traffic(services) == ["blue": 80, "good": 20])
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollout/pause")
                #expect(status == .ok && body["state"] as? String == "paused")
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollout/resume")
                #expect(body["state"] as? String == "running")
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollout/abort")
                #expect(body["state"] as? String == "aborted" && (body["message"] as? String)?.contains("aborted by anonymous") == true)
                #expect(try await Self.traffic(services) == ["blue": 100])
                #expect(try await services.store.rolloutDecisions(id: first).map(\.kind) == ["start", "step", "pause", "resume", "abort"])
                #expect(try await client.json(.post, "/api/v1/endpoints/ep/rollout/sideways").0 == .notFound)

                // Promote skips the remaining steps.
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: #"{"deployment": "good", "steps": [10, 100], "bake": "1h"}"#)
                #expect(status == .created)
                (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollout/promote")
                #expect(body["state"] as? String == "succeeded")
                #expect(try await Self.traffic(services) == ["good": 100])
                (status, body) = try await client.json(.get, "/api/v1/endpoints/ep/rollouts")
                #expect((body["items"] as? [[String: Any]])?.map { $0["state"] as? String } == ["succeeded", "aborted"])

                // A rollout whose driver stops is taken over once its lease expires; the new
                // driver measures from then on, and says so.
                let a = RolloutController(serving: services.serving, owner: "replica-a", leaseSeconds: 0.3, logger: TestStore.logger)
                let b = RolloutController(serving: services.serving, owner: "replica-b", leaseSeconds: 0.3, logger: TestStore.logger)
                let spec = RolloutSpec(strategy: .canary, model: "", deployment: "blue", steps: [30, 100], bakeSeconds: 3600, gateIntervalSeconds: 1, minRequests: 5)
                let r = try await a.start(endpoint: "ep", spec: spec, workspace: "default")
                #expect(r.stageStarted != nil && r.baseline == "good")
                await b.drive(r.id)
                #expect(try await services.store.rolloutDecisions(id: r.id).count == 2, "a holds the lease")
                // A long stage (an evaluation, a validation) keeps renewing the lease: b cannot take over meanwhile.
                try await a.holdingLease(r.id) { try await Task.sleep(for: .milliseconds(800)) }
                await b.drive(r.id)
                #expect(try await services.store.rolloutDecisions(id: r.id).count == 2, "a renewed its lease through the long stage")
                try await Task.sleep(for: .milliseconds(400))
                await b.drive(r.id)
                let log = try await services.store.rolloutDecisions(id: r.id)
                #expect(log.last?.kind == "resume" && log.last?.outcome == "window-restarted", "\(log.map(\.summary))")
                #expect(try await Self.traffic(services) == ["good": 70, "blue": 30], "the step stays applied")

                // Deleting the endpoint ends its rollout.
                #expect(try await client.json(.delete, "/api/v1/endpoints/ep").0 == .noContent)
                await b.drive(r.id)
                let ended = try #require(try await services.store.rollout(id: r.id))
                #expect(ended.state == .aborted && ended.message == "the endpoint was deleted", "\(ended)")
            }
        }
    }

    @Test("the endpoint pages show deployments, traffic and each rollout's decisions", arguments: [TestBackend.sqlite])
    func pages(_ backend: TestBackend) async throws {
        let upstream = Upstream()
        try await upstream.run { base in
            try await withTestApp(backend) { client, services, _ in
                var (status, html) = try await DatasetUITests.page(client, "/endpoints")
                #expect(status == .ok && html.contains("No endpoints yet"))
                try await Self.setUp(client, base: base)
                (status, _) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: #"{"deployment": "good", "steps": [25, 100], "bake": "1h"}"#)
                #expect(status == .created)
                (status, html) = try await DatasetUITests.page(client, "/endpoints")
                #expect(status == .ok && html.contains("href=\"/endpoints/ep\"") && html.contains("blue 75%, good 25%") && html.contains("state-running"))
                (status, html) = try await DatasetUITests.page(client, "/endpoints/ep")
                #expect(status == .ok)
                for text in ["blue", "good", "bad", "external", "25%", "75%", "canary blue → good", "good gets 25% of live traffic, blue 75%",
                             "lineage?node=deployment%3Aep%2Fgood", "POST /endpoints/ep/invocations"] {
                    #expect(html.contains(text), "missing \(text)")
                }
                #expect(!html.contains("style=\""), "no inline styles (the CSP forbids them)")
                (status, _) = try await DatasetUITests.page(client, "/endpoints/nope")
                #expect(status == .notFound)
                _ = services
            }
        }
    }

    @Test("blue-green validates the new model on a dataset before the switch: a failing check rolls back, a passing one switches", arguments: [TestBackend.sqlite])
    func blueGreenValidation(_ backend: TestBackend) async throws {
        try await withTestApp(backend) { client, services, _ in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-bg-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try await EndpointTests.registerModels(services.tracking, folder: folder)
            _ = try await services.tracking.registerDataset(name: "churn-test", path: folder.appendingPathComponent("churn.csv").path)
            try? FileManager.default.removeItem(at: folder)
            var (status, body) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "ep"}"#)
            (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/deployments", body: #"{"name": "blue", "model": "models:/churn/1"}"#)
            #expect(status == .created)
            (status, _) = try await client.json(.put, "/api/v1/endpoints/ep/traffic", body: #"{"traffic": {"blue": 100}}"#)
            let controller = services.endpoints.rollouts

            // Answers outside the allowed values: rolled back before any traffic moved.
            (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: """
                {"to": "models:/churn/2", "deployment": "green", "strategy": "blue-green", "bake": "0s",
                 "validation": {"dataset": "churn-test", "target": "churned", "allowed": ["yes", "no"], "thresholds": {"accuracy": {"min": 0.9}}}}
                """)
            #expect(status == .created, "\(body)")
            #expect(body["stages"] as? [String] == ["validation", "100% live"])
            #expect(body["state"] as? String == "rolled_back", "validation runs at once: \(body)")
            var log = try #require(body["decisions"] as? [[String: Any]])
            #expect(log.map { $0["kind"] as? String } == ["start", "rollback"])
            #expect((log.last?["summary"] as? String)?.contains("validation failed: 300 rows of churn-test: 300 predictions outside") == true, "\(log)")
            #expect(try await Self.traffic(services) == ["blue": 100])

            // A good model: validated (accuracy measured against the truth), then switched.
            (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: """
                {"deployment": "green", "strategy": "blue-green", "bake": "0.2s", "gate_interval": "0.1s", "min_requests": 5,
                 "gates": [{"metric": "error_rate", "max_increase": 0.01}],
                 "validation": {"dataset": "churn-test", "target": "churned", "allowed": [0, 1], "thresholds": {"accuracy": {"min": 0.9}}, "max_rows": 250}}
                """)
            #expect(status == .created, "\(body)")
            let id = try #require(body["id"] as? String)
            log = try #require(body["decisions"] as? [[String: Any]])
            #expect(log.map { $0["kind"] as? String } == ["start", "validate"], "\(log)")
            let detail = try #require(log.last?["detail"] as? [String: Any])
            let checks = try #require(detail["checks"] as? [[String: Any]])
            let accuracy = try #require(checks.first { $0["metric"] as? String == "accuracy" })
            #expect((accuracy["value"] as? Double ?? 0) >= 0.9 && accuracy["outcome"] as? String == "passed" && detail["rows"] as? Int == 250)
            var state = "running"
            let deadline = ContinuousClock.now + .seconds(20)
            let row = #"{"dataframe_records": [{"tenure": 3, "plan": "basic", "monthly": 20}]}"#
            while state == "running", ContinuousClock.now < deadline {
                for _ in 0..<20 { #expect(try await EndpointTests.invoke(client, "ep", row).code == .ok) }
                await controller.drive(id)
                state = try await services.store.rollout(id: id)?.state.rawValue ?? "?"
            }
            #expect(state == "succeeded")
            #expect(try await Self.traffic(services) == ["green": 100])
            #expect(try await services.store.rolloutDecisions(id: id).map(\.kind) == ["start", "validate", "switch", "promote"])
            // Validation settings that cannot work are refused up front.
            (status, body) = try await client.json(.post, "/api/v1/endpoints/ep/rollouts", body: #"{"deployment": "blue", "validation": {"dataset": "churn-test", "thresholds": {"accuracy": {"min": 0.9}}}}"#)
            #expect(status == .badRequest && (body["message"] as? String)?.contains("needs validation.target") == true)
        }
    }
}
