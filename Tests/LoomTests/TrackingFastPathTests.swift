import Foundation
import LoomCore
import LoomTesting
import NIOCore
import Testing

@testable import LoomServer

/// What the relay takes of MLflow's `log-metric` and `log-batch` (docs/tracking.md, "Logging
/// metrics fast"): only whole, plainly framed requests with bodies the fast reader accepts; the
/// rest goes to the HTTP decoder and the router.
@Suite("Tracking fast path: what the relay takes")
struct TrackingFastPathTests {
    static let runID = "0123456789abcdef0123456789abcdef"

    static func request(_ path: String, _ body: String, headers: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(headers)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    static func parse(_ text: String, _ shared: InvocationFastPath.Shared) -> InvocationRelay.Parsed {
        InvocationRelay.parse(ByteBuffer(string: text), shared)
    }

    static func taken(_ parsed: InvocationRelay.Parsed) -> (TrackingCall, Int)? {
        guard case .request(let request, let length) = parsed, case .tracking(let call) = request.work else { return nil }
        return (call, length)
    }

    static func isNotMine(_ parsed: InvocationRelay.Parsed) -> Bool {
        if case .notMine = parsed { return true }
        return false
    }

    static func needsMore(_ parsed: InvocationRelay.Parsed) -> Bool {
        if case .needMore = parsed { return true }
        return false
    }

    @Test("plain calls are taken whole; partial ones wait; anything else goes to the router")
    func relayTakes() async throws {
        try await withTestApp { _, services, _ in
            let shared = InvocationFastPath.Shared(
                router: services.serving.router, authEnabled: false, serverName: "loom", tracking: services.tracking)
            let metric = #"{"run_id": "\#(Self.runID)", "key": "acc", "value": 0.5, "timestamp": 7, "step": 2}"#
            let batch = #"{"run_id": "\#(Self.runID)", "metrics": [{"key": "a", "value": 1, "timestamp": 1}], "params": [{"key": "lr", "value": "0.1"}]}"#

            let one = Self.request(TrackingCall.metricPath, metric)
            let (call, length) = try #require(Self.taken(Self.parse(one + "GET / HTTP/1.1\r\n\r\n", shared)))
            #expect(length == one.utf8.count, "exactly the first request, not what follows it")
            #expect(call.kind == .metric && call.runID == Self.runID)
            guard case .metric(let m) = call.body else { Issue.record("not a metric"); return }
            #expect(m.key == "acc" && m.value == 0.5 && m.timestamp == 7 && m.step == 2)

            let (b, _) = try #require(Self.taken(Self.parse(Self.request(TrackingCall.batchPath, batch), shared)))
            guard case .batch(let body) = b.body else { Issue.record("not a batch"); return }
            #expect(body.metrics.count == 1 && body.params.map(\.key) == ["lr"])
            // The default workspace, named, is still taken.
            #expect(Self.taken(Self.parse(Self.request(TrackingCall.metricPath, metric, headers: "X-Loom-Workspace: default\r\n"), shared)) != nil)

            // Not complete yet: a head in pieces, a body cut short.
            #expect(Self.needsMore(Self.parse(String(one.prefix(20)), shared)))
            #expect(Self.needsMore(Self.parse(String(one.dropLast(5)), shared)))

            // The router's: bodies the fast reader declines, another workspace, other framings,
            // a query, another path.
            let cases = [
                Self.request(TrackingCall.metricPath, metric.replacingOccurrences(of: "\"acc\"", with: "\"\\u0061cc\"")),
                Self.request(TrackingCall.metricPath, "{not json"),
                Self.request(TrackingCall.metricPath, #"{"key": "acc", "value": 1, "timestamp": 1}"#),
                Self.request(TrackingCall.metricPath, metric, headers: "X-MLflow-Workspace: team-b\r\n"),
                Self.request(TrackingCall.metricPath, metric, headers: "Transfer-Encoding: chunked\r\n"),
                Self.request(TrackingCall.metricPath, metric, headers: "Expect: 100-continue\r\n"),
                Self.request(TrackingCall.metricPath + "?x=1", metric),
                Self.request(MLflowController.prefix + "/runs/log-parameter", metric),
                one.replacingOccurrences(of: "HTTP/1.1", with: "HTTP/1.0"),
            ]
            for text in cases {
                #expect(Self.isNotMine(Self.parse(text, shared)), "\(text.prefix(90))")
            }
            // A body over the router's limit is the router's (which answers 413), before it is read.
            let huge = "POST \(TrackingCall.metricPath) HTTP/1.1\r\nContent-Length: \(TrackingCall.maxBodyBytes + 1)\r\n\r\n{"
            #expect(Self.isNotMine(Self.parse(huge, shared)))

            // With the server's auth on, nothing is taken.
            let guarded = InvocationFastPath.Shared(
                router: services.serving.router, authEnabled: true, serverName: "loom", tracking: services.tracking)
            #expect(Self.isNotMine(Self.parse(one, guarded)))
        }
    }
}

/// What the relay takes of the gateway's calls (docs/gateway.md, "The fast path").
@Suite("Gateway fast path: what the relay takes")
struct GatewayRelayTests {
    static func gatewayWork(_ parsed: InvocationRelay.Parsed) -> InvocationFastPath.GatewayWork? {
        guard case .request(let request, _) = parsed, case .gateway(let work) = request.work else { return nil }
        return work
    }

    @Test("chat completions and embeddings are taken whole; unknown keys, other workspaces, doubled headers and large bodies are not")
    func relayTakesGatewayCalls() async throws {
        try await withTestApp { _, services, _ in
            let shared = InvocationFastPath.Shared(
                router: services.serving.router, authEnabled: false, serverName: "loom", gateway: services.gateway.gateway)
            let chat = #"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#
            let parse = { (text: String) in TrackingFastPathTests.parse(text, shared) }
            let one = TrackingFastPathTests.request("/v1/chat/completions", chat)
            let work = try #require(Self.gatewayWork(parse(one + "GET / HTTP/1.1\r\n\r\n")))
            #expect(work.kind == .chat && !work.close && work.caller.workspace == "default" && work.caller.key == nil)
            #expect(Self.gatewayWork(parse(TrackingFastPathTests.request("/v1/embeddings", #"{"model": "e", "input": "x"}"#)))?.kind == .embeddings)
            #expect(Self.gatewayWork(parse(TrackingFastPathTests.request("/v1/chat/completions", chat, headers: "Connection: close\r\n")))?.close == true)
            let traced = TrackingFastPathTests.request(
                "/v1/chat/completions", chat, headers: "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n")
            #expect(Self.gatewayWork(parse(traced))?.caller.traceID == "0af7651916cd43dd8448eb211c80319c")
            #expect(TrackingFastPathTests.needsMore(parse(String(one.dropLast(3)))))

            let cases = [
                TrackingFastPathTests.request("/v1/chat/completions", chat, headers: "Authorization: Bearer lgk_unknown\r\n"),
                TrackingFastPathTests.request("/v1/chat/completions", chat, headers: "X-Loom-Workspace: team-b\r\n"),
                TrackingFastPathTests.request("/v1/chat/completions", chat, headers: "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n"),
                TrackingFastPathTests.request("/v1/chat/completions", chat, headers: "Expect: 100-continue\r\n"),
                TrackingFastPathTests.request("/v1/chat/completions?x=1", chat),
                TrackingFastPathTests.request("/v1/models", chat),
                "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: \(InvocationRelay.gatewayBodyLimit + 1)\r\n\r\n{",
            ]
            for text in cases {
                #expect(TrackingFastPathTests.isNotMine(parse(text)), "\(text.prefix(120))")
            }
            // With the server's auth on, only calls with a gateway key the gateway knows.
            let guarded = InvocationFastPath.Shared(
                router: services.serving.router, authEnabled: true, serverName: "loom", gateway: services.gateway.gateway)
            #expect(TrackingFastPathTests.isNotMine(TrackingFastPathTests.parse(one, guarded)))
        }
    }

    @Test("bearer tokens: any case of the scheme, blanks trimmed")
    func bearer() {
        #expect(AuthMiddleware.bearerToken("Bearer lgk_abc") == "lgk_abc")
        #expect(AuthMiddleware.bearerToken("bearer \t lgk_abc  ") == "lgk_abc")
        #expect(AuthMiddleware.bearerToken("BEARER x") == "x")
        #expect(AuthMiddleware.bearerToken("Basic abc") == nil)
        #expect(AuthMiddleware.bearerToken("Bearer") == nil)
        #expect(AuthMiddleware.bearerToken("Bearer\u{0}x") == nil && AuthMiddleware.bearerToken("bearer@x") == nil, "only a space ends the scheme")
    }
}
