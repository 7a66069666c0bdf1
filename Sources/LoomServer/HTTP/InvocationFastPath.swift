import Foundation
import HTTPTypes
import LoomCore
import LoomGenAI
import Logging
import LoomServing
import LoomTracking
import NIOCore
import Metrics
import NIOHTTPTypes

/// The invocation fast path: a channel handler in front of the router that answers
/// `POST /endpoints/NAME/invocations` itself when every deployment the request can go to forwards
/// over plain HTTP (external and process runtimes). The request, the upstream connection and the
/// answer then stay on the event loop of the connection the request came in on: no task per
/// request, no hop to the cooperative pool and back. That is what brings the routing overhead at
/// 5,000 requests/s under a third of a millisecond (BENCHMARKS.md).
///
/// Anything it does not take, it passes to the router untouched, which then answers exactly as
/// without it: unknown endpoints, native deployments, the server's own auth (an endpoint with its
/// own key is checked here), a bad `loom-correlation-id`, `Expect: 100-continue`, and a body
/// over the endpoint's limit (handed over with what was read of it).
///
/// Ordering on a connection is kept: while the router answers a request, later ones go to the
/// router too; while this handler answers one, later (pipelined) parts wait here.
final class InvocationFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What every connection's handler shares.
    struct Shared: Sendable {
        let router: EndpointRouter
        let authEnabled: Bool
        let serverName: String
        /// The LLM gateway, whose whole-answer calls the handler answers on the loop too.
        var gateway: Gateway? = nil
        /// Requests the fast paths answered (the rest went to the router): read from the bytes by
        /// the relay, or after the HTTP decoder by `InvocationFastPath`.
        let relayed = Counter(label: "loom_endpoint_fast_path_total", dimensions: [("via", "relay")])
        let answered = Counter(label: "loom_endpoint_fast_path_total", dimensions: [("via", "decoder")])
        /// Gateway calls answered on the connection's loop (the rest went to the router): read
        /// from the bytes by the relay, or after the HTTP decoder.
        let gatewayRelayed = Counter(label: "loom_gateway_fast_path_total", dimensions: [("via", "relay")])
        let gatewayAnswered = Counter(label: "loom_gateway_fast_path_total", dimensions: [("via", "decoder")])
        /// MLflow's `log-metric` and `log-batch`, answered on the connection's loop too.
        var tracking: TrackingService? = nil
        /// Where the fast paths log what the router's error middleware logs.
        var logger: Logger? = nil
        let trackingRelayed = Counter(label: "loom_tracking_fast_path_total", dimensions: [("via", "relay")])
        let trackingAnswered = Counter(label: "loom_tracking_fast_path_total", dimensions: [("via", "decoder")])
    }

    /// A request this handler answers, while its body comes in.
    struct Taken {
        /// What answers it.
        enum Work {
            case endpoint(Route)
            case gateway(GatewayWork)
            case tracking(TrackingCall.Kind)
        }

        let head: HTTPRequest
        let work: Work
        /// The largest body taken; a longer one goes to the router, which refuses it.
        let limit: Int
        let started: ContinuousClock.Instant
        var body: ByteBuffer
        var parts: [HTTPRequestPart]
    }

    enum State {
        case idle
        case reading(Taken)
        case answering
    }

    /// The route label of the request metrics, as the router names the route.
    static let route = "/endpoints/{name}/invocations"

    let shared: Shared
    var state = State.idle
    /// Requests handed to the router whose answers have not ended yet.
    var routed = 0
    /// Parts that came in while this handler was answering (pipelined requests).
    var waiting: [HTTPRequestPart] = []
    /// A quiesce event held back until the request in hand is answered.
    var heldQuiesce: Any?
    /// A read asked for while a request was in hand.
    var heldRead = false
    var date = HTTPDateCache()
    /// Runs this connection's gateway and tracking calls on its loop (made at the first).
    var gatewayExecutor: EventLoopTaskExecutor?

    init(_ shared: Shared) {
        self.shared = shared
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(context, unwrapInboundIn(data))
    }

    func receive(_ context: ChannelHandlerContext, _ part: HTTPRequestPart) {
        switch state {
        case .answering:
            waiting.append(part)
        case .reading(var taken):
            state = .answering  // while `taken` is changed here, so that its body is not copied
            switch part {
            case .head:
                // Cannot happen (the decoder ends a request before the next head); hand both over.
                handOver(context, taken)
                receive(context, part)
            case .body(let chunk):
                if taken.body.readableBytes + chunk.readableBytes > taken.limit {
                    // The router answers 413 as it always does.
                    taken.parts.append(part)
                    handOver(context, taken)
                    return
                }
                var chunk = chunk
                taken.body.writeBuffer(&chunk)
                taken.parts.append(part)
                state = .reading(taken)
            case .end:
                state = .answering
                switch taken.work {
                case .endpoint(let route): answer(context, taken, route)
                case .gateway(let work): answer(context, taken.body, work)
                case .tracking(let kind):
                    guard let call = taken.body.withUnsafeReadableBytes({ TrackingCall(kind, body: $0) }) else {
                        // Not plain enough: the router reads it and words any error.
                        handOver(context, taken)
                        context.fireChannelRead(wrapInboundOut(part))
                        return
                    }
                    answer(context, taken, call)
                }
            }
        case .idle:
            if case .head(let head) = part, routed == 0, let taken = take(head) {
                state = .reading(taken)
                return
            }
            if case .head = part { routed += 1 }
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// Gives a request to the router with the parts read so far.
    func handOver(_ context: ChannelHandlerContext, _ taken: Taken) {
        state = .idle
        routed += 1
        context.fireChannelRead(wrapInboundOut(.head(taken.head)))
        for part in taken.parts { context.fireChannelRead(wrapInboundOut(part)) }
    }

    /// The request, when this handler answers it.
    func take(_ head: HTTPRequest) -> Taken? {
        guard head.method == .post, head.headerFields[.expect] == nil else { return nil }
        let fields = head.headerFields
        if let kind = TrackingCall.kind(head.path, shared, header: { fields[$0] }) {
            return Taken(head: head, work: .tracking(kind), limit: TrackingCall.maxBodyBytes, started: .now, body: ByteBuffer(), parts: [])
        }
        if let gateway = shared.gateway, let work = Self.gatewayWork(head, shared, gateway) {
            return Taken(head: head, work: .gateway(work), limit: GatewayController.maxBodyBytes, started: .now, body: ByteBuffer(), parts: [])
        }
        guard let route = Self.route(head.path, shared, header: { fields[$0] }) else { return nil }
        return Taken(head: head, work: .endpoint(route), limit: route.live.endpoint.maxBodyBytes, started: .now, body: ByteBuffer(), parts: [])
    }

    /// Where a fast-path invocation goes.
    struct Route {
        let live: LiveEndpoint
        let target: String?
        let stickyKey: String?
        let correlation: String
    }

    /// The route of `POST path` when the fast paths take it: a live endpoint whose deployments
    /// answer on loops, no auth or the endpoint's own key, a good correlation id. `header` looks
    /// a header up by name. Nil: the router answers.
    static func route(_ path: String?, _ shared: Shared, header: (HTTPField.Name) -> String?) -> Route? {
        guard let name = endpointName(path) else { return nil }
        let workspace = header(AuthMiddleware.loomWorkspace) ?? header(AuthMiddleware.mlflowWorkspace) ?? ""
        guard let live = shared.router.endpoint(workspace: workspace.isEmpty ? Workspace.defaultName : workspace, name: name) else { return nil }
        let endpoint = live.endpoint
        if endpoint.auth == .key {
            guard InvocationController.keyMatches(header(.authorization), endpoint) else { return nil }
        } else if shared.authEnabled {
            return nil
        }
        let target = header(InvocationController.deploymentHeader)
        guard live.answersOnLoop(target: target) else { return nil }
        let correlation: String
        if let given = header(InvocationController.correlationHeader) {
            guard ServingService.isCorrelationID(given) else { return nil }
            correlation = given
        } else {
            correlation = Identifiers.newHexID()
        }
        let sticky = endpoint.stickyHeader.flatMap { HTTPField.Name($0) }.flatMap { header($0) }
        return Route(live: live, target: target, stickyKey: sticky, correlation: correlation)
    }

    /// NAME in `/endpoints/NAME/invocations` (a query is allowed; NAME has no `/` or `%`).
    static func endpointName(_ path: String?) -> String? {
        guard var path = path?.utf8[...] else { return nil }
        if let q = path.firstIndex(of: UInt8(ascii: "?")) { path = path[..<q] }
        let prefix = "/endpoints/".utf8, suffix = "/invocations".utf8
        guard path.starts(with: prefix), path.count > prefix.count + suffix.count, path.reversed().starts(with: suffix.reversed()) else { return nil }
        let name = path.dropFirst(prefix.count).dropLast(suffix.count)
        guard !name.contains(UInt8(ascii: "/")), !name.contains(UInt8(ascii: "%")) else { return nil }
        return String(decoding: name, as: UTF8.self)
    }

    func answer(_ context: ChannelHandlerContext, _ taken: Taken, _ route: Route) {
        let request = ServingRequest(body: taken.body, contentType: taken.head.headerFields[.contentType], correlationID: route.correlation)
        let loop = context.eventLoop
        route.live.invoke(request, target: route.target, stickyKey: route.stickyKey, on: loop) { result in self.respond(context, taken, route, result) }
    }

    func respond(_ context: ChannelHandlerContext, _ taken: Taken, _ route: Route, _ result: Result<RoutedAnswer, any Error>) {
        let outcome = Outcome(result)
        var response = HTTPResponse(status: HTTPResponse.Status(code: outcome.status))
        response.headerFields[.contentType] = outcome.contentType
        response.headerFields[InvocationController.deploymentHeader] = outcome.deployment
        let body = outcome.body
        response.headerFields[InvocationController.correlationHeader] = route.correlation
        RequestMetricsMiddleware.record(method: .post, route: Self.route, status: response.status.code, start: taken.started)
        shared.answered.increment()
        write(context, response, body, close: taken.head.headerFields[.connection]?.lowercased() == "close")
    }

    /// Runs a tracking call in a task on this connection's loop, then writes its answer.
    func answer(_ context: ChannelHandlerContext, _ taken: Taken, _ call: TrackingCall) {
        guard let tracking = shared.tracking else { return }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let close = taken.head.headerFields[.connection]?.lowercased() == "close"
        let started = taken.started
        call.start(tracking, on: taskExecutor(context.eventLoop), logger: shared.logger) { status, body in
            let (handler, context) = bound.value
            RequestMetricsMiddleware.record(method: .post, route: call.kind.path, status: status, start: started)
            handler.shared.trackingAnswered.increment()
            var response = HTTPResponse(status: HTTPResponse.Status(code: status))
            response.headerFields[.contentType] = "application/json"
            handler.write(context, response, body, close: close)
        }
    }

    /// Writes a whole answer, then takes the next request.
    func write(_ context: ChannelHandlerContext, _ response: HTTPResponse, _ body: ByteBuffer, close: Bool) {
        var response = response
        response.headerFields[.contentLength] = String(body.readableBytes)
        response.headerFields[.server] = shared.serverName
        response.headerFields[.date] = date.now()
        if close { response.headerFields[.connection] = "close" }
        guard context.channel.isActive else { return }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        end(context, close: close)
    }

    /// Ends the answer in hand, then takes the requests that came in meanwhile.
    func end(_ context: ChannelHandlerContext, close: Bool) {
        if close {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        state = .idle
        if let event = heldQuiesce {
            heldQuiesce = nil
            waiting = []
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Requests that came in meanwhile, in order; then reading goes on.
        let parts = waiting
        waiting = []
        for (i, part) in parts.enumerated() {
            receive(context, part)
            if case .answering = state {
                waiting.append(contentsOf: parts[(i + 1)...])
                break
            }
        }
        // What was handed on is delivered to the router at the end of a read.
        if !parts.isEmpty { context.fireChannelReadComplete() }
        if !isAnswering, heldRead {
            heldRead = false
            context.read()
        }
    }

    /// No more reading from the socket while a request is in hand (pipelined requests wait in
    /// the kernel, not here).
    func read(context: ChannelHandlerContext) {
        if isAnswering {
            heldRead = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), routed > 0 { routed -= 1 }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A graceful shutdown closes idle connections: not one this handler is answering on.
        if event is ChannelShouldQuiesceEvent, !isIdle {
            heldQuiesce = event
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    var isAnswering: Bool {
        if case .answering = state { return true }
        return false
    }

    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }
}

/// What a fast path answers: the deployment's answer, or the error as the router renders it.
struct Outcome {
    let status: Int
    let contentType: String
    let deployment: String?
    let body: ByteBuffer

    init(status: Int, contentType: String, deployment: String? = nil, body: ByteBuffer) {
        (self.status, self.contentType, self.deployment, self.body) = (status, contentType, deployment, body)
    }

    init(_ result: Result<RoutedAnswer, any Error>) {
        switch result {
        case .success(let routed):
            (status, contentType, deployment, body) = (routed.answer.status, routed.answer.contentType, routed.deployment, routed.answer.body)
        case .failure(let error):
            let e = error as? LoomError ?? LoomError.internalError("Internal server error")
            (status, contentType, deployment, body) = (e.code.httpStatusCode, "application/json", nil, ByteBuffer(string: e.jsonBody))
        }
    }
}

/// The `Date` header (RFC 9110: `Sun, 06 Nov 1994 08:49:37 GMT`), made again when the second
/// changes; one per connection handler.
struct HTTPDateCache {
    var second = -1
    var text = ""

    mutating func now() -> String {
        var now = time(nil)
        if now == second { return text }
        var t = tm()
        gmtime_r(&now, &t)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        text = "\(days[Int(t.tm_wday)]), \(two(t.tm_mday)) \(months[Int(t.tm_mon)]) \(t.tm_year + 1900) \(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) GMT"
        second = now
        return text
    }
}
