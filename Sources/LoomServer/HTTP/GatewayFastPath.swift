import Foundation
import HTTPTypes
import LoomCore
import LoomGenAI
import Metrics
import NIOCore
import NIOHTTPTypes

/// The gateway's fast path: `POST /v1/chat/completions` and `/v1/embeddings` answered by the
/// invocation fast path's handler, in a task that runs on the connection's event loop
/// (`EventLoopTaskExecutor`). The call is the same `Gateway.chat` / `embeddings` the router's
/// `GatewayController` runs (one implementation of routes, policies, limits, cache, usage and
/// traces); what it saves is Hummingbird's hops from the loop to a task and back, and the hop
/// to another loop for the provider's connection.
///
/// It takes a call when the server's auth is off or the call carries a gateway key (`lgk_...`)
/// that the gateway knows, and no workspace header names another workspace; everything else
/// (a Loom user's token with auth on, an unknown key, `Expect: 100-continue`, a body over the
/// limit) goes to the router, which answers exactly as without it.
extension InvocationFastPath {
    /// A gateway call in hand.
    struct GatewayWork {
        let kind: Kind
        let caller: GatewayCaller
        let started: ContinuousClock.Instant
        /// The client asked to close the connection after the answer.
        let close: Bool

        enum Kind {
            case chat, embeddings

            var route: String { self == .chat ? "/v1/chat/completions" : "/v1/embeddings" }
        }
    }

    /// The gateway call `head` starts, when the fast path takes it.
    static func gatewayWork(_ head: HTTPRequest, _ shared: Shared, _ gateway: Gateway) -> GatewayWork? {
        let fields = head.headerFields
        return gatewayWork(path: head.path, close: fields[.connection]?.lowercased() == "close", shared, gateway, header: { fields[$0] })
    }

    /// The gateway call to `path` (`header` looks a header up by name), when a fast path takes it.
    static func gatewayWork(path: String?, close: Bool, _ shared: Shared, _ gateway: Gateway, header: (HTTPField.Name) -> String?) -> GatewayWork? {
        let kind: GatewayWork.Kind
        switch path {
        case "/v1/chat/completions": kind = .chat
        case "/v1/embeddings": kind = .embeddings
        default: return nil
        }
        if let workspace = header(AuthMiddleware.loomWorkspace) ?? header(AuthMiddleware.mlflowWorkspace), !workspace.isEmpty, workspace != Workspace.defaultName {
            return nil
        }
        let traceParent = header(GatewayController.traceParent)
        func work(_ caller: GatewayCaller) -> GatewayWork { GatewayWork(kind: kind, caller: caller, started: .now, close: close) }
        if let token = header(.authorization).flatMap(AuthMiddleware.bearerToken), token.hasPrefix(GatewayKeys.prefix) {
            guard let key = gateway.key(secret: String(token)) else { return nil }
            return work(GatewayCaller(workspace: key.workspace, key: key, traceParent: traceParent, afterAnswer: GatewayAfterAnswer()))
        }
        guard !shared.authEnabled else { return nil }
        return work(GatewayCaller(workspace: Workspace.defaultName, traceParent: traceParent, afterAnswer: GatewayAfterAnswer()))
    }

    /// Runs a gateway call in a task on `loop`'s executor and hands its answer to `answered` on
    /// the loop: the caller writes it, whole or as a stream.
    static func runGateway(
        _ gateway: Gateway, _ work: GatewayWork, _ bytes: [UInt8], executor: EventLoopTaskExecutor, on loop: any EventLoop,
        answered: @escaping @Sendable (Result<GatewayAnswer, GatewayError>) async -> Void
    ) {
        Task(executorPreference: executor) {
            let result: Result<GatewayAnswer, GatewayError>
            do throws(GatewayError) {
                switch work.kind {
                case .chat: result = .success(try await gateway.chat(bytes, caller: work.caller))
                case .embeddings: result = .success(try await gateway.embeddings(bytes, caller: work.caller))
                }
            } catch {
                result = .failure(error)
            }
            await answered(result)
        }
    }

    /// Runs the call in a task on this connection's loop, then writes its answer: a whole body,
    /// or a stream relayed as it comes (each write awaited, so a slow client slows the provider's
    /// stream down, and one that leaves cancels it).
    func answer(_ context: ChannelHandlerContext, _ body: ByteBuffer, _ work: GatewayWork) {
        guard let gateway = shared.gateway else { return }
        let loop = context.eventLoop
        let executor = taskExecutor(loop)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        let bytes = Array(body.readableBytesView)
        Self.runGateway(gateway, work, bytes, executor: executor, on: loop) { result in
            switch result {
            case .success(.stream(let stream, let headers)):
                await Self.relay(
                    stream, on: loop,
                    start: { bound.value.handler.startStream(bound.value.context, work, headers) },
                    part: { bound.value.handler.streamPart(bound.value.context, $0) },
                    end: { bound.value.handler.endStream(bound.value.context, work, relayed: $0) })
                // A streamed call leaves nothing for after its answer; run anyway, so nothing is left behind.
                work.caller.afterAnswer?.run()
            default:
                Self.onLoop(loop) { bound.value.handler.respond(bound.value.context, work, result) }
            }
        }
    }

    /// Runs `body` now when the caller is on `loop` (a call's task runs there: its answer is
    /// written before the task ends), else as a task on it.
    static func onLoop(_ loop: any EventLoop, _ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    /// Relays a provider's stream to a client: `start` writes the head (false: the client has
    /// gone), `part` each part (its future fails when the client has gone), `end` ends the answer
    /// (false: cut short); each runs on `loop`. Each write is awaited, so a slow client slows the
    /// provider's stream down, and one that leaves cancels it.
    static func relay(
        _ stream: GatewayStream, on loop: any EventLoop, start: @escaping @Sendable () -> Bool,
        part: @escaping @Sendable (ByteBuffer) -> EventLoopFuture<Void>, end: @escaping @Sendable (Bool) -> Void
    ) async {
        guard (try? await loop.submit(start).get()) == true else {
            // The client left before the answer began: the provider's stream is let go.
            try? await stream.relay { _ in throw ChannelError.ioOnClosedChannel }
            return
        }
        let relayed: Bool
        do {
            try await stream.relay { buffer in try await loop.flatSubmit { part(buffer) }.get() }
            relayed = true
        } catch {
            relayed = false
        }
        loop.execute { end(relayed) }
    }

    /// This connection's task executor (made at its first gateway call).
    func taskExecutor(_ loop: any EventLoop) -> EventLoopTaskExecutor {
        if let executor = gatewayExecutor { return executor }
        let executor = EventLoopTaskExecutor(loop)
        gatewayExecutor = executor
        return executor
    }

    func respond(_ context: ChannelHandlerContext, _ work: GatewayWork, _ result: Result<GatewayAnswer, GatewayError>) {
        let status: Int
        let body: ByteBuffer
        var headers: [(String, String)]
        switch result {
        case .success(.complete(let b, let h)): (status, body, headers) = (200, ByteBuffer(bytes: b), h)
        case .success(.stream): (status, body, headers) = (500, ByteBuffer(), [])  // answered by `startStream`
        case .failure(let e): (status, body, headers) = (e.status, ByteBuffer(bytes: e.body), e.headers)
        }
        var response = HTTPResponse(status: HTTPResponse.Status(code: status))
        response.headerFields[.contentType] = "application/json"
        for (name, value) in headers { if let n = HTTPField.Name(name) { response.headerFields[n] = value } }
        write(context, response, body, close: work.close)
        // What does not change the answer runs once it is on its way.
        RequestMetricsMiddleware.record(method: .post, route: work.kind.route, status: status, start: work.started)
        shared.gatewayAnswered.increment()
        work.caller.afterAnswer?.run()
    }

    /// Writes a stream's head; false when the client has gone.
    func startStream(_ context: ChannelHandlerContext, _ work: GatewayWork, _ headers: [(String, String)]) -> Bool {
        RequestMetricsMiddleware.record(method: .post, route: work.kind.route, status: 200, start: work.started)
        shared.gatewayAnswered.increment()
        guard context.channel.isActive else { return false }
        var response = HTTPResponse(status: .ok)
        response.headerFields[.contentType] = "text/event-stream; charset=utf-8"
        response.headerFields[.cacheControl] = "no-cache"
        for (name, value) in headers { if let n = HTTPField.Name(name) { response.headerFields[n] = value } }
        response.headerFields[.server] = shared.serverName
        response.headerFields[.date] = date.now()
        context.writeAndFlush(wrapOutboundOut(.head(response)), promise: nil)
        return true
    }

    /// One part of a stream, written and flushed; the future fails when the client has gone.
    func streamPart(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard context.channel.isActive else { return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        return context.writeAndFlush(wrapOutboundOut(.body(buffer)))
    }

    /// The end of a stream: the connection closes when the stream was cut short (the client
    /// must not take a truncated answer for a whole one).
    func endStream(_ context: ChannelHandlerContext, _ work: GatewayWork, relayed: Bool) {
        guard context.channel.isActive else { return }
        end(context, close: !relayed || work.close)
    }
}
