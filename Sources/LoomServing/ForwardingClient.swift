import LoomCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The HTTP/1.1 client that forwards scoring requests to model servers: keep-alive connections
/// pooled per upstream and event loop, each request written and its answer read on the
/// connection's loop, one promise per request. AsyncHTTPClient does far more (redirects, TLS,
/// HTTP/2, proxies) and costs about 250 µs of CPU per request for it (BENCHMARKS.md); forwarding
/// on a 2-core machine at 5,000 requests/s cannot afford that. Plain HTTP only: `https://` URLs
/// go through AsyncHTTPClient.
public final class ForwardingClient: Sendable {
    struct Upstream: Hashable, Sendable {
        let host: String
        let port: Int
    }

    struct Answer: Sendable {
        var status: Int
        var contentType: String?
        var body: ByteBuffer
    }

    let group: any EventLoopGroup
    let idle = Mutex<[Upstream: [any Channel]]>([:])
    /// Idle connections kept per upstream.
    let keep: Int
    static let answerLimit = 64 << 20

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, keep: Int = 64) {
        self.group = group
        self.keep = keep
    }

    /// POSTs `body` to `http://host:port/path`; the answer's status, content type and body.
    func post(
        host: String, port: Int, path: String, headers: [(String, String)], body: ByteBuffer, timeout: Duration
    ) async throws -> Answer {
        let upstream = Upstream(host: host, port: port)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "host", value: port == 80 ? host : "\(host):\(port)")
        head.headers.add(name: "content-length", value: String(body.readableBytes))
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        // A pooled connection may have been closed by the upstream meanwhile: then once more on
        // a new one (nothing reached the model server).
        if let channel = take(upstream) {
            do {
                return try await send(channel, head, body, timeout, upstream)
            } catch ForwardingError.closedBeforeAnswer {}
        }
        let channel = try await connect(upstream)
        return try await send(channel, head, body, timeout, upstream)
    }

    func take(_ upstream: Upstream) -> (any Channel)? {
        idle.withLock { pool in
            while var list = pool[upstream], let channel = list.popLast() {
                pool[upstream] = list
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    func giveBack(_ channel: any Channel, _ upstream: Upstream) {
        let kept = idle.withLock { pool -> Bool in
            guard (pool[upstream]?.count ?? 0) < keep else { return false }
            pool[upstream, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    func connect(_ upstream: Upstream) async throws -> any Channel {
        do {
            return try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ForwardHandler())
                    }
                }
                .connect(host: upstream.host, port: upstream.port).get()
        } catch {
            throw ForwardingError.unreachable("\(error)")
        }
    }

    func send(_ channel: any Channel, _ head: HTTPRequestHead, _ body: ByteBuffer, _ timeout: Duration, _ upstream: Upstream) async throws -> Answer {
        let promise = channel.eventLoop.makePromise(of: ForwardHandler.Response.self)
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
            promise.fail(ForwardingError.timedOut)
            channel.close(promise: nil)
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in promise.fail(ForwardingError.closedBeforeAnswer) }
        channel.writeAndFlush(ForwardHandler.Request(head: head, body: body, promise: promise), promise: written)
        do {
            let response = try await promise.futureResult.get()
            timer.cancel()
            if response.keepAlive { giveBack(channel, upstream) } else { channel.close(promise: nil) }
            return Answer(status: Int(response.head.status.code), contentType: response.head.headers.first(name: "content-type"), body: response.body)
        } catch {
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
