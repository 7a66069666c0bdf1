import ArgumentParser
import AsyncHTTPClient
import Foundation
import LoomCore
import NIOCore
import NIOHTTP1

/// Where a running Loom server is, for commands that act through its API.
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The server (default http://127.0.0.1:5000). Env: LOOM_SERVER.", valueName: "url")) var server: String?
    @Option(help: ArgumentHelp("An API token (Bearer). Env: LOOM_TOKEN.", valueName: "token")) var token: String?

    func api(required: Bool = false) throws -> ServerAPI {
        let env = ProcessInfo.processInfo.environment
        guard let given = server ?? env["LOOM_SERVER"] ?? (required ? nil : "http://127.0.0.1:5000") else {
            throw LoomError.invalidParameter("--server (or LOOM_SERVER) is required")
        }
        let base = given.hasSuffix("/") ? String(given.dropLast()) : given
        guard let url = URL(string: base), ["http", "https"].contains(url.scheme ?? "") else {
            throw LoomError.invalidParameter("--server must be an http:// or https:// URL, not '\(given)'")
        }
        return ServerAPI(base: base, token: token ?? env["LOOM_TOKEN"])
    }
}

/// Calls a Loom server's HTTP API; an error answer becomes the `LoomError` it stands for (so
/// that exit codes say the same as in-process commands).
struct ServerAPI: Sendable {
    let base: String
    let token: String?
    var client: HTTPClient { .shared }

    func request(_ method: HTTPMethod, _ path: String, json: Any? = nil, body: ByteBuffer? = nil, headers: [(String, String)] = []) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: base + path)
        r.method = method
        if let token { r.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { r.headers.add(name: name, value: value) }
        if let json, let data = try? JSONSerialization.data(withJSONObject: json) {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(bytes: data))
        } else if let body {
            r.body = .bytes(body)
        }
        return r
    }

    /// Sends the request; a status of 400 or more throws.
    func call(
        _ method: HTTPMethod, _ path: String, json: Any? = nil, body: ByteBuffer? = nil, headers: [(String, String)] = []
    ) async throws -> (HTTPResponseStatus, ByteBuffer) {
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request(method, path, json: json, body: body, headers: headers), timeout: .minutes(5))
        } catch {
            throw LoomError.unavailable("cannot reach the Loom server at \(base) (\(error)); start it with `loom server` or give --server")
        }
        let data = try await response.body.collect(upTo: 256 << 20)
        if response.status.code >= 400 { throw Self.error(response.status, data, "\(method) \(path)") }
        return (response.status, data)
    }

    /// The JSON object an answer holds.
    func object(_ method: HTTPMethod, _ path: String, json: Any? = nil) async throws -> [String: Any] {
        let (_, data) = try await call(method, path, json: json)
        return Self.object(data)
    }

    static func object(_ data: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(data.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func error(_ status: HTTPResponseStatus, _ data: ByteBuffer, _ what: String) -> LoomError {
        let message = object(data)["message"] as? String ?? "\(what): \(status.code) \(String(buffer: data).prefix(300))"
        switch status.code {
        case 400, 413: return .invalidParameter(message)
        case 401: return .unauthenticated(message)
        case 403: return .permissionDenied(message)
        case 404: return .notFound(message)
        default: return .unavailable(message)
        }
    }

    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }
}
