import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import LoomCore
import LoomGenAI
import LoomServing
import LoomTracking
import Metrics
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The invocation relay: the first handler of a connection, in front of the HTTP decoder. While
/// a connection carries only plain invocations that the fast path takes (`POST
/// /endpoints/NAME/invocations` with a `Content-Length` body, to an endpoint whose deployments
/// forward over plain HTTP), it reads them from the bytes, forwards each on the connection's
/// event loop and writes the answer as bytes: no HTTP decoder, encoder, `HTTPTypes` conversion or
/// handler hops on the inbound side. That halves the CPU a forwarded request costs. MLflow's
/// `log-metric` and `log-batch` are taken the same way (`TrackingCall`): a training job's
/// connection that only logs metrics never meets the HTTP decoder.
///
/// At the first request it does not take (any other route, a chunked body, `Expect`, `Upgrade`,
/// HTTP/1.0, a refused key, an oversized body, anything unusual in the head), it hands that
/// request's bytes and everything after to the HTTP decoder for good; the connection is then an
/// ordinary one (where `InvocationFastPath` still takes invocations). So the relay parses only
/// what it is sure of, and the HTTP decoder judges everything else.
final class InvocationRelay: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The longest head read here; longer ones go to the HTTP decoder (which allows 80 KiB).
    static let headLimit = 16 << 10
    /// Bytes of pipelined requests read ahead while one is answered.
    static let holdLimit = 64 << 10
    /// The largest gateway body read here; larger ones (up to the router's 16 MiB) go to the
    /// HTTP decoder.
    static let gatewayBodyLimit = 1 << 20

    let shared: InvocationFastPath.Shared
    /// Bytes read and not yet taken.
    var pending: ByteBuffer?
    /// From the first request not taken on, every byte goes to the HTTP decoder.
    var handedOver = false
    var answering = false
    var heldRead = false
    /// Events that would close the connection (quiesce, input closed), held while answering.
    var heldEvents: [Any] = []
    var date = HTTPDateCache()
    /// Runs this connection's tracking calls on its loop (made at the first).
    var executor: EventLoopTaskExecutor?

    init(_ shared: InvocationFastPath.Shared) {
        self.shared = shared
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if handedOver {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        if pending == nil {
            pending = bytes
        } else {
            pending!.writeBuffer(&bytes)
        }
        if !answering { takeRequests(context) }
    }

    /// Takes the complete requests read so far, one at a time.
    func takeRequests(_ context: ChannelHandlerContext) {
        while !answering, !handedOver, let bytes = pending, bytes.readableBytes > 0 {
            switch Self.parse(bytes, shared) {
            case .needMore:
                return
            case .notMine:
                handOver(context)
                return
            case .request(let request, let length):
                let body = bytes.getSlice(at: bytes.readerIndex + length - request.bodyLength, length: request.bodyLength)!
                pending!.moveReaderIndex(forwardBy: length)
                if pending!.readableBytes == 0 { pending = nil }
                answering = true
                answer(context, request, body)
            }
        }
    }

    func handOver(_ context: ChannelHandlerContext) {
        handedOver = true
        if let bytes = pending {
            pending = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
    }

    func answer(_ context: ChannelHandlerContext, _ request: Request, _ body: ByteBuffer) {
        let started = ContinuousClock.now
        switch request.work {
        case .endpoint(let route):
            let serving = ServingRequest(body: body, contentType: request.contentType, correlationID: route.correlation)
            route.live.invoke(serving, target: route.target, stickyKey: route.stickyKey, on: context.eventLoop) { result in
                let outcome = Outcome(result)
                RequestMetricsMiddleware.record(method: .post, route: InvocationFastPath.route, status: outcome.status, start: started)
                self.shared.relayed.increment()
                self.respond(context, request, outcome, correlation: route.correlation)
            }
        case .gateway(let work):
            answer(context, request, body, work)
        case .tracking(let call):
            guard let tracking = shared.tracking else { return }
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            call.start(tracking, on: taskExecutor(context.eventLoop), logger: shared.logger) { status, body in
                let (handler, context) = bound.value
                RequestMetricsMiddleware.record(method: .post, route: call.kind.path, status: status, start: started)
                handler.shared.trackingRelayed.increment()
                handler.respond(context, request, Outcome(status: status, contentType: "application/json", body: body), correlation: nil)
            }
        }
    }

    /// This connection's task executor (made at its first tracking call).
    func taskExecutor(_ loop: any EventLoop) -> EventLoopTaskExecutor {
        if let executor { return executor }
        let made = EventLoopTaskExecutor(loop)
        executor = made
        return made
    }

    func respond(_ context: ChannelHandlerContext, _ request: Request, _ outcome: Outcome, correlation: String?, headers: [(String, String)] = []) {
        guard context.channel.isActive else { return }
        // Written piece by piece: no string is built for the head.
        var out = context.channel.allocator.buffer(capacity: 320 + outcome.body.readableBytes)
        writeStatusLine(outcome.status, into: &out)
        out.writeStaticString("content-type: ")
        out.writeString(outcome.contentType)
        if let deployment = outcome.deployment {
            out.writeStaticString("\r\nloom-deployment: ")
            out.writeString(deployment)
        }
        if let correlation {
            out.writeStaticString("\r\nloom-correlation-id: ")
            out.writeString(correlation)
        }
        out.writeStaticString("\r\n")
        Self.write(headers, into: &out)
        out.writeStaticString("content-length: ")
        out.writeString(String(outcome.body.readableBytes))
        out.writeStaticString("\r\n")
        writeServerAndDate(into: &out)
        out.writeStaticString(request.close ? "connection: close\r\n\r\n" : "\r\n")
        out.writeImmutableBuffer(outcome.body)
        if request.close {
            context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        finishAnswer(context)
    }

    /// `HTTP/1.1 CODE REASON`, CR LF.
    func writeStatusLine(_ status: Int, into out: inout ByteBuffer) {
        if status == 200 {
            out.writeStaticString("HTTP/1.1 200 OK\r\n")
        } else {
            // NIOHTTP1 knows every status's reason phrase (`HTTPResponse.Status(code:)` has none).
            out.writeStaticString("HTTP/1.1 ")
            out.writeString(String(status))
            out.writeStaticString(" ")
            out.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
            out.writeStaticString("\r\n")
        }
    }

    func writeServerAndDate(into out: inout ByteBuffer) {
        out.writeStaticString("server: ")
        out.writeString(shared.serverName)
        out.writeStaticString("\r\ndate: ")
        out.writeString(date.now())
        out.writeStaticString("\r\n")
    }

    /// Header lines the gateway adds (rate-limit headers, `retry-after`, ...); anything that is
    /// not a clean name and value is left out.
    static func write(_ headers: [(String, String)], into out: inout ByteBuffer) {
        for (name, value) in headers {
            guard HTTPField.Name(name) != nil, HTTPField.isValidValue(value) else { continue }
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
    }

    /// The answer in hand is written: the next request, or the held events.
    func finishAnswer(_ context: ChannelHandlerContext) {
        answering = false
        if !heldEvents.isEmpty {
            // Quiescing or the client's input closed: the connection is idle now; let the
            // server close it (requests pipelined behind this one are not answered).
            let events = heldEvents
            heldEvents = []
            pending = nil
            for event in events { context.fireUserInboundEventTriggered(event) }
            return
        }
        takeRequests(context)
        if !answering, heldRead {
            heldRead = false
            context.read()
        }
    }

    // MARK: Gateway calls

    /// Runs a gateway call in a task on this connection's loop, then writes its answer: whole,
    /// or a stream relayed as it comes in chunks (each write awaited, so a slow client slows the
    /// provider's stream down, and one that leaves cancels it).
    func answer(_ context: ChannelHandlerContext, _ request: Request, _ body: ByteBuffer, _ work: InvocationFastPath.GatewayWork) {
        guard let gateway = shared.gateway else { return }
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        InvocationFastPath.runGateway(gateway, work, Array(body.readableBytesView), executor: taskExecutor(loop), on: loop) { result in
            switch result {
            case .success(.stream(let stream, let headers)):
                await InvocationFastPath.relay(
                    stream, on: loop,
                    start: { bound.value.handler.startStream(bound.value.context, request, work, headers) },
                    part: { bound.value.handler.streamPart(bound.value.context, $0) },
                    end: { bound.value.handler.endStream(bound.value.context, request, relayed: $0) })
                // A streamed call leaves nothing for after its answer; run anyway, so nothing is left behind.
                work.caller.afterAnswer?.run()
            case .success(.complete(let bytes, let headers)):
                InvocationFastPath.onLoop(loop) { bound.value.handler.respondGateway(bound.value.context, request, work, 200, ByteBuffer(bytes: bytes), headers) }
            case .failure(let error):
                InvocationFastPath.onLoop(loop) { bound.value.handler.respondGateway(bound.value.context, request, work, error.status, ByteBuffer(bytes: error.body), error.headers) }
            }
        }
    }

    func respondGateway(
        _ context: ChannelHandlerContext, _ request: Request, _ work: InvocationFastPath.GatewayWork, _ status: Int, _ body: ByteBuffer, _ headers: [(String, String)]
    ) {
        respond(context, request, Outcome(status: status, contentType: "application/json", body: body), correlation: nil, headers: headers)
        // What does not change the answer runs once it is on its way.
        RequestMetricsMiddleware.record(method: .post, route: work.kind.route, status: status, start: work.started)
        shared.gatewayRelayed.increment()
        work.caller.afterAnswer?.run()
    }

    /// Writes a stream's head (chunked); false when the client has gone.
    func startStream(_ context: ChannelHandlerContext, _ request: Request, _ work: InvocationFastPath.GatewayWork, _ headers: [(String, String)]) -> Bool {
        RequestMetricsMiddleware.record(method: .post, route: work.kind.route, status: 200, start: work.started)
        shared.gatewayRelayed.increment()
        guard context.channel.isActive else { return false }
        var out = context.channel.allocator.buffer(capacity: 320)
        out.writeStaticString("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n")
        Self.write(headers, into: &out)
        writeServerAndDate(into: &out)
        out.writeStaticString(request.close ? "transfer-encoding: chunked\r\nconnection: close\r\n\r\n" : "transfer-encoding: chunked\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        return true
    }

    /// One part of a stream as a chunk, written and flushed; the future fails when the client
    /// has gone.
    func streamPart(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard context.channel.isActive else { return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        // An empty chunk would end the body.
        guard buffer.readableBytes > 0 else { return context.eventLoop.makeSucceededVoidFuture() }
        var out = context.channel.allocator.buffer(capacity: buffer.readableBytes + 16)
        out.writeString(String(buffer.readableBytes, radix: 16))
        out.writeStaticString("\r\n")
        out.writeImmutableBuffer(buffer)
        out.writeStaticString("\r\n")
        return context.writeAndFlush(wrapOutboundOut(out))
    }

    /// The end of a stream. One cut short closes the connection without the last chunk: the
    /// client must not take a truncated answer for a whole one.
    func endStream(_ context: ChannelHandlerContext, _ request: Request, relayed: Bool) {
        guard context.channel.isActive else { return }
        guard relayed else {
            context.close(promise: nil)
            return
        }
        let last = wrapOutboundOut(ByteBuffer(staticString: "0\r\n\r\n"))
        if request.close {
            context.writeAndFlush(last).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.writeAndFlush(last, promise: nil)
        finishAnswer(context)
    }

    /// Reading goes on while a request is in hand (holding it would cost two `epoll_ctl` calls
    /// per request); pipelined requests gather in `pending` up to `holdLimit` bytes, and past
    /// that wait in the kernel.
    func read(context: ChannelHandlerContext) {
        if answering, (pending?.readableBytes ?? 0) >= Self.holdLimit {
            heldRead = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if answering, event is ChannelShouldQuiesceEvent || (event as? ChannelEvent) == .inputClosed {
            heldEvents.append(event)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Reading requests

    /// A request the relay takes.
    struct Request {
        enum Work {
            case endpoint(InvocationFastPath.Route)
            case tracking(TrackingCall)
            case gateway(InvocationFastPath.GatewayWork)
        }

        let work: Work
        let contentType: String?
        let bodyLength: Int
        let close: Bool
    }

    enum Parsed {
        case needMore
        case notMine
        /// The request and the length of its head and body.
        case request(Request, Int)
    }

    /// Reads one request from the start of `bytes`.
    static func parse(_ bytes: ByteBuffer, _ shared: InvocationFastPath.Shared) -> Parsed {
        bytes.withUnsafeReadableBytes { raw in
            guard let head = Head(raw) else {
                // Incomplete: wait for more, unless it cannot be a request this takes.
                return raw.count > headLimit || !Head.couldBeTaken(raw) ? .notMine : .needMore
            }
            guard head.usable else { return .notMine }
            let header = { (name: HTTPField.Name) in head.value(name.canonicalName, raw) }
            let total = head.length + head.contentLength
            if let route = InvocationFastPath.route(head.path, shared, header: header) {
                guard head.contentLength <= route.live.endpoint.maxBodyBytes else { return .notMine }
                guard raw.count >= total else { return .needMore }
                return .request(Request(work: .endpoint(route), contentType: header(.contentType), bodyLength: head.contentLength, close: head.close), total)
            }
            if let kind = TrackingCall.kind(head.path, shared, header: header) {
                guard head.contentLength <= TrackingCall.maxBodyBytes else { return .notMine }
                guard raw.count >= total else { return .needMore }
                // A body the fast reader does not take goes to the router, which words any error.
                guard let call = TrackingCall(kind, body: UnsafeRawBufferPointer(rebasing: raw[head.length..<total])) else { return .notMine }
                return .request(Request(work: .tracking(call), contentType: header(.contentType), bodyLength: head.contentLength, close: head.close), total)
            }
            if let gateway = shared.gateway,
                // A header given twice is for the HTTP decoder and the router to judge.
                ![HTTPField.Name.authorization, AuthMiddleware.loomWorkspace, AuthMiddleware.mlflowWorkspace, GatewayController.traceParent]
                    .contains(where: { head.count($0.canonicalName, raw) > 1 }),
                let work = InvocationFastPath.gatewayWork(path: head.path, close: head.close, shared, gateway, header: header)
            {
                guard head.contentLength <= gatewayBodyLimit else { return .notMine }
                guard raw.count >= total else { return .needMore }
                return .request(Request(work: .gateway(work), contentType: header(.contentType), bodyLength: head.contentLength, close: head.close), total)
            }
            return .notMine
        }
    }

    /// A request head: `POST TARGET HTTP/1.1`, header lines, an empty line. Only a head read
    /// without doubt is usable; anything odd makes it unusable, and the HTTP decoder judges it.
    struct Head {
        var path = ""
        /// Byte ranges of each header's name and value.
        var fields: [(name: Range<Int>, value: Range<Int>)] = {
            var fields: [(name: Range<Int>, value: Range<Int>)] = []
            fields.reserveCapacity(12)  // a client's usual header lines, without regrowing
            return fields
        }()
        var length = 0
        var contentLength = 0
        var close = false
        var usable = true

        /// How the requests this relay takes start: invocations, MLflow's `log-metric` and
        /// `log-batch`, and the gateway's chat completions and embeddings.
        static let prefixes = [
            Array("POST /endpoints/".utf8), Array("POST \(MLflowController.prefix)/runs/log-".utf8),
            Array("POST /v1/chat/completions ".utf8), Array("POST /v1/embeddings ".utf8),
        ]

        /// Whether the bytes so far can still become a head this relay takes.
        static func couldBeTaken(_ raw: UnsafeRawBufferPointer) -> Bool {
            prefixes.contains { prefix in
                let n = min(raw.count, prefix.count)
                return raw.prefix(n).elementsEqual(prefix.prefix(n))
            }
        }

        /// Nil when the head is not complete yet.
        init?(_ raw: UnsafeRawBufferPointer) {
            let count = min(raw.count, InvocationRelay.headLimit)
            // The end of the head: CR LF CR LF.
            var end = -1
            var i = 0
            while i + 3 < count {
                if raw[i + 3] == 10, raw[i + 2] == 13, raw[i + 1] == 10, raw[i] == 13 {
                    end = i
                    break
                }
                i += 1
            }
            guard end >= 0 else { return nil }
            length = end + 4
            // The request line.
            guard let lineEnd = Self.find(13, raw, from: 0, to: end + 2), raw[lineEnd + 1] == 10, Self.couldBeTaken(raw),
                lineEnd > "POST /endpoints/".utf8.count + 9,
                raw[(lineEnd - 9)..<lineEnd].elementsEqual(" HTTP/1.1".utf8)
            else {
                usable = false
                return
            }
            let target = raw[5..<(lineEnd - 9)]
            guard !target.contains(32), target.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                usable = false
                return
            }
            path = String(decoding: target, as: UTF8.self)
            // Header lines.
            var start = lineEnd + 2
            var sawLength = false
            while start < end + 2 {
                guard let lineEnd = Self.find(13, raw, from: start, to: end + 2), raw[lineEnd + 1] == 10,
                    let colon = Self.find(58, raw, from: start, to: lineEnd), colon > start
                else {
                    usable = false
                    return
                }
                // Names are tokens; no obs-fold, no control bytes in values.
                guard raw[start..<colon].allSatisfy({ $0 > 32 && $0 < 127 && $0 != 34 && $0 != 40 && $0 != 41 && $0 != 44 && $0 != 47 && $0 != 59 }),
                    raw[(colon + 1)..<lineEnd].allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) })
                else {
                    usable = false
                    return
                }
                var v0 = colon + 1, v1 = lineEnd
                while v0 < v1, raw[v0] == 32 || raw[v0] == 9 { v0 += 1 }
                while v1 > v0, raw[v1 - 1] == 32 || raw[v1 - 1] == 9 { v1 -= 1 }
                let name = start..<colon
                fields.append((name, v0..<v1))
                if Self.named(name, "content-length", raw) {
                    guard !sawLength, v1 > v0, v1 - v0 <= 10, raw[v0..<v1].allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                        usable = false
                        return
                    }
                    sawLength = true
                    contentLength = raw[v0..<v1].reduce(0) { $0 * 10 + Int($1 - 48) }
                } else if Self.named(name, "transfer-encoding", raw) || Self.named(name, "expect", raw) || Self.named(name, "upgrade", raw) {
                    usable = false
                    return
                } else if Self.named(name, "connection", raw) {
                    let value = String(decoding: raw[v0..<v1], as: UTF8.self).lowercased()
                    let tokens = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    if tokens.contains("upgrade") {
                        usable = false
                        return
                    }
                    close = close || tokens.contains("close")
                }
                start = lineEnd + 2
            }
        }

        /// The value of header `name` (lowercase), when it appears once.
        func value(_ name: String, _ raw: UnsafeRawBufferPointer) -> String? {
            var found: Range<Int>?
            for field in fields where Self.named(field.name, name, raw) {
                if found != nil { return nil }
                found = field.value
            }
            return found.map { String(decoding: raw[$0], as: UTF8.self) }
        }

        /// How many times header `name` (lowercase) appears.
        func count(_ name: String, _ raw: UnsafeRawBufferPointer) -> Int {
            fields.reduce(0) { $0 + (Self.named($1.name, name, raw) ? 1 : 0) }
        }

        static func named(_ range: Range<Int>, _ lowercase: String, _ raw: UnsafeRawBufferPointer) -> Bool {
            guard range.count == lowercase.utf8.count else { return false }
            return zip(raw[range], lowercase.utf8).allSatisfy { a, b in (a >= 65 && a <= 90 ? a + 32 : a) == b }
        }

        static func find(_ byte: UInt8, _ raw: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
            var i = from
            while i < to {
                if raw[i] == byte { return i }
                i += 1
            }
            return nil
        }
    }
}

/// Hummingbird's HTTP/1.1 child channel with the invocation relay as the first handler of each
/// connection and the invocation fast path after the HTTP decoder.
struct LoomHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    let inner: HTTP1Channel
    let shared: InvocationFastPath.Shared

    init(responder: @escaping HTTPChannelHandler.Responder, shared: InvocationFastPath.Shared) {
        inner = HTTP1Channel(responder: responder, configuration: .init(additionalChannelHandlers: [InvocationFastPath(shared)]))
        self.shared = shared
    }

    var responder: HTTPChannelHandler.Responder { inner.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let shared = shared
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(InvocationRelay(shared), position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
