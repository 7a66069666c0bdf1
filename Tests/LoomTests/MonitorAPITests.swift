import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LoomCore
import LoomServer
import LoomStore
import LoomTesting
import NIOCore
import Testing

@Suite("Monitors over HTTP")
struct MonitorAPITests {
    static func apply(_ client: any TestClientProtocol, _ yaml: String) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await DatasetAPITests.upload(client, "/api/v1/monitors", yaml, headers: [.contentType: "application/yaml"])
    }

    static func page(_ client: any TestClientProtocol, _ uri: String) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: uri, method: .get) { response in (response.status, String(buffer: response.body)) }
    }

    @Test("apply, pass over collected traffic, alerts that open once and resolve, results over time", arguments: TestBackend.available)
    func monitorLoop(_ backend: TestBackend) async throws {
        let upstream = Upstream()
        try await upstream.run { base in
            try await withTestApp(backend) { client, services, _ in
                let collector = try #require(services.serving.collector)
                let writing = Task { await collector.run() }
                // The reference: the same 0..29 the traffic sends, and a shifted copy.
                var (status, body) = try await DatasetAPITests.upload(
                    client, "/api/v1/datasets/ref/versions?file_name=ref.csv", "input_0\n" + (0..<30).map { "\($0)\n" }.joined())
                #expect(status == .created)
                (status, body) = try await DatasetAPITests.upload(
                    client, "/api/v1/datasets/shifted/versions?file_name=s.csv", "input_0\n" + (0..<30).map { "\($0 + 100)\n" }.joined())
                #expect(status == .created)
                (status, _) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "col", "sampling_rate": 1}"#)
                #expect(status == .created)
                (status, _) = try await client.json(.post, "/api/v1/endpoints/col/deployments", body: #"{"name": "live", "runtime": "external", "url": "\#(base)/score"}"#)
                #expect(status == .created)
                (status, _) = try await client.json(.put, "/api/v1/endpoints/col/traffic", body: #"{"traffic": {"live": 100}}"#)
                #expect(status == .ok)

                // Bad specs are refused with the field named; a monitor of no endpoint is a 404.
                (status, body) = try await Self.apply(client, "name: m\nendpoint: col\nsignals: [{type: data_drift, drift_share: 7}]\n")
                #expect(status == .badRequest && (body["message"] as? String)?.contains("signals[0].drift_share") == true, "\(body)")
                (status, body) = try await Self.apply(client, "name: m\nendpoint: nope\n")
                #expect(status == .notFound)
                (status, body) = try await client.json(.get, "/api/v1/monitors")
                #expect(status == .ok && (body["items"] as? [Any])?.isEmpty == true, "nothing applied: \(body)")

                let spec = """
                    kind: monitor
                    name: m
                    endpoint: col
                    schedule: {every: 1h}
                    window: {size: 1h}
                    reference: {dataset: ref}
                    signals:
                      - {type: data_drift, numerical_method: ks}
                      - {type: data_quality}
                      - {type: model_performance, metrics: {accuracy: {min: 0.9}}}
                    """
                (status, body) = try await Self.apply(client, spec)
                #expect(status == .created && body["changed"] as? Bool == true, "\(body)")
                #expect((body["monitor"] as? [String: Any])?["next_run_time"] as? Int ?? 0 > Int(LoomStore.Clock.nowMillis()) + 3_000_000)
                (status, body) = try await client.json(.post, "/api/v1/monitors", body: try String(data: JSONSerialization.data(withJSONObject: ["spec": spec]), encoding: .utf8)!)
                #expect(status == .ok && body["changed"] as? Bool == false, "the same spec again changes nothing")

                for i in 0..<30 {
                    let r = try await EndpointTests.invoke(client, "col", #"{"instances": [[\#(i)]]}"#, headers: [HTTPField.Name("loom-correlation-id")!: "req-\(i)"])
                    #expect(r.code == .ok)
                }
                let labels = (0..<10).map { #"{"correlation_id": "req-\#($0)", "label": "upstream"}"# } + (10..<20).map { #"{"correlation_id": "req-\#($0)", "label": "other"}"# }
                (status, _) = try await client.json(.post, "/api/v1/endpoints/col/labels", body: #"{"labels": [\#(labels.joined(separator: ","))]}"#)
                #expect(status == .created)
                collector.finish()
                await writing.value

                // Pass 1: same distribution, quality fine; 10 of 20 labelled answers right: accuracy 0.5 < 0.9.
                (status, body) = try await client.json(.post, "/api/v1/monitors/m/run")
                #expect(status == .ok, "\(body)")
                #expect(body["rows"] as? Int == 30 && body["reference"] as? String == "dataset ref@1" && body["reference_rows"] as? Int == 30)
                var results = try #require(body["results"] as? [[String: Any]])
                #expect(results.map { $0["signal"] as? String } == ["data_drift", "data_quality", "model_performance"])
                #expect(results.map { $0["passed"] as? Bool } == [true, true, false], "\(results.map { $0["summary"] ?? "" })")
                #expect(results[2]["value"] as? Double == 0.5)
                let drift = try #require(results[0]["detail"] as? [String: Any])
                #expect((drift["columns"] as? [[String: Any]])?.first?["method"] as? String == "ks")
                let opened = try #require(body["alerts_opened"] as? [[String: Any]])
                #expect(opened.map { $0["signal"] as? String } == ["model_performance"])
                let alertID = try #require(opened.first?["id"] as? String)

                // Pass 2: still failing: the same alert, counted, none new.
                (status, body) = try await client.json(.post, "/api/v1/monitors/m/run")
                #expect((body["alerts_opened"] as? [Any])?.isEmpty == true && (body["alerts_continued"] as? [[String: Any]])?.first?["id"] as? String == alertID)

                // A shifted reference: data drift fails too; a looser accuracy rule resolves the other alert.
                (status, body) = try await Self.apply(client, spec.replacingOccurrences(of: "dataset: ref", with: "dataset: shifted").replacingOccurrences(of: "min: 0.9", with: "min: 0.4"))
                #expect(status == .ok && body["changed"] as? Bool == true && (body["monitor"] as? [String: Any])?["version"] as? Int == 2)
                (status, body) = try await client.json(.post, "/api/v1/monitors/m/run")
                results = try #require(body["results"] as? [[String: Any]])
                #expect(results.map { $0["passed"] as? Bool } == [false, false, true], "\(results.map { $0["summary"] ?? "" })")
                #expect((body["alerts_resolved"] as? [[String: Any]])?.first?["id"] as? String == alertID)
                #expect((body["alerts_opened"] as? [[String: Any]])?.compactMap { $0["signal"] as? String }.sorted() == ["data_drift", "data_quality"])

                // The schedule: when the next pass is due, the server's tick makes it and moves the next one on.
                let due = try #require(try await services.store.monitor(name: "m", workspace: Workspace.defaultName)?.nextRunTime)
                await services.monitors.tick(now: due - 1)
                #expect(try await services.store.monitorResults(monitor: "m", workspace: Workspace.defaultName, signal: "data_drift", limit: 10).count == 3)
                await services.monitors.tick(now: due + 1)
                let scheduled = try await services.store.monitorResults(monitor: "m", workspace: Workspace.defaultName, signal: "data_drift", limit: 10)
                #expect(scheduled.count == 4 && scheduled.first?.time == due + 1)
                // An hour on, the window is empty: skipped, and the open alerts stay open.
                #expect(scheduled.first?.skipped == true && scheduled.first?.passed == true && scheduled.first?.summary == "no production data in the window")
                #expect(try await services.store.monitor(name: "m", workspace: Workspace.defaultName)?.nextRunTime == due + 1 + 3_600_000)
                // Another replica's tick finds nothing due.
                await services.monitors.tick(now: due + 2)
                #expect(try await services.store.monitorResults(monitor: "m", workspace: Workspace.defaultName, signal: nil, limit: 100).count == 12)

                // Results over time, newest first; alerts by state.
                (status, body) = try await client.json(.get, "/api/v1/monitors/m/results?signal=model_performance")
                let series = try #require(body["items"] as? [[String: Any]])
                #expect(series.map { $0["passed"] as? Bool } == [true, true, false, false] && series.map { $0["skipped"] as? Bool } == [true, false, false, false] && series.allSatisfy { $0["detail"] == nil })
                (status, body) = try await client.json(.get, "/api/v1/alerts?state=open")
                #expect((body["items"] as? [[String: Any]])?.compactMap { $0["signal"] as? String }.sorted() == ["data_drift", "data_quality"])
                (status, body) = try await client.json(.get, "/api/v1/alerts?monitor=m")
                let all = try #require(body["items"] as? [[String: Any]])
                #expect(all.count == 3 && all.first { $0["id"] as? String == alertID }?["passes"] as? Int == 2)
                #expect(try await client.json(.get, "/api/v1/alerts?state=maybe").0 == .badRequest)
                (status, body) = try await client.json(.get, "/api/v1/monitors/m")
                #expect(body["open_alerts"] as? Int == 2 && (body["spec"] as? String)?.contains("shifted") == true && body["schedule"] as? String == "every 3600s")
                (status, body) = try await client.json(.get, "/api/v1/monitors")
                #expect((body["items"] as? [[String: Any]])?.first?["signals"] as? [String] == ["data_drift", "data_quality", "model_performance"])

                // The UI: the list, the monitor's page (a chart per signal, alerts, passes), a pass's drift report.
                let list = try await Self.page(client, "/monitors")
                #expect(list.0 == .ok && list.1.contains("href=\"/monitors/m\"") && list.1.contains("every 1h"))
                let page = try await Self.page(client, "/monitors/m")
                #expect(page.0 == .ok && page.1.components(separatedBy: "<svg class=\"chart\"").count == 4, "three signals, three charts")
                #expect(page.1.contains("id=\"alerts\"") && page.1.contains("data_quality") && page.1.contains("skipped"))
                let link = try #require(page.1.range(of: #"/monitors/m/passes/[0-9a-f]+/data_drift"#, options: .regularExpression).map { String(page.1[$0]) })
                let report = try await Self.page(client, link)
                #expect(report.0 == .ok && report.1.contains("input_0") && report.1.contains("columns drifted"), "\(report.1.prefix(300))")
                #expect(report.1.contains("<svg"), "the report plots each column's distributions")
                #expect(try await Self.page(client, "/monitors/m/passes/nope/data_drift").0 == .notFound)
                #expect(try await Self.page(client, "/monitors/nope").0 == .notFound)

                #expect(try await client.json(.post, "/api/v1/monitors/nope/run").0 == .notFound)
                #expect(try await client.json(.get, "/api/v1/monitors/nope/results").0 == .notFound)
                #expect(try await client.json(.delete, "/api/v1/monitors/m").0 == .noContent)
                #expect(try await client.json(.get, "/api/v1/monitors/m").0 == .notFound)
                (status, body) = try await client.json(.get, "/api/v1/alerts")
                #expect(status == .ok && (body["items"] as? [Any])?.isEmpty == true, "a deleted monitor's alerts go with it: \(body)")
            }
        }
    }

    @Test("alerts call webhooks, signed with HMAC-SHA256, retried until delivered")
    func webhooks() async throws {
        let upstream = Upstream()
        setenv("LOOM_TEST_HOOK_SECRET", "s3cret", 1)
        try await upstream.run { base in
            try await withTestApp(.sqlite) { client, services, _ in
                let collector = try #require(services.serving.collector)
                let writing = Task { await collector.run() }
                var (status, body) = try await DatasetAPITests.upload(
                    client, "/api/v1/datasets/far/versions?file_name=far.csv", "input_0\n" + (0..<30).map { "\($0 + 1000)\n" }.joined())
                #expect(status == .created)
                (status, _) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "hooked", "sampling_rate": 1}"#)
                (status, _) = try await client.json(.post, "/api/v1/endpoints/hooked/deployments", body: #"{"name": "live", "runtime": "external", "url": "\#(base)/score"}"#)
                (status, _) = try await client.json(.put, "/api/v1/endpoints/hooked/traffic", body: #"{"traffic": {"live": 100}}"#)
                #expect(status == .ok)
                (status, body) = try await Self.apply(client, """
                    name: hooked-drift
                    endpoint: hooked
                    window: {size: 1h}
                    reference: {dataset: far}
                    signals: [{type: data_drift}]
                    alerts:
                      webhooks:
                        - {url: "\(base)/hook", secret_env: LOOM_TEST_HOOK_SECRET}
                        - {url: "\(base)/hook", secret_env: LOOM_TEST_HOOK_UNSET}
                    """)
                #expect(status == .created, "\(body)")
                for i in 0..<20 {
                    #expect(try await EndpointTests.invoke(client, "hooked", #"{"instances": [[\#(i)]]}"#).code == .ok)
                }
                collector.finish()
                await writing.value
                (status, body) = try await client.json(.post, "/api/v1/monitors/hooked-drift/run")
                #expect((body["alerts_opened"] as? [[String: Any]])?.count == 1, "\(body)")
                let alertID = try #require((body["alerts_opened"] as? [[String: Any]])?.first?["id"] as? String)

                // The pass sends its calls at once: the first is refused (503), the unsigned one is given up.
                for _ in 0..<200 where upstream.count("/hook") < 1 { try await Task.sleep(for: .milliseconds(20)) }
                var calls: [WebhookDelivery] = []
                for _ in 0..<200 {
                    calls = try await services.store.webhookDeliveries(workspace: Workspace.defaultName, monitor: "hooked-drift", limit: 10)
                    if calls.allSatisfy({ $0.attempts >= 1 }) { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let signed = try #require(calls.first { $0.secretEnv == "LOOM_TEST_HOOK_SECRET" })
                let unsigned = try #require(calls.first { $0.secretEnv == "LOOM_TEST_HOOK_UNSET" })
                #expect(signed.state == .pending && signed.attempts == 1 && signed.lastStatus == 503)
                #expect(unsigned.state == .failed && unsigned.lastError?.contains("LOOM_TEST_HOOK_UNSET") == true && upstream.count("/hook") == 1)
                // Not due yet; once the backoff passes, the retry is delivered.
                await services.monitors.deliverWebhooks(now: LoomStore.Clock.nowMillis())
                #expect(upstream.count("/hook") == 1)
                await services.monitors.deliverWebhooks(now: LoomStore.Clock.nowMillis() + 60_000)
                #expect(upstream.count("/hook") == 2)
                let done = try #require(try await services.store.webhookDeliveries(workspace: Workspace.defaultName, monitor: nil, limit: 10).first { $0.id == signed.id })
                #expect(done.state == .delivered && done.attempts == 2 && done.lastStatus == 204)
                await services.monitors.deliverWebhooks(now: LoomStore.Clock.nowMillis() + 3_600_000)
                #expect(upstream.count("/hook") == 2, "a delivered call is not sent again")

                // What the receiver got: the event, and a signature it can check with the shared secret.
                let received = upstream.hooks.withLock { $0 }
                #expect(received.count == 2 && received.allSatisfy { $0.event == "alert.opened" && $0.body == received[0].body })
                let mac = HMAC<SHA256>.authenticationCode(for: Array(received[1].body.utf8), using: SymmetricKey(data: Array("s3cret".utf8)))
                #expect(received[1].signature == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
                let payload = try #require(try JSONSerialization.jsonObject(with: Data(received[1].body.utf8)) as? [String: Any])
                #expect(payload["alert_id"] as? String == alertID && payload["signal"] as? String == "data_drift" && payload["monitor"] as? String == "hooked-drift")
                #expect(payload["endpoint"] as? String == "hooked" && payload["state"] as? String == "open" && (payload["summary"] as? String)?.contains("input_0") == true)
            }
        }
    }
}
