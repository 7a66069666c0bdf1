import AsyncHTTPClient
import Crypto
import Foundation
import LoomCore
import NIOCore
import NIOHTTP1

/// Artifacts in an S3-compatible object store (AWS S3, MinIO, Ceph, moto): one object per file
/// under `prefix`, folders implied by `/` in keys. Requests are signed with AWS Signature
/// Version 4; files over `partSize` are uploaded in parts (multipart upload), downloads stream.
/// Path-style addressing (`endpoint/bucket/key`), which every S3-compatible server takes.
public struct S3ArtifactStore: ArtifactStore {
    public struct Credentials: Sendable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    public let endpoint: URL
    public let region: String
    public let bucket: String
    /// Key prefix, without leading or trailing `/` (empty: the bucket's root).
    public let prefix: String
    let credentials: Credentials
    let client: HTTPClient
    /// Bytes per uploaded part (S3's minimum is 5 MiB, but the last part).
    public let partSize: Int

    public init(
        endpoint: URL, region: String, bucket: String, prefix: String, credentials: Credentials, client: HTTPClient = .shared,
        partSize: Int = 8 << 20
    ) throws(LoomError) {
        guard !bucket.isEmpty, bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }) else {
            throw .invalidParameter("invalid S3 bucket name '\(bucket)'")
        }
        guard partSize >= 5 << 20 else { throw .invalidParameter("S3 parts must be at least 5 MiB") }
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
        self.credentials = credentials
        self.client = client
        self.partSize = partSize
    }

    /// `s3://bucket/prefix`.
    public static func parse(_ uri: String) throws(LoomError) -> (bucket: String, prefix: String) {
        guard uri.hasPrefix("s3://") else { throw .invalidParameter("an S3 location is s3://BUCKET/PREFIX, not \(uri)") }
        let rest = uri.dropFirst("s3://".count)
        let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
        guard let bucket = parts.first, !bucket.isEmpty else { throw .invalidParameter("\(uri) names no bucket") }
        return (bucket, parts.count > 1 ? parts[1] : "")
    }

    public var location: String { "s3://\(bucket)\(prefix.isEmpty ? "" : "/" + prefix) at \(endpoint.absoluteString)" }

    func key(_ path: ArtifactPath) -> String {
        [prefix, path.string].filter { !$0.isEmpty }.joined(separator: "/")
    }

    // MARK: Files

    public func write<S: AsyncSequence & Sendable>(_ path: ArtifactPath, from chunks: S, maxBytes: Int64?) async throws -> StoredArtifact
        where S.Element == ByteBuffer {
        guard !path.isRoot else { throw LoomError.invalidParameter("Cannot write to the artifact root") }
        let key = self.key(path)
        var hasher = SHA256()
        var size: Int64 = 0
        var pending = ByteBuffer()
        var uploadID: String?
        var parts: [(Int, String)] = []
        do {
            for try await chunk in chunks {
                size += Int64(chunk.readableBytes)
                if let maxBytes, size > maxBytes { throw LoomError.payloadTooLarge("The upload exceeds \(maxBytes) bytes") }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                var c = chunk
                pending.writeBuffer(&c)
                while pending.readableBytes >= partSize {
                    if uploadID == nil { uploadID = try await startMultipart(key) }
                    let part = pending.readSlice(length: partSize)!
                    parts.append((parts.count + 1, try await uploadPart(key, uploadID!, number: parts.count + 1, part)))
                    pending.discardReadBytes()
                }
            }
            if let uploadID {
                if pending.readableBytes > 0 || parts.isEmpty {
                    parts.append((parts.count + 1, try await uploadPart(key, uploadID, number: parts.count + 1, pending)))
                }
                try await completeMultipart(key, uploadID, parts)
            } else {
                let response = try await send("PUT", key: key, body: pending)
                try Self.check(response, "storing \(path)")
            }
        } catch {
            if let uploadID { _ = try? await send("DELETE", key: key, query: [("uploadId", uploadID)]) }
            throw error
        }
        return StoredArtifact(path: path.string, size: size, digest: "sha256:" + Identifiers.hex(bytes: hasher.finalize()))
    }

    func startMultipart(_ key: String) async throws -> String {
        let response = try await send("POST", key: key, query: [("uploads", "")])
        let body = try Self.check(response, "starting an upload")
        guard let id = XMLValues.parse(body).first(where: { $0.0 == "UploadId" })?.1 else {
            throw LoomError.unavailable("the object store did not start a multipart upload")
        }
        return id
    }

    func uploadPart(_ key: String, _ uploadID: String, number: Int, _ part: ByteBuffer) async throws -> String {
        let response = try await send("PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: part)
        _ = try Self.check(response, "uploading part \(number)")
        guard let etag = response.headers.first(name: "etag") else { throw LoomError.unavailable("the object store gave no ETag for part \(number)") }
        return etag
    }

    func completeMultipart(_ key: String, _ uploadID: String, _ parts: [(Int, String)]) async throws {
        var xml = "<CompleteMultipartUpload>"
        for (n, etag) in parts { xml += "<Part><PartNumber>\(n)</PartNumber><ETag>\(XMLValues.escape(etag))</ETag></Part>" }
        xml += "</CompleteMultipartUpload>"
        let response = try await send("POST", key: key, query: [("uploadId", uploadID)], body: ByteBuffer(string: xml))
        let body = try Self.check(response, "completing an upload")
        // S3 can answer 200 with an error document.
        if XMLValues.parse(body).contains(where: { $0.0 == "Error" || $0.0 == "Code" }) {
            throw LoomError.unavailable("the object store refused to complete the upload: \(String(buffer: body).prefix(300))")
        }
    }

    public func fileSize(_ path: ArtifactPath) async throws -> Int64? {
        guard !path.isRoot else { return nil }
        let response = try await send("HEAD", key: key(path))
        if response.status == .notFound { return nil }
        _ = try Self.check(response, "reading \(path)")
        return response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
    }

    public func read(_ path: ArtifactPath, from offset: Int64, chunkSize: Int, _ consume: (ByteBuffer) async throws -> Void) async throws {
        guard offset >= 0 else { throw LoomError.invalidParameter("A read cannot start before the file's start") }
        var request = try signedRequest("GET", key: key(path), query: [], body: nil)
        if offset > 0 { request.headers.add(name: "Range", value: "bytes=\(offset)-") }  // need not be signed
        let response = try await client.execute(request, timeout: .hours(1))
        if response.status == .notFound { throw LoomError.notFound("No artifact at '\(path)'") }
        if response.status == .rangeNotSatisfiable { return }  // at or past the end
        guard response.status.code / 100 == 2 else {
            let body = try await response.body.collect(upTo: 64 << 10)
            throw Self.failure(response.status, body, "reading \(path)")
        }
        for try await chunk in response.body { try await consume(chunk) }
    }

    public func list(_ path: ArtifactPath) async throws -> [ArtifactEntry] {
        let base = key(path)
        let listed = try await listKeys(prefix: base.isEmpty ? "" : base + "/", delimiter: true)
        let root = prefix.isEmpty ? "" : prefix + "/"
        var entries: [ArtifactEntry] = []
        for folder in listed.folders {
            let rel = String(folder.dropFirst(root.count).dropLast())  // without the trailing /
            entries.append(ArtifactEntry(path: rel, isDirectory: true, size: nil))
        }
        for (k, size) in listed.files {
            entries.append(ArtifactEntry(path: String(k.dropFirst(root.count)), isDirectory: false, size: size))
        }
        return entries.sorted { $0.path < $1.path }
    }

    public func delete(_ path: ArtifactPath) async throws {
        guard !path.isRoot else { throw LoomError.invalidParameter("Cannot delete the artifact root") }
        let k = key(path)
        var keys = try await listKeys(prefix: k + "/", delimiter: false).files.map(\.0)
        if try await fileSize(path) != nil { keys.append(k) }
        guard !keys.isEmpty else { throw LoomError.notFound("No artifact at '\(path)'") }
        for key in keys {
            let response = try await send("DELETE", key: key)
            if response.status != .notFound { _ = try Self.check(response, "deleting \(path)") }
        }
    }

    public func digest(_ path: ArtifactPath) async throws -> StoredArtifact {
        try await digestByReading(path)
    }

    /// ListObjectsV2, every page: keys with sizes, and (with `delimiter`) the folders one level down.
    func listKeys(prefix: String, delimiter: Bool) async throws -> (files: [(String, Int64)], folders: [String]) {
        var files: [(String, Int64)] = []
        var folders: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if delimiter { query.append(("delimiter", "/")) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await send("GET", key: "", query: query)
            let values = XMLValues.parse(try Self.check(response, "listing \(prefix)"))
            token = nil
            var inPrefixes = false
            var currentKey: String?
            for (name, value) in values {
                switch name {
                case "CommonPrefixes": inPrefixes = true
                case "Contents": inPrefixes = false
                case "Prefix" where inPrefixes: folders.append(value)
                case "Key": currentKey = value
                case "Size": if let k = currentKey { files.append((k, Int64(value) ?? 0)); currentKey = nil }
                case "NextContinuationToken": token = value
                default: break
                }
            }
        } while token != nil
        return (files, folders)
    }

    // MARK: Requests

    /// An answer read whole (S3's answers but object downloads are small XML documents).
    struct Reply {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    func send(_ method: String, key: String, query: [(String, String)] = [], body: ByteBuffer? = nil) async throws -> Reply {
        let request = try signedRequest(method, key: key, query: query, body: body)
        let response = try await client.execute(request, timeout: .minutes(10))
        let collected = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: response.status, headers: response.headers, body: collected)
    }

    @discardableResult
    static func check(_ response: Reply, _ what: String) throws -> ByteBuffer {
        guard response.status.code / 100 == 2 else { throw failure(response.status, response.body, what) }
        return response.body
    }

    static func failure(_ status: HTTPResponseStatus, _ body: ByteBuffer, _ what: String) -> LoomError {
        let values = XMLValues.parse(body)
        let code = values.first { $0.0 == "Code" }?.1 ?? "HTTP \(status.code)"
        let message = values.first { $0.0 == "Message" }?.1 ?? ""
        return .unavailable("the object store failed \(what): \(code)\(message.isEmpty ? "" : ": \(message)")")
    }

    /// A request signed with AWS Signature Version 4 (the payload's SHA-256 in
    /// `x-amz-content-sha256`).
    func signedRequest(_ method: String, key: String, query: [(String, String)], body: ByteBuffer?, date: Date = Date()) throws -> HTTPClientRequest {
        let path = "/" + Self.encode(bucket, slash: false) + (key.isEmpty ? "/" : "/" + Self.encode(key, slash: true))
        var pairs: [(String, String)] = query.map { pair in (Self.encode(pair.0, slash: false), Self.encode(pair.1, slash: false)) }
        pairs.sort { a, b in a.0 != b.0 ? a.0 < b.0 : a.1 < b.1 }
        let canonicalQuery = pairs.map { pair in pair.0 + "=" + pair.1 }.joined(separator: "&")
        var host = endpoint.host ?? "localhost"
        if let port = endpoint.port { host += ":\(port)" }
        let payloadHash = Identifiers.hex(bytes: SHA256.hash(data: body.map { Data($0.readableBytesView) } ?? Data()))
        let amzDate = Self.amzDate(date)
        var headers: [(String, String)] = [("host", host), ("x-amz-content-sha256", payloadHash), ("x-amz-date", amzDate)]
        if let token = credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let (signedHeaders, signature, scope) = Self.signature(
            method: method, path: path, query: canonicalQuery, headers: headers, payloadHash: payloadHash, amzDate: amzDate, region: region,
            secret: credentials.secretAccessKey)
        headers.sort { $0.0 < $1.0 }
        var base = endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        var request = HTTPClientRequest(url: base + path + (canonicalQuery.isEmpty ? "" : "?" + canonicalQuery))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers where name != "host" { request.headers.add(name: name, value: value) }
        request.headers.add(
            name: "Authorization",
            value: "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)")
        if let body {
            request.body = HTTPClientRequest.Body.bytes(body)
        }
        return request
    }

    /// `x-amz-date`: `yyyyMMdd'T'HHmmss'Z'` in UTC. FoundationEssentials' ISO 8601 style writes
    /// it without ICU (a `DateFormatter` per request loaded ICU's tables).
    static func amzDate(_ date: Date) -> String { date.formatted(amzDateStyle) }

    static let amzDateStyle = Date.ISO8601FormatStyle(dateSeparator: .omitted, dateTimeSeparator: .standard, timeSeparator: .omitted, timeZone: .gmt)

    /// Signature Version 4 of a request: its signed header names, the signature, and the
    /// credential scope. `path` and `query` are canonical already (encoded, the query sorted).
    public static func signature(
        method: String, path: String, query: String, headers: [(String, String)], payloadHash: String, amzDate: String, region: String,
        secret: String
    ) -> (signedHeaders: String, signature: String, scope: String) {
        let sorted = headers.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }.sorted { $0.0 < $1.0 }
        let signedHeaders = sorted.map(\.0).joined(separator: ";")
        let canonical = [method, path, query, sorted.map { "\($0.0):\($0.1)\n" }.joined(), signedHeaders, payloadHash].joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/s3/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Identifiers.hex(bytes: SHA256.hash(data: Data(canonical.utf8)))].joined(separator: "\n")
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key))
        }
        var signingKey = SymmetricKey(data: Data("AWS4\(secret)".utf8))
        for part in [day, region, "s3", "aws4_request"] { signingKey = hmac(signingKey, part) }
        let signature = Identifiers.hex(bytes: HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey))
        return (signedHeaders, signature, scope)
    }

    /// Creates the bucket (for tests and first setups; an existing one of the caller's is fine).
    public func createBucket() async throws {
        let response = try await send("PUT", key: "")
        if response.status.code / 100 == 2 || XMLValues.parse(response.body).contains(where: { $0.1 == "BucketAlreadyOwnedByYou" }) { return }
        throw Self.failure(response.status, response.body, "creating bucket \(bucket)")
    }

    /// RFC 3986 percent-encoding as SigV4 wants it (unreserved characters kept; `/` kept in keys).
    static func encode(_ text: String, slash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(UnicodeScalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == "." || c == "~" || (slash && c == "/")) {
                out.append(c)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
