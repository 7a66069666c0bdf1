import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LoomArtifacts
import LoomCore
import LoomModels
import LoomMonitoring
import LoomServer
import LoomServing
import LoomTesting
import LoomTracking
import NIOCore
import Synchronization
import Testing

@Suite("Scoring input and traffic rules")
struct ScoringInputTests {
    static func table(_ text: String) throws -> ScoringTable {
        try Array(text.utf8).withUnsafeBytes { try ScoringTable.parse($0) }
    }

    @Test("the four MLflow input formats give the same rows")
    func formats() throws {
        let split = try Self.table(#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2.5, null]]}, "params": {}}"#)
        #expect(split.columns == ["a", "b"])
        #expect(split.rows == [[.number(1, raw: "1"), .string("x")], [.number(2.5, raw: nil), .null]])
        let records = try Self.table(#"{"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2.5}]}"#)
        #expect(records == split)
        let instances = try Self.table(#"{"instances": [{"a": 1, "b": "x"}, {"a": 2.5, "b": null}]}"#)
        #expect(instances == split)
        let columnar = try Self.table(#"{"inputs": {"a": [1, 2.5], "b": ["x", null]}}"#)
        #expect(columnar == split)
        let positional = try Self.table(#"{"inputs": [[1, "x"], [2.5, null]]}"#)
        #expect(positional.columns.isEmpty && positional.rows == split.rows)
    }

    @Test("malformed bodies are refused, each naming what is wrong")
    func malformed() throws {
        for (body, says) in [
            ("", "Malformed JSON"),
            ("[1, 2]", "JSON object"),
            (#"{"rows": []}"#, "Unknown member rows"),
            (#"{}"#, "one of dataframe_split"),
            (#"{"instances": [], "inputs": []}"#, "exactly one"),
            (#"{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}"#, "data[0] has 2 values; columns names 1"),
            (#"{"dataframe_split": {"columns": ["a", "a"], "data": []}}"#, "names a twice"),
            (#"{"dataframe_split": {"columns": [1], "data": []}}"#, "columns[0] must be a string"),
            (#"{"dataframe_records": [{"a": 1}, 7]}"#, "dataframe_records[1] must be an object"),
            (#"{"inputs": {"a": [1, 2], "b": [1]}}"#, "inputs.b has 1 values; inputs.a has 2"),
            (#"{"instances": [[1], {"a": 1}]}"#, "instances[1] must be an array"),
            (#"{"instances": [1, 2,]}"#, "Malformed JSON"),
            (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "nested deeper"),
        ] {
            #expect {
                _ = try Self.table(body)
            } throws: { error in
                guard let e = error as? LoomError else { return false }
                return e.message.contains(says) && (e.code == .badRequest || e.code == .invalidParameter)
            }
        }
    }

    @Test("the byte parser reads what JSONDecoder reads")
    func parserAgreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        var numbers: [Double] = [0, -0.0, 1e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1, 123456789012345680, -42]
        for _ in 0..<500 { numbers.append(Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random() ? 1 : -1)) }
        let text = "[" + numbers.map { "\($0)" }.joined(separator: ",") + #", "a\"b\\c\u00e9\ud83d\ude00\n", true, false, null, {"k": [1, {"z": "y"}]}]"#
        let ours = try JSONValue.parse(Array(text.utf8))
        let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        guard case .array(let a) = ours, case .array(let b) = theirs else { Issue.record("not arrays"); return }
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            if case .number(let p, _) = x, case .number(let q, _) = y {
                #expect(p == q || (p.isNaN && q.isNaN))
            } else {
                #expect(x == y)
            }
        }
    }

    @Test("traffic maps: integers summing to 100 or 0, one mirror of at most 50%, never a live one")
    func trafficRules() throws {
        let names: Set<String> = ["blue", "green", "red"]
        let ok = try TrafficPolicy.check(traffic: ["blue": 90, "green": 10], mirror: ["red": 20, "green": 0], deployments: names, endpoint: "e")
        #expect(ok.mirror == ["red": 20])
        _ = try TrafficPolicy.check(traffic: ["blue": 0, "green": 0], mirror: [:], deployments: names, endpoint: "e")
        for (traffic, mirror, says) in [
            (["blue": 90, "green": 20], [String: Int](), "sum to 110"),
            (["blue": 90], [:], "sum to 90"),
            (["blue": 110, "green": -10], [:], "from 0 to 100"),
            (["ghost": 100], [:], "no deployment named ghost"),
            (["blue": 100], ["green": 10, "red": 10], "Only one deployment"),
            (["blue": 100], ["green": 60], "from 0 to 50"),
            (["blue": 50, "green": 50], ["green": 10], "live or mirrored traffic, not both"),
        ] {
            #expect {
                _ = try TrafficPolicy.check(traffic: traffic, mirror: mirror, deployments: names, endpoint: "e")
            } throws: { ($0 as? LoomError)?.message.contains(says) == true }
        }
        // Sticky buckets are stable and spread.
        #expect(TrafficPolicy.bucket("customer-17") == TrafficPolicy.bucket("customer-17"))
        #expect(Set((0..<1000).map { TrafficPolicy.bucket("k\($0)") }).count > 90)
    }
}

/// A small HTTP server on a loopback port, standing in for a model server Loom does not run.
final class Upstream: Sendable {
    let hits = Mutex<[String: Int]>([:])
    let bodies = Mutex<[String]>([])
    /// Webhook calls received: signature, event, body.
    let hooks = Mutex<[(signature: String, event: String, body: String)]>([])

    func count(_ path: String) -> Int { hits.withLock { $0[path] ?? 0 } }

    /// Runs the upstream while `body` runs; `body` gets its base URL.
    func run<T: Sendable>(_ body: @escaping @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/score") { request, context in
            let text = String(buffer: try await request.body.collect(upTo: 1 << 20))
            self.hits.withLock { $0["/score", default: 0] += 1 }
            self.bodies.withLock { $0.append(text) }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"predictions": ["upstream"]}"#)))
        }
        router.post("/mirror") { _, _ in
            self.hits.withLock { $0["/mirror", default: 0] += 1 }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"predictions": ["mirror"]}"#)))
        }
        router.post("/slow") { _, _ in
            self.hits.withLock { $0["/slow", default: 0] += 1 }
            try await Task.sleep(for: .milliseconds(400))
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"predictions": ["slow"]}"#)))
        }
        // A webhook receiver that refuses its first call.
        router.post("/hook") { request, context in
            let text = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let n = self.hits.withLock { h in
                h["/hook", default: 0] += 1
                return h["/hook"]!
            }
            self.hooks.withLock { $0.append((request.headers[HTTPField.Name("loom-signature")!] ?? "", request.headers[HTTPField.Name("loom-event")!] ?? "", text)) }
            return Response(status: n == 1 ? .serviceUnavailable : .noContent)
        }
        router.post("/fail") { _, _ in
            Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: #"{"error": "boom"}"#)))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: TestStore.logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await app.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw LoomError.internalError("the upstream did not start") }
            let result = try await body("http://127.0.0.1:\(port)")
            group.cancelAll()
            return result
        }
    }
}

@Suite("Endpoints")
struct EndpointTests {
    /// Registers `churn` version 1 (logistic) and 2 (gradient-boosted trees), trained on a
    /// small table: tenure and monthly (numbers), plan (text), churned (0/1: monthly above 37).
    static func registerModels(_ tracking: TrackingService, folder: URL) async throws {
        var lines = ["tenure,plan,monthly,churned"]
        for i in 0..<300 {
            let tenure = i % 60
            let plan = ["basic", "plus", "pro"][i % 3]
            let monthly = 20 + Double(i % 7) * 5
            let churned = monthly > 37 ? 1 : 0
            lines.append("\(tenure),\(plan),\(monthly),\(churned)")
        }
        let file = folder.appendingPathComponent("churn.csv")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        for family in [ModelFamily.logistic, .gbdt] {
            var request = TrainingRequest(data: .path(file.path), options: TrainingOptions(family: family, target: "churned"))
            request.registerAs = "churn"
            _ = try await tracking.trainModel(request)
        }
    }

    /// An answer of an endpoint: status, JSON body (empty when not an object), headers.
    struct Reply: @unchecked Sendable {
        var code: HTTPResponse.Status
        var answer: [String: Any]
        var headers: HTTPFields
        var deployment: String? { headers[EndpointTests.deploymentHeader] }
    }

    /// `port`: over a new connection of AsyncHTTPClient to that port (where a connection that
    /// carries only invocations is served by the invocation relay), not the test client.
    static func invoke(_ client: any TestClientProtocol, _ endpoint: String, _ body: String, headers: HTTPFields = [:], port: Int? = nil) async throws -> Reply {
        var h = headers
        h[.contentType] = "application/json"
        if let port {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/endpoints/\(endpoint)/invocations")
            request.method = .POST
            for field in h { request.headers.add(name: field.name.rawName, value: field.value) }
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            var fields = HTTPFields()
            for (name, value) in response.headers { if let n = HTTPField.Name(name) { fields.append(HTTPField(name: n, value: value)) } }
            let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
            return Reply(code: HTTPResponse.Status(code: Int(response.status.code)), answer: object, headers: fields)
        }
        return try await client.execute(uri: "/endpoints/\(endpoint)/invocations", method: .post, headers: h, body: ByteBuffer(string: body)) { response in
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
            return Reply(code: response.status, answer: object, headers: response.headers)
        }
    }

    static let deploymentHeader = HTTPField.Name("loom-deployment")!

    /// A counter's value in Prometheus text (0 when absent).
    static func counter(_ text: String, _ series: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) } ?? 0
    }
    static let correlationHeader = HTTPField.Name("loom-correlation-id")!

    @Test("native deployments score every input format, check signatures, and follow the traffic map", arguments: TestBackend.available)
    func nativeScoringAndTraffic(_ backend: TestBackend) async throws {
        try await withTestApp(backend) { client, services, _ in try await Self.nativeScenario(client, services) }
    }

    static func nativeScenario(_ client: any TestClientProtocol, _ services: ServerServices) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-ep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try await Self.registerModels(services.tracking, folder: folder)
        try? FileManager.default.removeItem(at: folder)
        try await services.tracking.setAlias(name: "churn", alias: "champion", version: "1")

        var (status, body) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "churn", "description": "churn scores"}"#)
        #expect(status == .created && body["scoring_uri"] as? String == "/endpoints/churn/invocations")
        (status, body) = try await client.json(.post, "/api/v1/endpoints/churn/deployments", body: #"{"name": "blue", "model": "models:/churn@champion"}"#)
        #expect(status == .created && body["model_version"] as? String == "churn/1" && body["traffic"] as? Int == 0 && body["ready"] as? Bool == true)
        (status, body) = try await client.json(.post, "/api/v1/endpoints/churn/deployments", body: #"{"name": "green", "model": "models:/churn/2"}"#)
        #expect(status == .created && body["model_version"] as? String == "churn/2")

        // No live traffic yet: 503, but the header reaches a deployment directly.
        var r = try await Self.invoke(client, "churn", #"{"dataframe_records": [{"tenure": 3, "plan": "basic", "monthly": 20}]}"#)
        #expect(r.code == .notFound && (r.answer["message"] as? String)?.contains("no deployment with live traffic") == true)
        r = try await Self.invoke(
            client, "churn", #"{"dataframe_records": [{"tenure": 3, "plan": "basic", "monthly": 20}]}"#, headers: [Self.deploymentHeader: "green"])
        #expect(r.code == .ok && r.deployment == "green" && (r.answer["predictions"] as? [Int])?.count == 1)
        #expect(r.headers[HTTPField.Name("loom-correlation-id")!]?.isEmpty == false)

        (status, body) = try await client.json(.put, "/api/v1/endpoints/churn/traffic", body: #"{"traffic": {"blue": 100}}"#)
        #expect(status == .ok && body["traffic"] as? [String: Int] == ["blue": 100])

        // Every format scores the same rows the same way.
        let bodies = [
            #"{"dataframe_split": {"columns": ["tenure", "plan", "monthly"], "data": [[3, "basic", 20], [50, "pro", 50], [40, "plus", 25]]}}"#,
            #"{"dataframe_records": [{"tenure": 3, "plan": "basic", "monthly": 20}, {"tenure": 50, "plan": "pro", "monthly": 50}, {"tenure": 40, "plan": "plus", "monthly": 25}]}"#,
            #"{"instances": [{"tenure": 3, "plan": "basic", "monthly": 20}, {"tenure": 50, "plan": "pro", "monthly": 50}, {"tenure": 40, "plan": "plus", "monthly": 25}]}"#,
            #"{"inputs": {"tenure": [3, 50, 40], "plan": ["basic", "pro", "plus"], "monthly": [20, 50, 25]}}"#,
        ]
        var seen: [[Int]] = []
        for b in bodies {
            r = try await Self.invoke(client, "churn", b)
            #expect(r.code == .ok && r.deployment == "blue", "\(b): \(r.answer)")
            seen.append(try #require(r.answer["predictions"] as? [Int]))
        }
        #expect(Set(seen.map { $0.description }).count == 1)
        #expect(seen[0] == [0, 1, 0], "the model learned the rule: \(seen[0])")
        // The same rows, scored by the model in process, agree.
        let model = try await services.tracking.loadModel("models:/churn/1")
        let frame = try NativeRuntime(model: model).frame(try ScoringInputTests.table(bodies[0]))
        #expect(try model.predict(frame).labels.map(Int.init) == seen[0])

        // Wrong shapes and types: 400 naming the field; nothing else changes.
        for (bad, says) in [
            (#"{"dataframe_records": [{"tenure": 3, "plan": "basic"}]}"#, "missing input column monthly"),
            (#"{"dataframe_records": [{"tenure": "three", "plan": "basic", "monthly": 20}]}"#, "Column tenure, row 0: expected a number"),
            (#"{"dataframe_records": [{"tenure": 3, "plan": ["a"], "monthly": 20}]}"#, "Column plan, row 0"),
            (#"{"instances": [[3, "basic"]]}"#, "Row 0 has 2 values; the model takes 3"),
            (#"{"dataframe_records": []}"#, "no rows"),
            (#"{"dataframe_split": {"columns": ["tenure"], "data": [[1, 2]]}}"#, "data[0] has 2 values"),
            ("not json", "Malformed JSON"),
        ] {
            r = try await Self.invoke(client, "churn", bad)
            #expect(r.code == .badRequest, "\(bad)")
            #expect((r.answer["message"] as? String)?.contains(says) == true, "\(bad): \(r.answer)")
        }
        #expect(try await Self.invoke(client, "nope", bodies[0]).code == .notFound)
        #expect(try await Self.invoke(client, "churn", bodies[0], headers: [Self.deploymentHeader: "ghost"]).code == .notFound)

        // Bad traffic maps are refused whole; the map stays as it was.
        for bad in [
            #"{"traffic": {"blue": 90, "green": 20}}"#, #"{"traffic": {"blue": 50, "ghost": 50}}"#, #"{"traffic": {"blue": 99.5, "green": 0.5}}"#,
            #"{"mirror": {"green": 10, "blue": 5}}"#, #"{"mirror": {"green": 60}}"#, #"{"mirror": {"blue": 10}}"#, #"{}"#,
        ] {
            (status, body) = try await client.json(.put, "/api/v1/endpoints/churn/traffic", body: bad)
            #expect(status == .badRequest, "\(bad): \(body)")
        }
        #expect(try await services.store.endpoint(name: "churn", workspace: "default")?.traffic == ["blue": 100])
        // A deployment with live traffic cannot be deleted; one without can.
        (status, body) = try await client.json(.delete, "/api/v1/endpoints/churn/deployments/blue")
        #expect(status == .badRequest && (body["message"] as? String)?.contains("set it to 0") == true)

        // A 50/50 split sends requests to both.
        (status, _) = try await client.json(.put, "/api/v1/endpoints/churn/traffic", body: #"{"traffic": {"blue": 50, "green": 50}}"#)
        #expect(status == .ok)
        var answered: [String: Int] = [:]
        for _ in 0..<60 {
            r = try await Self.invoke(client, "churn", bodies[1])
            #expect(r.code == .ok)
            answered[r.deployment ?? "?", default: 0] += 1
        }
        #expect(Set(answered.keys) == ["blue", "green"] && answered.values.allSatisfy { $0 >= 10 }, "\(answered)")

        // Sticky routing: one caller, one deployment.
        (status, _) = try await client.json(.patch, "/api/v1/endpoints/churn", body: #"{"sticky_header": "X-Customer"}"#)
        #expect(status == .ok)
        for customer in ["ann", "bob", "cy"] {
            var got: Set<String> = []
            for _ in 0..<8 {
                got.insert(try await Self.invoke(client, "churn", bodies[1], headers: [HTTPField.Name("x-customer")!: customer]).deployment ?? "?")
            }
            #expect(got.count == 1, "\(customer): \(got)")
        }

        // Oversized bodies: 413.
        (status, _) = try await client.json(.patch, "/api/v1/endpoints/churn", body: #"{"max_body_bytes": 100}"#)
        #expect(status == .ok)
        #expect(try await Self.invoke(client, "churn", bodies[1]).code == .contentTooLarge)

        // The deployment is a node of the lineage graph, downstream of its model version.
        let edges = try await services.store.lineageEdges(of: "deployment:churn/blue", direction: .upstream, workspace: "default")
        #expect(edges.map(\.source) == ["model:churn/1"] && edges.first?.relation == "deployed")

        // Listing and detail.
        (status, body) = try await client.json(.get, "/api/v1/endpoints/churn")
        let deployments = try #require(body["deployments"] as? [[String: Any]])
        #expect(deployments.map { $0["name"] as? String } == ["blue", "green"] && deployments.map { $0["traffic"] as? Int } == [50, 50])
        (status, body) = try await client.json(.get, "/api/v1/endpoints")
        #expect((body["items"] as? [[String: Any]])?.count == 1)
        (status, _) = try await client.json(.delete, "/api/v1/endpoints/churn")
        #expect(status == .noContent)
        #expect(try await Self.invoke(client, "churn", bodies[1]).code == .notFound)
    }

    /// Run twice: into the router, and over HTTP where the invocation fast path answers.
    @Test("external deployments: forwarding, mirroring, timeouts, load shedding, keys", arguments: [false, true])
    func externalMirrorAndLimits(_ live: Bool) async throws {
        let upstream = Upstream()
        try await upstream.run { base in
            try await withTestApp(.sqlite, live: live) { client, services, _ in
                let port = live ? client.port : nil
                var (status, body) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "ext"}"#)
                #expect(status == .created)
                for (name, path) in [("live", "/score"), ("shadow", "/mirror"), ("slow", "/slow"), ("broken", "/fail")] {
                    (status, body) = try await client.json(
                        .post, "/api/v1/endpoints/ext/deployments", body: #"{"name": "\#(name)", "runtime": "external", "url": "\#(base)\#(path)"}"#)
                    #expect(status == .created, "\(body)")
                }
                (status, body) = try await client.json(
                    .post, "/api/v1/endpoints/ext/deployments", body: #"{"name": "bad", "runtime": "external", "url": "file:///etc/passwd"}"#)
                #expect(status == .badRequest)
                (status, body) = try await client.json(.put, "/api/v1/endpoints/ext/traffic", body: #"{"traffic": {"live": 100}, "mirror": {"shadow": 50}}"#)
                #expect(status == .ok)

                // Every answer comes from the live deployment; about half are copied to the mirror.
                for i in 0..<40 {
                    let r = try await Self.invoke(client, "ext", #"{"instances": [[\#(i)]]}"#, port: port)
                    #expect(r.code == .ok && r.deployment == "live" && (r.answer["predictions"] as? [String]) == ["upstream"])
                }
                #expect(upstream.count("/score") == 40)
                #expect(upstream.bodies.withLock { $0.last } == #"{"instances": [[39]]}"#, "the body goes as it came")
                var mirrored = 0
                for _ in 0..<100 {
                    mirrored = upstream.count("/mirror")
                    if mirrored >= 5 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect((5...35).contains(mirrored), "mirrored \(mirrored) of 40")
                // Requests aimed at a deployment are not mirrored.
                try await Task.sleep(for: .milliseconds(200))
                let before = upstream.count("/mirror")
                for _ in 0..<20 {
                    let r = try await Self.invoke(client, "ext", "{}", headers: [Self.deploymentHeader: "live"], port: port)
                    #expect(r.code == .ok && r.deployment == "live")
                }
                try await Task.sleep(for: .milliseconds(200))
                #expect(upstream.count("/mirror") == before)

                // An upstream's own error comes back as it is; a slow one times out with 504.
                var r = try await Self.invoke(client, "ext", "{}", headers: [Self.deploymentHeader: "broken"], port: port)
                #expect(r.code == .internalServerError && r.answer["error"] as? String == "boom")
                (status, _) = try await client.json(.patch, "/api/v1/endpoints/ext", body: #"{"timeout_ms": 200}"#)
                #expect(status == .ok)
                r = try await Self.invoke(client, "ext", "{}", headers: [Self.deploymentHeader: "slow"], port: port)
                #expect(r.code == .gatewayTimeout && (r.answer["message"] as? String)?.contains("did not answer within 200 ms") == true)

                // Past the concurrency limit, requests are shed with 429 rather than queued.
                (status, _) = try await client.json(.patch, "/api/v1/endpoints/ext", body: #"{"concurrency_limit": 2, "timeout_ms": 5000}"#)
                #expect(status == .ok)
                let codes = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for _ in 0..<6 {
                        group.addTask {
                            guard live, let port else { return try await Self.invoke(client, "ext", "{}", headers: [Self.deploymentHeader: "slow"], port: port).code }
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/endpoints/ext/invocations")
                            request.method = .POST
                            request.headers.add(name: "loom-deployment", value: "slow")
                            request.body = .bytes(ByteBuffer(string: "{}"))
                            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            return HTTPResponse.Status(code: Int(response.status.code))
                        }
                    }
                    var all: [HTTPResponse.Status] = []
                    for try await c in group { all.append(c) }
                    return all
                }
                #expect(codes.filter { $0 == .ok }.count == 2 && codes.filter { $0 == .tooManyRequests }.count == 4, "\(codes)")

                // Key auth: the endpoint's own key, shown once.
                (status, body) = try await client.json(.patch, "/api/v1/endpoints/ext", body: #"{"auth": "key", "concurrency_limit": null}"#)
                let key = try #require(body["key"] as? String)
                #expect(key.hasPrefix("loomep_"))
                #expect(try await Self.invoke(client, "ext", "{}", port: port).code == .unauthorized)
                #expect(try await Self.invoke(client, "ext", "{}", headers: [.authorization: "Bearer loomep_wrong"], port: port).code == .unauthorized)
                #expect(try await Self.invoke(client, "ext", "{}", headers: [.authorization: "Bearer \(key)"], port: port).code == .ok)
                #expect(try await Self.invoke(client, "ext", "{}", headers: [.authorization: "bearer \(key)"], port: port).code == .ok, "the scheme is case-insensitive")
                (status, body) = try await client.json(.get, "/api/v1/endpoints/ext")
                #expect(body["key"] == nil && body["auth"] as? String == "key")

                // The same answers whichever path takes them: an unreachable upstream is a 502
                // with the correlation id; a body over the limit a 413; a bad correlation id a 400.
                (status, _) = try await client.json(
                    .post, "/api/v1/endpoints/ext/deployments", body: #"{"name": "gone", "runtime": "external", "url": "http://127.0.0.1:9/x"}"#)
                #expect(status == .created)
                let auth: HTTPFields = [.authorization: "Bearer \(key)"]
                r = try await Self.invoke(client, "ext", "{}", headers: auth + [Self.deploymentHeader: "gone", Self.correlationHeader: "c-502"], port: port)
                #expect(r.code == .badGateway && r.headers[Self.correlationHeader] == "c-502", "\(r.answer)")
                #expect((r.answer["message"] as? String)?.contains("could not be reached") == true)
                (status, _) = try await client.json(.patch, "/api/v1/endpoints/ext", body: #"{"max_body_bytes": 64}"#)
                #expect(status == .ok)
                r = try await Self.invoke(client, "ext", String(repeating: " ", count: 100) + "{}", headers: auth, port: port)
                #expect(r.code == .contentTooLarge)
                r = try await Self.invoke(client, "ext", "{}", headers: auth + [Self.correlationHeader: "not ok"], port: port)
                #expect(r.code == .badRequest)
                r = try await Self.invoke(client, "ext", "{}", headers: auth + [Self.correlationHeader: "c-ok"], port: port)
                #expect(r.code == .ok && r.deployment == "live" && r.headers[Self.correlationHeader] == "c-ok")
                // Counted under the route's name either way; over HTTP, the fast path answered.
                let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                #expect(metrics.contains(#"route="/endpoints/{name}/invocations""#))
                if live {
                    // New connections carrying only invocations: the relay read them from the bytes.
                    let relayed = metrics.split(separator: "\n").first { $0.hasPrefix(#"loom_endpoint_fast_path_total{via="relay"}"#) }
                    #expect(relayed.flatMap { Double($0.split(separator: " ").last!) }.map { $0 >= 60 } == true, "\(relayed ?? "no relay count")")
                    #expect(r.headers[.date]?.hasSuffix(" GMT") == true && r.headers[.server] == "loom")
                    // On the test client's connection (API calls first), the decoder-side fast path.
                    let before = Self.counter(metrics, #"loom_endpoint_fast_path_total{via="decoder"}"#)
                    r = try await Self.invoke(client, "ext", "{}", headers: auth)
                    #expect(r.code == .ok && r.deployment == "live")
                    let after = try await client.execute(uri: "/metrics", method: .get) { Self.counter(String(buffer: $0.body), #"loom_endpoint_fast_path_total{via="decoder"}"#) }
                    #expect(after == before + 1)
                }
                _ = services
            }
        }
    }

    /// Every JSON line of every file under `folder`, walking down.
    static func jsonLines(_ artifacts: any ArtifactStore, under folder: String) async throws -> [(path: String, object: [String: Any])] {
        var out: [(String, [String: Any])] = []
        var stack = [folder]
        while let next = stack.popLast() {
            for entry in try await artifacts.list(try ArtifactPath(next)) {
                if entry.isDirectory {
                    stack.append(entry.path)
                    continue
                }
                let bytes = try await artifacts.readAll(try ArtifactPath(entry.path), limit: 64 << 20)
                for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(entry.path): \(line)")
                    out.append((entry.path, object))
                }
            }
        }
        return out
    }

    @Test("sampled requests and responses are collected as hourly JSON Lines, mirrored answers too, and labels join them", arguments: [TestBackend.sqlite])
    func requestCollection(_ backend: TestBackend) async throws {
        let upstream = Upstream()
        try await upstream.run { base in
            try await withTestApp(backend) { client, services, _ in
                let collector = try #require(services.serving.collector)
                let writing = Task { await collector.run() }
                var (status, _) = try await client.json(.post, "/api/v1/endpoints", body: #"{"name": "col", "sampling_rate": 1}"#)
                #expect(status == .created)
                for (name, path) in [("live", "/score"), ("shadow", "/mirror"), ("broken", "/fail")] {
                    (status, _) = try await client.json(
                        .post, "/api/v1/endpoints/col/deployments", body: #"{"name": "\#(name)", "runtime": "external", "url": "\#(base)\#(path)"}"#)
                    #expect(status == .created)
                }
                (status, _) = try await client.json(.put, "/api/v1/endpoints/col/traffic", body: #"{"traffic": {"live": 100}, "mirror": {"shadow": 50}}"#)
                #expect(status == .ok)
                for i in 0..<30 {
                    let r = try await Self.invoke(
                        client, "col", #"{"instances": [[\#(i)]]}"#, headers: [HTTPField.Name("loom-correlation-id")!: "req-\(i)"])
                    #expect(r.code == .ok && r.headers[HTTPField.Name("loom-correlation-id")!] == "req-\(i)")
                }
                let failed = try await Self.invoke(client, "col", "{}", headers: [Self.deploymentHeader: "broken", HTTPField.Name("loom-correlation-id")!: "req-broken"])
                #expect(failed.code == .internalServerError)
                // A bad correlation id is refused before anything runs.
                #expect(try await Self.invoke(client, "col", "{}", headers: [HTTPField.Name("loom-correlation-id")!: "no spaces"]).code == .badRequest)

                // Labels, later, by correlation id; malformed ones are refused whole.
                let labels = (0..<10).map { #"{"correlation_id": "req-\#($0)", "label": \#($0 % 2)}"# }.joined(separator: ",")
                var body: [String: Any]
                (status, body) = try await client.json(.post, "/api/v1/endpoints/col/labels", body: #"{"labels": [\#(labels)]}"#)
                #expect(status == .created && body["written"] as? Int == 10)
                for bad in [#"{"labels": []}"#, #"{"labels": [{"correlation_id": "a b", "label": 1}]}"#, #"{"labels": [{"correlation_id": "x"}]}"#, #"{}"#] {
                    (status, _) = try await client.json(.post, "/api/v1/endpoints/col/labels", body: bad)
                    #expect(status == .badRequest, "\(bad)")
                }
                (status, _) = try await client.json(.post, "/api/v1/endpoints/nope/labels", body: #"{"labels": [{"correlation_id": "x", "label": 1}]}"#)
                #expect(status == .notFound)

                // Mirrored copies finish on their own time; then everything queued is written.
                for _ in 0..<100 where upstream.count("/mirror") < 5 { try await Task.sleep(for: .milliseconds(20)) }
                try await Task.sleep(for: .milliseconds(200))
                let mirrored = upstream.count("/mirror")
                collector.finish()
                await writing.value

                let lines = try await Self.jsonLines(services.tracking.artifacts, under: "collected/default/col")
                let requests = lines.filter { !$0.path.contains("/labels/") }
                let live = requests.filter { $0.object["mirrored"] as? Bool == false }
                #expect(live.count == 31, "\(live.count)")
                #expect(Set(live.map { $0.object["correlation_id"] as? String ?? "" }) == Set((0..<30).map { "req-\($0)" } + ["req-broken"]))
                let first = try #require(live.first { $0.object["correlation_id"] as? String == "req-7" }?.object)
                #expect((first["request"] as? [String: Any])?["instances"] as? [[Int]] == [[7]])
                #expect((first["response"] as? [String: Any])?["predictions"] as? [String] == ["upstream"])
                #expect(first["deployment"] as? String == "live" && first["status"] as? Int == 200 && (first["latency_ms"] as? Double ?? -1) >= 0)
                let broken = try #require(live.first { $0.object["correlation_id"] as? String == "req-broken" }?.object)
                #expect(broken["status"] as? Int == 500 && broken["deployment"] as? String == "broken")
                let copies = requests.filter { $0.object["mirrored"] as? Bool == true }
                #expect(copies.count == mirrored && mirrored > 0 && copies.allSatisfy { $0.object["deployment"] as? String == "shadow" })
                // Partitioned by hour: collected/WORKSPACE/ENDPOINT/YYYY/MM/DD/HH/FILE.
                #expect(requests.allSatisfy { $0.path.split(separator: "/").count == 8 && $0.path.hasSuffix(".jsonl") }, "\(requests.first?.path ?? "")")
                let posted = lines.filter { $0.path.contains("/labels/") }
                #expect(posted.count == 10 && posted.allSatisfy { ($0.object["correlation_id"] as? String)?.hasPrefix("req-") == true && $0.object["label"] is Int })
                #expect(collector.totals.dropped == 0)

                // Monitoring reads these files back as a table: one row per scored row (the 30
                // answered requests of one row each; not the 500, not the mirrored copies).
                var window = CollectedWindow(options: .init(keepPredictions: true))
                for file in Set(requests.map(\.path)).sorted() {
                    let bytes = try await services.tracking.artifacts.readAll(try ArtifactPath(file), limit: 64 << 20)
                    bytes.withUnsafeBytes { window.add(lines: $0) }
                }
                #expect(window.used == 30 && window.malformed == 0 && window.rowCount == 30)
                let table = window.table()
                #expect(table.names == ["input_0", "prediction"])
                guard case .numbers(let inputs) = table.column("input_0"), case .texts(let predictions) = table.column("prediction") else {
                    Issue.record("input_0 numbers, prediction text: \(table.columns)")
                    return
                }
                #expect(inputs.sorted == (0..<30).map(Double.init) && predictions.levels == ["upstream"] && predictions.counts == [30])
                // The labels posted above join the answers by correlation id.
                let truth = Dictionary(
                    posted.compactMap { p -> (String, JSONValue)? in
                        guard let id = p.object["correlation_id"] as? String, let label = p.object["label"] as? Int else { return nil }
                        return (id, .number(Double(label), raw: nil))
                    }, uniquingKeysWith: { $1 })
                let performance = try #require(ModelPerformance.compute(window.predictions, labels: truth))
                #expect(performance.rows == 10 && performance.unlabeled == 20 && performance.task == .classification)
            }
        }
    }

    @Test("a collector that falls behind drops samples and counts them, and writes what it kept")
    func collectorDropsWhenFull() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loom-collect-\(UUID().uuidString)")
        let artifacts = try LocalArtifactStore(root: folder.path)
        struct Sink: CollectionSink {
            let artifacts: any ArtifactStore
            func store(_ path: String, _ bytes: ByteBuffer) async throws {
                _ = try await artifacts.write(try ArtifactPath(path), bytes: bytes.readableBytesView)
            }
        }
        let collector = RequestCollector(sink: Sink(artifacts: artifacts), capacity: 8, maxQueuedBytes: 1 << 20, logger: TestStore.logger)
        func record(_ i: Int, size: Int = 10) -> CollectedRecord {
            CollectedRecord(
                workspace: "default", endpoint: "e", deployment: "d", correlationID: "c\(i)", time: 1_790_000_000_000, latencyNanos: 1000, status: 200,
                mirrored: false, request: ByteBuffer(string: "{\"x\": \"\(String(repeating: "a", count: size))\"}"), response: ByteBuffer(string: "not json\nat all"))
        }
        // Nothing is written yet (the writer is not running): past 8 queued, samples are dropped.
        let kept = (0..<100).filter { collector.offer(record($0)) }
        #expect(kept == Array(0..<8) && collector.totals == (8, 92))
        let writing = Task { await collector.run() }
        collector.finish()
        await writing.value
        let lines = try await Self.jsonLines(artifacts, under: "collected/default/e")
        #expect(lines.map { $0.object["correlation_id"] as? String } == (0..<8).map { "c\($0)" })
        #expect(lines.first?.object["response_text"] as? String == "not json\nat all", "a body that is not JSON is kept as text")
        #expect(lines.first?.path.hasPrefix("collected/default/e/2026/09/21/") == true, "\(lines.first?.path ?? "")")

        // The byte bound holds too: one large body fills it.
        let small = RequestCollector(sink: Sink(artifacts: artifacts), capacity: 1000, maxQueuedBytes: 4096, logger: TestStore.logger)
        #expect(small.offer(record(0, size: 3000)) && !small.offer(record(1, size: 3000)) && small.totals == (1, 1))
        try? FileManager.default.removeItem(at: folder)
    }
}
