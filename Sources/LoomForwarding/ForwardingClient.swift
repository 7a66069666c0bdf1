import LoomCore
import NIOCore
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

    package struct Answer: Sendable {
        package var status: Int
        package var contentType: String?
        package var body: ByteBuffer
        /// The upstream's `retry-after` (or `retry-after-ms`, as `ms:N`), when it sent one.
        package var retryAfter: String?
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

    /// POSTs `body` to `http://host:port/path` over a connection of the loop the caller runs on
    /// (a task on a loop's executor: the answer comes back without a hop to another thread), or
    /// of one of the group's loops.
    package func post(
        host: String, port: Int, path: String, headers: [(String, String)], body: ByteBuffer, timeout: Duration
    ) async throws -> Answer {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        return try await post(on: loop, host: host, port: port, path: path, headers: headers, body: body, timeout: timeout).get()
    }

    /// POSTs `body` to `http://host:port/path` over a connection of `loop`; the future completes
    /// on `loop`.
    package func post(
        on loop: any EventLoop, host: String, port: Int, path: String, headers: [(String, String)], body: ByteBuffer, timeout: Duration
    ) -> EventLoopFuture<Answer> {
        let key = PoolKey(upstream: Upstream(host: host, port: port), loop: ObjectIdentifier(loop))
        let head: ByteBuffer
        do {
            head = try Self.requestHead(host: host, port: port, path: path, headers: headers, bodyLength: body.readableBytes)
        } catch {
            return loop.makeFailedFuture(error)
        }
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

    /// The request line and header fields of a forwarded POST, as bytes. Names and values with
    /// control bytes are refused: nothing a client sent can add a header line upstream.
    static func requestHead(host: String, port: Int, path: String, headers: [(String, String)], bodyLength: Int) throws -> ByteBuffer {
        func clean(_ text: String) -> Bool { !text.utf8.contains { $0 < 32 && $0 != 9 || $0 == 127 } }
        guard clean(path), !path.utf8.contains(32), clean(host) else { throw ForwardingError.unreachable("the upstream URL has control bytes or spaces") }
        var out = ByteBuffer()
        out.reserveCapacity(160 + path.utf8.count + headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        out.writeStaticString("POST ")
        out.writeString(path)
        out.writeStaticString(" HTTP/1.1\r\nhost: ")
        out.writeString(host)
        if port != 80 {
            out.writeStaticString(":")
            out.writeString(String(port))
        }
        out.writeStaticString("\r\ncontent-length: ")
        out.writeString(String(bodyLength))
        out.writeStaticString("\r\n")
        for (name, value) in headers {
            guard clean(name), clean(value), !name.isEmpty, !name.utf8.contains(58) else {
                throw LoomError(.badRequest, "Header \(name) cannot be forwarded: it has control bytes")
            }
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        return out
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
                    try channel.pipeline.syncOperations.addHandler(ForwardHandler())
                }
            }
            .connect(host: key.upstream.host, port: key.upstream.port)
            .flatMapErrorThrowing { error in throw ForwardingError.unreachable("\(error)") }
    }

    func send(_ channel: any Channel, _ head: ByteBuffer, _ body: ByteBuffer, _ deadline: NIODeadline, _ key: PoolKey) -> EventLoopFuture<Answer> {
        let promise = channel.eventLoop.makePromise(of: ForwardHandler.Response.self)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            promise.fail(ForwardingError.timedOut)
            channel.close(promise: nil)
        }
        channel.writeAndFlush(ForwardHandler.Request(head: head, body: body, promise: promise), promise: nil)
        return promise.futureResult.map { response in
            timer.cancel()
            if response.keepAlive { self.giveBack(channel, key) } else { channel.close(promise: nil) }
            return Answer(status: response.status, contentType: response.contentType, body: response.body, retryAfter: response.retryAfter)
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

package enum ForwardingError: Error {
    case closedBeforeAnswer
    case timedOut
    case unreachable(String)
    case tooLarge
}

/// One request at a time on a connection: writes its bytes, reads the answer with
/// `ResponseReader`, completes the promise. No HTTP codec in the pipeline: the request is written
/// as prepared bytes and the answer is framed by its `Content-Length`, chunks, or the close.
final class ForwardHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request {
        let head: ByteBuffer
        let body: ByteBuffer
        let promise: EventLoopPromise<Response>
    }

    typealias Response = ResponseReader.Response

    var pending: EventLoopPromise<Response>?
    var reader = ResponseReader(limit: ForwardingClient.answerLimit)

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending = request.promise
        reader = ResponseReader(limit: ForwardingClient.answerLimit)
        if request.body.readableBytes <= 16 << 10 {
            // Small bodies go out with the head in one buffer: one write, one segment.
            var out = request.head
            out.writeImmutableBuffer(request.body)
            context.write(wrapOutboundOut(out), promise: promise)
        } else {
            context.write(wrapOutboundOut(request.head), promise: nil)
            context.write(wrapOutboundOut(request.body), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard let p = pending else {
            // Bytes nobody asked for: the connection is out of step; drop it.
            context.close(promise: nil)
            return
        }
        do {
            if let response = try reader.feed(&bytes) {
                pending = nil
                // Anything after the answer is out of step too.
                if bytes.readableBytes > 0 { context.close(promise: nil) }
                p.succeed(Response(status: response.status, contentType: response.contentType, retryAfter: response.retryAfter, body: response.body,
                                   keepAlive: response.keepAlive && bytes.readableBytes == 0))
            }
        } catch {
            pending = nil
            p.fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let p = pending {
            pending = nil
            if let response = reader.closed() {
                p.succeed(response)
            } else {
                p.fail(reader.started ? ForwardingError.unreachable("the connection closed mid-answer") : ForwardingError.closedBeforeAnswer)
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let p = pending {
            pending = nil
            p.fail(reader.started ? ForwardingError.unreachable("\(error)") : ForwardingError.closedBeforeAnswer)
        }
        context.close(promise: nil)
    }
}
