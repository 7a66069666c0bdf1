import LoomCore
import NIOCore

/// Reads one HTTP/1.x response from the bytes of an upstream connection, as they arrive: the
/// status line and header fields, then a body framed by `Transfer-Encoding: chunked`, by
/// `Content-Length`, or by the close of the connection (RFC 9112 §6.3). Interim 1xx answers are
/// skipped. What the forwarding client needs and no more: status, content type, body, and whether
/// the connection can carry the next request.
struct ResponseReader {
    struct Response: Sendable {
        let status: Int
        let contentType: String?
        var retryAfter: String? = nil
        let body: ByteBuffer
        let keepAlive: Bool
    }

    enum Framing {
        case length(Int)
        case chunked
        case untilClose
    }

    enum State {
        case head
        case body(Framing)
        /// Inside a chunked body: waiting for a chunk-size line.
        case chunkSize
        /// Inside a chunk: this many data bytes left, then CR LF.
        case chunkData(Int)
        /// After the last chunk: trailer lines up to an empty one.
        case trailers
    }

    static let headLimit = 64 << 10

    let limit: Int
    var state = State.head
    var buffer = ByteBuffer()
    var body = ByteBuffer()
    var status = 0
    var contentType: String?
    var retryAfter: String?
    var keepAlive = true
    /// Whether any byte of the answer arrived.
    var started = false

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes the bytes read; returns the response once it is complete. What follows it stays in
    /// `bytes`.
    mutating func feed(_ bytes: inout ByteBuffer) throws(ForwardingError) -> Response? {
        if bytes.readableBytes > 0 { started = true }
        if buffer.readableBytes == 0 {
            swap(&buffer, &bytes)
        } else {
            buffer.writeBuffer(&bytes)
        }
        while true {
            switch state {
            case .head:
                guard let headLength = try readHead() else { return nil }
                buffer.moveReaderIndex(forwardBy: headLength)
            case .body(.length(let n)):
                guard buffer.readableBytes >= n else { return nil }
                body = buffer.readSlice(length: n)!
                return finish(&bytes)
            case .body(.chunked):
                state = .chunkSize
            case .body(.untilClose):
                guard body.readableBytes + buffer.readableBytes <= limit else { throw .tooLarge }
                body.writeBuffer(&buffer)
                return nil
            case .chunkSize:
                guard let line = readLine() else { return nil }
                let hex = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0].filter { $0 != " " && $0 != "\t" }
                guard !hex.isEmpty, hex.count <= 15, let size = Int(hex, radix: 16), size >= 0 else {
                    throw .unreachable("the upstream sent a bad chunk size")
                }
                guard body.readableBytes + size <= limit else { throw .tooLarge }
                state = size == 0 ? .trailers : .chunkData(size)
            case .chunkData(let n):
                guard buffer.readableBytes >= n + 2 else { return nil }
                var chunk = buffer.readSlice(length: n)!
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .unreachable("the upstream sent a chunk without its CR LF") }
                body.writeBuffer(&chunk)
                state = .chunkSize
            case .trailers:
                guard let line = readLine() else { return nil }
                if line.isEmpty { return finish(&bytes) }
            }
        }
    }

    /// The connection closed: the answer, when it was one framed by the close.
    func closed() -> Response? {
        guard case .body(.untilClose) = state else { return nil }
        return Response(status: status, contentType: contentType, retryAfter: retryAfter, body: body, keepAlive: false)
    }

    mutating func finish(_ rest: inout ByteBuffer) -> Response {
        rest = buffer
        buffer = ByteBuffer()
        return Response(status: status, contentType: contentType, retryAfter: retryAfter, body: body, keepAlive: keepAlive)
    }

    /// One line ending in CR LF (bare LF accepted), without it; nil until it is all here.
    mutating func readLine() -> Substring? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: 10) else {
            return nil
        }
        let end = lf > view.startIndex && view[lf - 1] == 13 ? lf - 1 : lf
        let line = String(decoding: view[view.startIndex..<end], as: UTF8.self)
        buffer.moveReaderIndex(forwardBy: lf + 1 - view.startIndex)
        return Substring(line)
    }

    /// Parses the head when it is all here: the length it took, or nil to wait for more.
    mutating func readHead() throws(ForwardingError) -> Int? {
        let parsed: Int? = try buffer.withUnsafeReadableBytes { raw throws(ForwardingError) -> Int? in
            // The end of the head: an empty line.
            var end = -1
            var i = 0
            let count = raw.count
            while i + 3 < count {
                if raw[i + 3] == 10, raw[i + 2] == 13, raw[i + 1] == 10, raw[i] == 13 {
                    end = i
                    break
                }
                i += 1
            }
            guard end >= 0 else {
                if count > Self.headLimit { throw .unreachable("the upstream's answer head is over 64 KiB") }
                return nil
            }
            try parseHead(UnsafeRawBufferPointer(rebasing: raw[0..<(end + 2)]))
            return end + 4
        }
        return parsed
    }

    /// The status line and header fields (each line ending in CR LF).
    mutating func parseHead(_ raw: UnsafeRawBufferPointer) throws(ForwardingError) {
        var lines: [Range<Int>] = []
        lines.reserveCapacity(12)
        var start = 0
        while start < raw.count, let lf = raw[start...].firstIndex(of: 10) {
            lines.append(start..<(lf > start && raw[lf - 1] == 13 ? lf - 1 : lf))
            start = lf + 1
        }
        // HTTP/1.x SSS reason
        guard let statusLine = lines.first, statusLine.count >= 12,
            raw[statusLine].starts(with: "HTTP/1.".utf8), raw[statusLine.lowerBound + 8] == 32,
            raw[(statusLine.lowerBound + 9)..<(statusLine.lowerBound + 12)].allSatisfy({ $0 >= 48 && $0 <= 57 })
        else { throw .unreachable("the upstream did not answer with HTTP/1.x") }
        let code = raw[(statusLine.lowerBound + 9)..<(statusLine.lowerBound + 12)].reduce(0) { $0 * 10 + Int($1 - 48) }
        let http10 = raw[statusLine.lowerBound + 7] == 48
        var length: Int?
        var chunked = false
        var encoded = false
        var close = http10
        var type: String?
        var retry: String?
        for line in lines.dropFirst() {
            guard let colon = raw[line].firstIndex(of: 58) else { throw .unreachable("the upstream sent a header line without a colon") }
            var v0 = colon + 1
            var v1 = line.upperBound
            while v0 < v1, raw[v0] == 32 || raw[v0] == 9 { v0 += 1 }
            while v1 > v0, raw[v1 - 1] == 32 || raw[v1 - 1] == 9 { v1 -= 1 }
            let name = line.lowerBound..<colon
            let value = raw[v0..<v1]
            if Self.named(name, "content-length", raw) {
                guard value.count > 0, value.count <= 18, value.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    throw .unreachable("the upstream sent a bad Content-Length")
                }
                let n = value.reduce(0) { $0 * 10 + Int($1 - 48) }
                guard length == nil || length == n else { throw .unreachable("the upstream sent two Content-Lengths") }
                length = n
            } else if Self.named(name, "content-type", raw) {
                type = String(decoding: value, as: UTF8.self)
            } else if Self.named(name, "retry-after", raw) {
                retry = String(decoding: value, as: UTF8.self)
            } else if Self.named(name, "retry-after-ms", raw) {
                retry = "ms:" + String(decoding: value, as: UTF8.self)
            } else if Self.named(name, "transfer-encoding", raw) {
                encoded = true
                chunked = Self.tokens(value).last == "chunked"
            } else if Self.named(name, "connection", raw) {
                let tokens = Self.tokens(value)
                if tokens.contains("close") { close = true }
                if http10, tokens.contains("keep-alive") { close = false }
            }
        }
        if (100..<200).contains(code) {
            // An interim answer (100 Continue, 103 Early Hints): the real one follows.
            guard code != 101 else { throw .unreachable("the upstream switched protocols") }
            return
        }
        status = code
        contentType = type
        retryAfter = retry
        keepAlive = !close
        if code == 204 || code == 304 {
            state = .body(.length(0))
        } else if encoded {
            // Chunked as the last coding frames the body; any other coding runs to the close.
            state = .body(chunked ? .chunked : .untilClose)
            if !chunked { keepAlive = false }
        } else if let length {
            guard length <= limit else { throw .tooLarge }
            state = .body(.length(length))
        } else {
            state = .body(.untilClose)
            keepAlive = false
        }
    }

    static func named(_ range: Range<Int>, _ lowercase: StaticString, _ raw: UnsafeRawBufferPointer) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let want = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return zip(raw[range], want).allSatisfy { a, b in (a >= 65 && a <= 90 ? a + 32 : a) == b }
    }

    /// A comma-separated list, lowercased, each item trimmed.
    static func tokens(_ value: Slice<UnsafeRawBufferPointer>) -> [String] {
        value.split(separator: 44).map { item in
            String(decoding: item, as: UTF8.self).lowercased().filter { $0 != " " && $0 != "\t" }
        }
    }
}
