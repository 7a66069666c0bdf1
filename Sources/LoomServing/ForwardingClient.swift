import LoomCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The HTTP/1.1 client that forwards scoring requests to model servers: keep-alive connections
/// pooled per upstream and event loop, each request written and its answer read on one loop, one
/// promise per request. AsyncHTTPClient does far more (redirects, TLS, HTTP/2, proxies) and costs
/// about 250 µs of CPU per request for it (BENCHMARKS.md); forwarding on a 2-core machine at
/// 5,000 requests/s cannot afford that. Plain HTTP only: `https://` URLs go through
/// AsyncHTTPClient.
///
/// `post(on:)` forwards without leaving the given loop: the invocation fast path calls it on the
/// loop of the connection the request came in on, so the request, the upstream connection and the
/// answer share one thread.
public final class ForwardingClient: Sendable {
    struct Upstream: Hashable, Sendable {
        let host: String
        let port: Int
    }

    /// Idle connections are pooled per upstream and per event loop.
    struct PoolKey: Hashable, Sendable {
        let upstream: Upstream
        let loop: ObjectIdentifier
    }

    struct Answer: Sendable {
        var status: Int
        var contentType: String?
        var body: ByteBuffer
    }

    let group: any EventLoopGroup
    let idle = Mutex<[PoolKey: [any Channel]]>([:])
    /// Idle connections kept per upstream and loop.
    let keep: Int
    static let answerLimit = 64 << 20

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, keep: Int = 64) {
        self.group = group
        self.keep = keep
    }

    /// POSTs `body` to `http://host:port/path` on one of the group's loops.
    func post(
        host: String, port: Int, path: String, headers: [(String, String)], body: ByteBuffer, timeout: Duration
    ) async throws -> Answer {
        try await post(on: group.next(), host: host, port: port, path: path, headers: headers, body: body, timeout: timeout).get()
    }

    /// POSTs `body` to `http://host:port/path` over a connection of `loop`; the future completes
    /// on `loop`.
    func post(
        on loop: any EventLoop, host: String, port: Int, path: String, headers: [(String, String)], body: ByteBuffer, timeout: Duration
    ) -> EventLoopFuture<Answer> {
        let key = PoolKey(upstream: Upstream(host: host, port: port), loop: ObjectIdentifier(loop))
        var fields = HTTPHeaders()
        fields.add(name: "host", value: port == 80 ? host : "\(host):\(port)")
        fields.add(name: "content-length", value: String(body.readableBytes))
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: fields)
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let deadline = NIODeadline.now() + .nanoseconds(nanos)
        // A pooled connection may have been closed by the upstream meanwhile: then once more on
        // a new one (nothing reached the model server).
        if let channel = take(key) {
            return send(channel, head, body, deadline, key).flatMapError { error in
                guard case ForwardingError.closedBeforeAnswer = error else { return loop.makeFailedFuture(error) }
                return self.connect(key, on: loop).flatMap { self.send($0, head, body, deadline, key) }
            }
        }
        return connect(key, on: loop).flatMap { self.send($0, head, body, deadline, key) }
    }

    func take(_ key: PoolKey) -> (any Channel)? {
        idle.withLock { pool in
            while var list = pool[key], let channel = list.popLast() {
                pool[key] = list
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    func giveBack(_ channel: any Channel, _ key: PoolKey) {
        let kept = idle.withLock { pool -> Bool in
            guard (pool[key]?.count ?? 0) < keep else { return false }
            pool[key, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    func connect(_ key: PoolKey, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ForwardHandler())
                }
            }
            .connect(host: key.upstream.host, port: key.upstream.port)
            .flatMapErrorThrowing { error in throw ForwardingError.unreachable("\(error)") }
    }

    func send(_ channel: any Channel, _ head: HTTPRequestHead, _ body: ByteBuffer, _ deadline: NIODeadline, _ key: PoolKey) -> EventLoopFuture<Answer> {
        let promise = channel.eventLoop.makePromise(of: ForwardHandler.Response.self)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            promise.fail(ForwardingError.timedOut)
            channel.close(promise: nil)
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in promise.fail(ForwardingError.closedBeforeAnswer) }
        channel.writeAndFlush(ForwardHandler.Request(head: head, body: body, promise: promise), promise: written)
        return promise.futureResult.map { response in
            timer.cancel()
            if response.keepAlive { self.giveBack(channel, key) } else { channel.close(promise: nil) }
            return Answer(status: Int(response.head.status.code), contentType: response.head.headers.first(name: "content-type"), body: response.body)
        }.flatMapErrorThrowing { error in
            timer.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    public func shutdown() {
        let all = idle.withLock { pool in
            let channels = pool.values.flatMap { $0 }
            pool = [:]
            return channels
        }
        for c in all { c.close(promise: nil) }
    }
}

enum ForwardingError: Error {
    case closedBeforeAnswer
    case timedOut
    case unreachable(String)
    case tooLarge
}

/// One request at a time on a connection: writes it, gathers the answer, completes the promise.
final class ForwardHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Request
    typealias OutboundOut = HTTPClientRequestPart

    struct Request {
        let head: HTTPRequestHead
        let body: ByteBuffer
        let promise: EventLoopPromise<Response>
    }

    struct Response: Sendable {
        let head: HTTPResponseHead
        let body: ByteBuffer
        let keepAlive: Bool
    }

    var pending: EventLoopPromise<Response>?
    var head: HTTPResponseHead?
    var body = ByteBuffer()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending = request.promise
        head = nil
        body.clear()
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var chunk):
            guard body.readableBytes + chunk.readableBytes <= ForwardingClient.answerLimit else {
                pending?.fail(ForwardingError.tooLarge)
                pending = nil
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let h = head, let p = pending else { return }
            pending = nil
            p.succeed(Response(head: h, body: body, keepAlive: h.isKeepAlive))
            body = ByteBuffer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let p = pending {
            pending = nil
            p.fail(head == nil ? ForwardingError.closedBeforeAnswer : ForwardingError.unreachable("the connection closed mid-answer"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let p = pending {
            pending = nil
            p.fail(head == nil ? ForwardingError.closedBeforeAnswer : ForwardingError.unreachable("\(error)"))
        }
        context.close(promise: nil)
    }
}
