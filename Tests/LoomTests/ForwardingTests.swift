import AsyncHTTPClient
import Foundation
import LoomCore
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import LoomForwarding
@testable import LoomServing

@Suite("Forwarding to upstream model servers")
struct ForwardingTests {
    /// Feeds `text` to a reader in pieces of `piece` bytes; the answer and the bytes after it.
    static func read(_ text: String, piece: Int, closeAtEnd: Bool = false) throws -> (ResponseReader.Response?, String) {
        var reader = ResponseReader(limit: 1 << 20)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            var chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + piece)])
            offset += piece
            if let response = try reader.feed(&chunk) {
                var rest = chunk
                if offset < bytes.count { rest.writeBytes(bytes[offset...]) }
                return (response, String(buffer: rest))
            }
            #expect(chunk.readableBytes == 0)
        }
        return (closeAtEnd ? reader.closed() : nil, "")
    }

    @Test("Retry-After and retry-after-ms are kept for a gateway's retries")
    func retryAfter() throws {
        let (seconds, _) = try Self.read("HTTP/1.1 429 Too Many\r\nRetry-After: 2\r\ncontent-length: 0\r\n\r\n", piece: 5)
        #expect(seconds?.status == 429 && seconds?.retryAfter == "2")
        let (millis, _) = try Self.read("HTTP/1.1 503 Busy\r\nretry-after-ms: 250\r\ncontent-length: 0\r\n\r\n", piece: 1000)
        #expect(millis?.retryAfter == "ms:250")
        let (none, _) = try Self.read("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", piece: 1000)
        #expect(none?.retryAfter == nil)
    }

    @Test("Content-Length bodies, in any split, with what follows left over", arguments: [1, 3, 7, 1000])
    func contentLength(piece: Int) throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\nServer: x\r\n\r\n{\"a\": [1]}\nHTTP/1.1 204"
        let (response, rest) = try Self.read(text, piece: piece)
        let r = try #require(response)
        #expect(r.status == 200)
        #expect(r.contentType == "application/json")
        #expect(String(buffer: r.body) == "{\"a\": [1]}\n")
        #expect(r.keepAlive)
        #expect(rest == "HTTP/1.1 204")
    }

    @Test("Chunked bodies with extensions and trailers", arguments: [1, 5, 1000])
    func chunked(piece: Int) throws {
        let text = "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"
            + "5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        let (response, rest) = try Self.read(text, piece: piece)
        let r = try #require(response)
        #expect(r.status == 201)
        #expect(r.contentType == nil)
        #expect(String(buffer: r.body) == "hello world")
        #expect(r.keepAlive)
        #expect(rest.isEmpty)
    }

    @Test("A body without a length runs to the close; HTTP/1.0 closes unless kept alive")
    func closeDelimited() throws {
        let (open, _) = try Self.read("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", piece: 4)
        #expect(open == nil)
        let (closed, _) = try Self.read("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", piece: 4, closeAtEnd: true)
        let r = try #require(closed)
        #expect(String(buffer: r.body) == "all of it")
        #expect(!r.keepAlive)
        let (kept, _) = try Self.read("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", piece: 3)
        #expect(try #require(kept).keepAlive)
        let (closing, _) = try Self.read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", piece: 3)
        #expect(try #require(closing).keepAlive == false)
    }

    @Test("Interim answers are skipped; 204 and 304 have no body")
    func interimAndEmpty() throws {
        let (response, rest) = try Self.read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nnext", piece: 2)
        let r = try #require(response)
        #expect(r.status == 204)
        #expect(r.body.readableBytes == 0)
        #expect(rest == "next")
    }

    @Test("Answers that are not HTTP, conflicting lengths, bad chunks and oversized bodies are errors", arguments: [
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
        "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ])
    func refused(text: String) {
        #expect(throws: ForwardingError.self) { _ = try Self.read(text, piece: 1000) }
    }

    @Test("Plain-HTTP URLs become targets (made once per URL); anything else is left to AsyncHTTPClient")
    func targetsFromURLs() throws {
        let client = ForwardingClient()
        func head(_ url: String) -> String? {
            client.target(url: url).flatMap { try? String(buffer: ForwardingClient.requestHead($0, headers: [], body: ByteBuffer())) }
        }
        #expect(head("http://127.0.0.1:9100/v1/chat/completions") == "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:9100\r\ncontent-length: 0\r\n\r\n")
        #expect(head("http://models.local") == "POST / HTTP/1.1\r\nhost: models.local\r\ncontent-length: 0\r\n\r\n")
        #expect(head("http://[::1]:8080/openai/deployments/d/embeddings?api-version=1") == "POST /openai/deployments/d/embeddings?api-version=1 HTTP/1.1\r\nhost: [::1]:8080\r\ncontent-length: 0\r\n\r\n")
        for url in ["https://api.openai.com/v1/chat/completions", "http://user:pw@h/x", "http://h:0/", "http://h:70000/", "http://h:x/", "http:///x", "http://[::1/x", "http://h/a b"] {
            #expect(client.target(url: url) == nil, "\(url)")
        }
        let a = try #require(client.target(url: "http://127.0.0.1:9100/a"))
        #expect(client.target(url: "http://127.0.0.1:9100/a")?.number == a.number, "the same URL, the same pool")
        #expect(client.target(url: "http://127.0.0.1:9100/b")?.number == a.number, "another path on the same upstream shares its pool")
        #expect(client.target(url: "http://127.0.0.1:9101/a")?.number != a.number)
    }

    @Test("Request heads carry the body length and refuse header injection")
    func requestHead() throws {
        let client = ForwardingClient()
        let head = try ForwardingClient.requestHead(
            client.target(host: "127.0.0.1", port: 8080, path: "/invocations"), headers: [("content-type", "application/json")],
            body: ByteBuffer(string: "{\"x\": [1,2]}"))
        #expect(String(buffer: head) == "POST /invocations HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 12\r\ncontent-type: application/json\r\n\r\n{\"x\": [1,2]}")
        // A large body is written after the head, not copied into it.
        let large = ByteBuffer(repeating: 65, count: ForwardingClient.inlineBody + 1)
        #expect(String(buffer: try ForwardingClient.requestHead(client.target(host: "h", port: 80, path: "/"), headers: [], body: large))
            == "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: \(ForwardingClient.inlineBody + 1)\r\n\r\n")
        #expect(throws: (any Error).self) {
            _ = try ForwardingClient.requestHead(client.target(host: "h", port: 80, path: "/"), headers: [("x", "a\r\nevil: 1")], body: ByteBuffer())
        }
        #expect(throws: (any Error).self) { _ = try client.target(host: "h", port: 80, path: "/a b") }
        #expect(throws: (any Error).self) { _ = try client.target(host: "h\r\nx: 1", port: 80, path: "/") }
        #expect(String(buffer: try ForwardingClient.requestHead(client.target(host: "h", port: 80, path: "/p?q=1"), headers: [], body: ByteBuffer()))
            == "POST /p?q=1 HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n")
    }

    /// A real upstream on loopback that answers each request with the next of `answers`, as
    /// bytes, closing after the ones marked so; counts connections.
    final class RawUpstream: Sendable {
        final class State: Sendable {
            let answers: Mutex<[(String, Bool)]>
            let connections = Atomic<Int>(0)
            init(_ answers: [(String, Bool)]) { self.answers = Mutex(answers) }
        }

        let channel: any Channel
        let state: State

        init(answers: [(String, Bool)]) async throws {
            let state = State(answers)
            self.state = state
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { child in
                    state.connections.wrappingAdd(1, ordering: .relaxed)
                    return child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(Answerer(state))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var port: Int { channel.localAddress!.port! }
        var connections: Int { state.connections.load(ordering: .relaxed) }

        final class Answerer: ChannelInboundHandler, Sendable {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            let state: State
            init(_ state: State) { self.state = state }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                // Each test request fits one read: answer once per read that ends a request.
                let text = String(buffer: unwrapInboundIn(data))
                guard text.hasSuffix("}") else { return }
                let next = state.answers.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                guard let (answer, close) = next else { return }
                let written = context.writeAndFlush(NIOAny(ByteBuffer(string: answer)))
                if close {
                    let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                    written.whenComplete { _ in ctx.value.close(promise: nil) }
                }
            }
        }
    }

    @Test("Forwarding over loopback: keep-alive reuses the connection, other framings end it")
    func liveFramings() async throws {
        let upstream = try await RawUpstream(answers: [
            ("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\n\r\n{\"n\": 1}", false),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"n\r\n5\r\n\": 2}\r\n0\r\n\r\n", false),
            ("HTTP/1.0 503 Busy\r\ncontent-type: application/json\r\n\r\n{\"n\": 3}", true),
            ("HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"n\": 4}", false),
        ])
        let client = ForwardingClient(keep: 4)
        defer { client.shutdown() }
        var bodies: [String] = []
        var statuses: [Int] = []
        for _ in 0..<4 {
            let answer = try await client.post(
                host: "127.0.0.1", port: upstream.port, path: "/invocations", headers: [("content-type", "application/json")],
                body: ByteBuffer(string: "{\"x\": 1}"), timeout: .seconds(5))
            bodies.append(String(buffer: answer.body))
            statuses.append(answer.status)
        }
        #expect(bodies == ["{\"n\": 1}", "{\"n\": 2}", "{\"n\": 3}", "{\"n\": 4}"])
        #expect(statuses == [200, 200, 503, 200])
        // The first two shared one connection (both loops may have opened one); the answer framed
        // by the close ended its connection, so the fourth needed a new one.
        #expect(upstream.connections <= 3)
        #expect(upstream.connections >= 2)
        try await upstream.channel.close()
    }

    @Test("An upstream that answers garbage fails the request and drops the connection")
    func liveGarbage() async throws {
        let upstream = try await RawUpstream(answers: [("NOT HTTP AT ALL\r\n\r\n", false), ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false)])
        let client = ForwardingClient(keep: 4)
        defer { client.shutdown() }
        await #expect(throws: ForwardingError.self) {
            _ = try await client.post(host: "127.0.0.1", port: upstream.port, path: "/i", headers: [], body: ByteBuffer(string: "{}"), timeout: .seconds(5))
        }
        let answer = try await client.post(host: "127.0.0.1", port: upstream.port, path: "/i", headers: [], body: ByteBuffer(string: "{}"), timeout: .seconds(5))
        #expect(String(buffer: answer.body) == "ok")
        #expect(upstream.connections == 2)
        try await upstream.channel.close()
    }

    @Test("A request on a reused connection times out a whole timeout after it was sent, not after the first request")
    func timeoutOnReusedConnection() async throws {
        // One answer: the second request is never answered.
        let upstream = try await RawUpstream(answers: [("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false)])
        let client = ForwardingClient(keep: 4)
        defer { client.shutdown() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let target = try client.target(host: "127.0.0.1", port: upstream.port, path: "/i")
        let first = try await client.post(on: loop, to: target, headers: [], body: ByteBuffer(string: "{}"), timeout: .milliseconds(400)).get()
        #expect(String(buffer: first.body) == "ok")
        try await Task.sleep(for: .milliseconds(250))
        let sent = ContinuousClock.now
        await #expect(throws: ForwardingError.self) {
            _ = try await client.post(on: loop, to: target, headers: [], body: ByteBuffer(string: "{}"), timeout: .milliseconds(400)).get()
        }
        // The connection's timer was armed for the first request (400 ms after it); the second
        // must still get its own 400 ms.
        #expect(ContinuousClock.now - sent >= .milliseconds(390))
        #expect(upstream.connections == 1, "the second request went over the first's connection")
        try await upstream.channel.close()
    }

    @Test("A body larger than the inline limit goes after the head, whole")
    func largeBody() async throws {
        let upstream = try await LengthEcho()
        let client = ForwardingClient(keep: 4)
        defer { client.shutdown() }
        for size in [10, ForwardingClient.inlineBody + 1, 300_000] {
            let body = ByteBuffer(string: "{\"x\": \"" + String(repeating: "a", count: size) + "\"}")
            let answer = try await client.post(host: "127.0.0.1", port: upstream.port, path: "/i", headers: [], body: body, timeout: .seconds(5))
            #expect(String(buffer: answer.body) == "\(body.readableBytes)")
        }
        try await upstream.channel.close()
    }

    /// A real upstream on loopback that reads each request by its `content-length` and answers
    /// with the number of body bytes it got.
    /// With `echoTarget`, it answers with the request target instead.
    final class LengthEcho: Sendable {
        let channel: any Channel

        init(echoTarget: Bool = false) async throws {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Reader(echoTarget: echoTarget)) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var port: Int { channel.localAddress!.port! }

        final class Reader: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            let echoTarget: Bool
            var bytes = ByteBuffer()

            init(echoTarget: Bool) { self.echoTarget = echoTarget }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                var more = unwrapInboundIn(data)
                bytes.writeBuffer(&more)
                let text = String(buffer: bytes)
                guard let end = text.range(of: "\r\n\r\n"),
                    let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                    let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
                else { return }
                let got = text.utf8.count - text[..<end.upperBound].utf8.count
                guard got >= length else { return }
                bytes.clear()
                let answer = echoTarget ? String(text.split(separator: " ")[1]) : "\(got)"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: \(answer.utf8.count)\r\n\r\n\(answer)")), promise: nil)
            }
        }
    }

    @Test("An external deployment's URL is forwarded as written: percent-escapes in its path and query stay escaped")
    func externalURLKeepsEscapes() async throws {
        let upstream = try await LengthEcho(echoTarget: true)
        let forwarder = HTTPForwarder(client: HTTPClient.shared, forwarding: ForwardingClient(keep: 4))
        defer { forwarder.forwarding.shutdown() }
        let runtime = ExternalRuntime(url: "http://127.0.0.1:\(upstream.port)/models/a%20b/invocations?v=1%2F2", deployment: "d", forwarder: forwarder)
        #expect(runtime.answersOnLoop)
        let answer = try await runtime.invoke(ServingRequest(body: ByteBuffer(string: "{}"), contentType: "application/json", correlationID: "c-1"), timeout: .seconds(5))
        #expect(String(buffer: answer.body) == "/models/a%20b/invocations?v=1%2F2")
        try await upstream.channel.close()
    }
}
