import LoomCore
import NIOCore
import NIOPosix
import Synchronization

/// The HTTP/1.1 client that forwards scoring requests to model servers: keep-alive connections
/// pooled per upstream and event loop, each request written and its answer read on one loop, one
/// completion closure per request. AsyncHTTPClient does far more (redirects, TLS, HTTP/2, proxies) and costs
/// about 250 µs of CPU per request for it (BENCHMARKS.md); forwarding on a 2-core machine at
/// 5,000 requests/s cannot afford that. Plain HTTP only: `https://` URLs go through
/// AsyncHTTPClient.
///
/// `post(on:to:...completion:)` forwards without leaving the given loop: the invocation fast path
/// calls it on the loop of the connection the request came in on, so the request, the upstream
/// connection and the answer share one thread. Upstream URLs are made ready once (`target`).
public final class ForwardingClient: Sendable {
    struct Upstream: Hashable, Sendable {
        let host: String
        let port: Int
    }

    /// Idle connections are pooled per upstream and per event loop.
    struct PoolKey: Hashable, Sendable {
        /// The upstream's number (`numbers`): two words to hash, not a host name.
        let upstream: Int
        let loop: ObjectIdentifier
    }

    /// An upstream URL made ready once: its pool number and the bytes every request to it starts
    /// with. Invocations keep one per deployment; a request to it builds only its length and
    /// header lines.
    package struct Target: Sendable {
        let upstream: Upstream
        let number: Int
        /// `POST PATH HTTP/1.1`, `host`, and the name of `content-length`.
        let prefix: ByteBuffer
    }

    package struct Answer: Sendable {
        package var status: Int
        package var contentType: String?
        package var body: ByteBuffer
        /// The upstream's `retry-after` (or `retry-after-ms`, as `ms:N`), when it sent one.
        package var retryAfter: String?
    }

    let group: any EventLoopGroup
    let idle = Mutex<[PoolKey: [Connection]]>([:])
    /// Each upstream's pool number, and the targets made so far (a URL is made ready once), also
    /// by URL text (nil: not plain HTTP).
    let made = Mutex<(numbers: [Upstream: Int], targets: [TargetKey: Target], urls: [String: Target?])>(([:], [:], [:]))

    struct TargetKey: Hashable, Sendable {
        let upstream: Upstream
        let path: String
    }
    /// Idle connections kept per upstream and loop.
    let keep: Int
    static let answerLimit = 64 << 20

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, keep: Int = 64) {
        self.group = group
        self.keep = keep
    }

    /// `http://host:port/path`, ready for requests (made once, then looked up). Hosts and paths
    /// with control bytes or spaces are refused.
    package func target(host: String, port: Int, path: String) throws -> Target {
        let upstream = Upstream(host: host, port: port)
        let key = TargetKey(upstream: upstream, path: path)
        if let known = made.withLock({ $0.targets[key] }) { return known }
        guard Self.clean(path), !path.utf8.contains(32), Self.clean(host), !host.utf8.contains(32) else {
            throw ForwardingError.unreachable("the upstream URL has control bytes or spaces")
        }
        var prefix = ByteBuffer()
        prefix.writeStaticString("POST ")
        prefix.writeString(path)
        prefix.writeStaticString(" HTTP/1.1\r\nhost: ")
        // An IPv6 literal is bracketed in `host`, as in the URL (RFC 9110 § 7.2).
        prefix.writeString(host.contains(":") ? "[" + host + "]" : host)
        if port != 80 {
            prefix.writeStaticString(":")
            prefix.writeString(String(port))
        }
        prefix.writeStaticString("\r\ncontent-length: ")
        return made.withLock { made in
            if let known = made.targets[key] { return known }
            let number = made.numbers[upstream] ?? made.numbers.count
            made.numbers[upstream] = number
            let target = Target(upstream: upstream, number: number, prefix: prefix)
            made.targets[key] = target
            return target
        }
    }

    /// `url` ready for requests when it is plain HTTP (`http://HOST[:PORT]/PATH[?QUERY]`, no user
    /// info, a port in 1...65535); nil for anything else (`https://` goes through
    /// AsyncHTTPClient). Made once per URL text, then looked up.
    package func target(url: String) -> Target? {
        if let known = made.withLock({ $0.urls[url] }) { return known }
        let target = PlainURL(url).flatMap { try? self.target(host: $0.host, port: $0.port, path: $0.path) }
        made.withLock { made in
            // URLs come from specs: a few. The bound only guards against surprises.
            if made.urls.count >= 1024 { made.urls.removeAll() }
            made.urls[url] = target
        }
        return target
    }

    /// POSTs `body` to `http://host:port/path` over a connection of the loop the caller runs on
    /// (a task on a loop's executor: the answer comes back without a hop to another thread), or
    /// of one of the group's loops.
    package func post(
        host: String, port: Int, path: String, headers: [(String, String)], body: ByteBuffer, timeout: Duration
    ) async throws -> Answer {
        try await post(to: target(host: host, port: port, path: path), headers: headers, body: body, timeout: timeout)
    }

    /// POSTs `body` to `target` over a connection of the loop the caller runs on, or of one of
    /// the group's loops. On a loop the request is sent at once and the answer resumes the
    /// caller: one continuation, no promise or future in between.
    package func post(to target: Target, headers: [(String, String)], body: ByteBuffer, timeout: Duration) async throws -> Answer {
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let loop = current ?? group.next()
        return try await withCheckedThrowingContinuation { continuation in
            if current != nil {
                post(on: loop, to: target, headers: headers, body: body, timeout: timeout) { continuation.resume(with: $0) }
            } else {
                loop.execute { self.post(on: loop, to: target, headers: headers, body: body, timeout: timeout) { continuation.resume(with: $0) } }
            }
        }
    }

    /// POSTs `body` to `target` over a connection of `loop`; the future completes on `loop`.
    package func post(on loop: any EventLoop, to target: Target, headers: [(String, String)], body: ByteBuffer, timeout: Duration) -> EventLoopFuture<Answer> {
        let promise = loop.makePromise(of: Answer.self)
        loop.executeHere {
            self.post(on: loop, to: target, headers: headers, body: body, timeout: timeout) { promise.completeWith($0) }
        }
        return promise.futureResult
    }

    /// What `post(on:...)` calls with the answer, on the loop it was given.
    package typealias Completion = (Result<Answer, any Error>) -> Void

    /// POSTs `body` to `target` over a connection of `loop` (the caller runs on it) and calls
    /// `completion` on `loop` once. No futures: a forwarded request costs one closure, not a
    /// chain of promises.
    package func post(
        on loop: any EventLoop, to target: Target, headers: [(String, String)], body: ByteBuffer, timeout: Duration, completion: @escaping Completion
    ) {
        loop.preconditionInEventLoop()
        let key = PoolKey(upstream: target.number, loop: ObjectIdentifier(loop))
        let head: ByteBuffer
        do {
            head = try Self.requestHead(target, headers: headers, body: body)
        } catch {
            completion(.failure(error))
            return
        }
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let deadline = NIODeadline.now() + .nanoseconds(nanos)
        // A pooled connection may have been closed by the upstream meanwhile: then once more on
        // a new one (nothing reached the model server).
        if let connection = take(key) {
            send(connection, head, body, deadline, key) { result in
                if case .failure(ForwardingError.closedBeforeAnswer) = result {
                    self.connectAndSend(target, key, on: loop, head, body, deadline, completion)
                } else {
                    completion(result)
                }
            }
            return
        }
        connectAndSend(target, key, on: loop, head, body, deadline, completion)
    }

    func connectAndSend(
        _ target: Target, _ key: PoolKey, on loop: any EventLoop, _ head: ByteBuffer, _ body: ByteBuffer, _ deadline: NIODeadline,
        _ completion: @escaping Completion
    ) {
        connect(target.upstream, on: loop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection): self.send(connection, head, body, deadline, key, completion)
            case .failure(let error): completion(.failure(error))
            }
        }
    }

    static func clean(_ text: String) -> Bool { !text.utf8.contains { $0 < 32 && $0 != 9 || $0 == 127 } }

    /// Bodies up to this size go out in one buffer with the head: one write, one segment.
    static let inlineBody = 16 << 10

    /// The request line and header fields of a forwarded POST, as bytes, followed by the body
    /// when it is small (`inlineBody`). Names and values with control bytes are refused: nothing
    /// a client sent can add a header line upstream.
    static func requestHead(_ target: Target, headers: [(String, String)], body: ByteBuffer) throws -> ByteBuffer {
        let inline = body.readableBytes <= inlineBody
        var out = target.prefix
        out.reserveCapacity(out.readableBytes + 24 + headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 } + (inline ? body.readableBytes : 0))
        out.writeString(String(body.readableBytes))
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
        if inline { out.writeImmutableBuffer(body) }
        return out
    }

    /// A kept-alive upstream connection and its handler (touched only on the connection's loop).
    struct Connection: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<ForwardHandler>
    }

    func take(_ key: PoolKey) -> Connection? {
        idle.withLock { pool in
            // Popped in place: a copy of the list would copy its storage at every request.
            while let connection = pool[key]?.popLast() {
                if connection.channel.isActive { return connection }
            }
            return nil
        }
    }

    func giveBack(_ connection: Connection, _ key: PoolKey) {
        let kept = idle.withLock { pool -> Bool in
            guard (pool[key]?.count ?? 0) < keep else { return false }
            pool[key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    func connect(_ upstream: Upstream, on loop: any EventLoop) -> EventLoopFuture<Connection> {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ForwardHandler())
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .flatMapThrowing { channel in
                Connection(channel: channel, handler: NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ForwardHandler.self), eventLoop: loop))
            }
            .flatMapErrorThrowing { error in throw ForwardingError.unreachable("\(error)") }
    }

    /// Sends one request on `connection` (on its loop) and calls `completion` with the answer;
    /// the connection goes back to the pool when the answer leaves it reusable.
    func send(_ connection: Connection, _ head: ByteBuffer, _ body: ByteBuffer, _ deadline: NIODeadline, _ key: PoolKey, _ completion: @escaping Completion) {
        connection.handler.value.send(head, body, deadline: deadline) { result in
            switch result {
            case .success(let response):
                if response.keepAlive { self.giveBack(connection, key) } else { connection.channel.close(promise: nil) }
                completion(.success(Answer(status: response.status, contentType: response.contentType, body: response.body, retryAfter: response.retryAfter)))
            case .failure(let error):
                connection.channel.close(promise: nil)
                completion(.failure(error))
            }
        }
    }

    public func shutdown() {
        let all = idle.withLock { pool in
            let channels = pool.values.flatMap { $0 }
            pool = [:]
            return channels
        }
        for c in all { c.channel.close(promise: nil) }
    }
}

package enum ForwardingError: Error {
    case closedBeforeAnswer
    case timedOut
    case unreachable(String)
    case tooLarge
}

/// One request at a time on a connection: writes its bytes, reads the answer with
/// `ResponseReader`, calls the request's completion. No HTTP codec in the pipeline: the request is
/// written as prepared bytes and the answer is framed by its `Content-Length`, chunks, or the close.
final class ForwardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Response = ResponseReader.Response
    typealias Completion = (Result<Response, any Error>) -> Void

    var context: ChannelHandlerContext?
    var pending: Completion?
    /// When the request in hand times out.
    var deadline = NIODeadline.distantFuture
    /// The connection's timer and when it fires. It is armed once and re-armed when it fires
    /// early for the request then in hand, not once per request: a keep-alive connection
    /// carrying thousands of requests a second sets a timer about once per timeout.
    var timer: NIOScheduledCallback?
    var timerAt = NIODeadline.distantFuture
    var reader = ResponseReader(limit: ForwardingClient.answerLimit)

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        disarm()
    }

    /// Writes a request; `completion` gets its answer, or the error that ended it.
    func send(_ head: ByteBuffer, _ body: ByteBuffer, deadline: NIODeadline, completion: @escaping Completion) {
        guard let context, context.channel.isActive else {
            completion(.failure(ForwardingError.closedBeforeAnswer))
            return
        }
        pending = completion
        reader = ResponseReader(limit: ForwardingClient.answerLimit)
        self.deadline = deadline
        if timer == nil || timerAt > deadline { arm(deadline) }
        if body.readableBytes <= ForwardingClient.inlineBody {
            // `head` has the body already.
            context.writeAndFlush(wrapOutboundOut(head), promise: nil)
        } else {
            context.write(wrapOutboundOut(head), promise: nil)
            context.writeAndFlush(wrapOutboundOut(body), promise: nil)
        }
    }

    func arm(_ at: NIODeadline) {
        disarm()
        guard let context else { return }
        timer = try? context.eventLoop.assumeIsolated().scheduleCallback(at: at, handler: Timeout(handler: self))
        timerAt = at
    }

    func disarm() {
        timer?.cancel()
        timer = nil
    }

    /// Ends the request in hand with `result`.
    func finish(_ result: Result<Response, any Error>) {
        guard let p = pending else { return }
        pending = nil
        p(result)
    }

    struct Timeout: NIOScheduledCallbackHandler {
        let handler: ForwardHandler

        func handleScheduledCallback(eventLoop: some EventLoop) {
            handler.timer = nil
            guard handler.pending != nil else { return }
            if NIODeadline.now() < handler.deadline {
                // Armed for an earlier request: now for this one.
                handler.arm(handler.deadline)
                return
            }
            handler.finish(.failure(ForwardingError.timedOut))
            handler.context?.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard pending != nil else {
            // Bytes nobody asked for: the connection is out of step; drop it.
            context.close(promise: nil)
            return
        }
        do {
            if let response = try reader.feed(&bytes) {
                // Anything after the answer is out of step too.
                let extra = bytes.readableBytes > 0
                if extra { context.close(promise: nil) }
                finish(.success(Response(status: response.status, contentType: response.contentType, retryAfter: response.retryAfter, body: response.body,
                                         keepAlive: response.keepAlive && !extra)))
            }
        } catch {
            finish(.failure(error))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        if pending != nil {
            if let response = reader.closed() {
                finish(.success(response))
            } else {
                finish(.failure(reader.started ? ForwardingError.unreachable("the connection closed mid-answer") : ForwardingError.closedBeforeAnswer))
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if pending != nil {
            finish(.failure(reader.started ? ForwardingError.unreachable("\(error)") : ForwardingError.closedBeforeAnswer))
        }
        context.close(promise: nil)
    }
}

extension EventLoop {
    /// Runs `body` now when the caller is on this loop, else as a task on it.
    func executeHere(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}

/// `http://HOST[:PORT]/PATH[?QUERY]`, split for `ForwardingClient` (nil: not plain HTTP).
struct PlainURL {
    let host: String
    let port: Int
    let path: String

    init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty { port = 80 } else {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            host = String(authority[..<colon])
            port = p
        } else {
            host = String(authority)
            port = 80
        }
    }
}
