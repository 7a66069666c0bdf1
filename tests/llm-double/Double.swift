// The machinery shared by the provider routes of the LLM test double: its state (id counter,
// per-model request counters, the ring of recorded requests), the authentication check, the
// behaviours selected by the model name, and the providers' error answers.
import Foundation
import Hummingbird
import Synchronization

/// The key the provider routes require: env LLM_DOUBLE_KEY, default `test-key`.
let apiKey = ProcessInfo.processInfo.environment["LLM_DOUBLE_KEY"] ?? "test-key"

typealias HeaderName = HTTPFields.Element.Name

extension HeaderName {
    static let apiKey = HeaderName("api-key")!
    static let xAPIKey = HeaderName("x-api-key")!
    static let rateLimitRemaining = HeaderName("x-ratelimit-remaining-requests")!
}

/// The double's mutable state. The hot path takes one atomic add (ids) and one short lock (append
/// to the ring); the per-model counters are only touched for `flaky-` and `retry-after-` models.
final class DoubleState: Sendable {
    static let shared = DoubleState()
    static let ringSize = 100

    private let ids = Atomic<Int>(0)
    private let counters = Mutex<[String: Int]>([:])
    private let ring = Mutex<(items: [JSON], next: Int)>(([], 0))
    /// Streams written to their end, and streams whose client went away before it.
    private let streams = Mutex<(completed: Int, aborted: Int)>((0, 0))

    func streamEnded(completed: Bool) {
        streams.withLock { s in if completed { s.completed += 1 } else { s.aborted += 1 } }
    }

    func streamCounts() -> (completed: Int, aborted: Int) { streams.withLock { $0 } }

    /// A fresh number for `chatcmpl-N`, `call_N`, `msg_N`, `toolu_N`.
    func nextID() -> Int { ids.wrappingAdd(1, ordering: .relaxed).newValue }

    /// Counts one more request for this exact model name; returns its 1-based number.
    func count(_ model: String) -> Int {
        counters.withLock { counters in
            counters[model, default: 0] += 1
            return counters[model]!
        }
    }

    func record(_ request: JSON) {
        ring.withLock { ring in
            if ring.items.count < Self.ringSize { ring.items.append(request) } else { ring.items[ring.next] = request }
            ring.next = (ring.next + 1) % Self.ringSize
        }
    }

    /// The recorded requests, oldest first.
    func recorded() -> [JSON] {
        ring.withLock { ring in Array(ring.items[ring.next...] + ring.items[..<ring.next]) }
    }

    func reset() {
        counters.withLock { $0.removeAll() }
        ring.withLock { $0 = ([], 0) }
        streams.withLock { $0 = (0, 0) }
    }
}

// MARK: Authentication

/// How a provider expects the key: OpenAI `Authorization: Bearer`, Azure `api-key`, Anthropic `x-api-key`.
enum KeyStyle {
    case bearer, azure, anthropic

    var dialect: Dialect { self == .anthropic ? .anthropic : .openAI }
}

let authHeaderNames: Set<String> = ["authorization", "api-key", "x-api-key"]

/// Receives a provider request: reads the body and records the request for `GET /double/requests`
/// (method, path, query, headers with the auth headers' values replaced by "present", the auth
/// headers' names, whether the key was right, the model, and the body: JSON as sent, else a string);
/// then refuses a wrong key (401), and unless `bodyless`, a body that is not a JSON object or has
/// no model (400). `deployment` is the Azure deployment, which stands for the model.
func receive(_ request: Request, keys: KeyStyle, deployment: String? = nil, bodyless: Bool = false)
    async throws -> (body: [String: Any], model: String)
{
    let body = try await request.body.collect(upTo: 16 << 20)
    let json = parseObject(body)
    let authorized =
        switch keys {
        case .bearer: request.headers[.authorization] == "Bearer \(apiKey)"
        case .azure: request.headers[.apiKey] == apiKey
        case .anthropic: request.headers[.xAPIKey] == apiKey
        }
    var headers: [(String, JSON)] = []
    var authHeaders: [JSON] = []
    for field in request.headers {
        let name = field.name.canonicalName
        if authHeaderNames.contains(name) {
            authHeaders.append(.string(name))
            headers.append((name, "present"))  // never the key itself
        } else if let i = headers.firstIndex(where: { $0.0 == name }), case .string(let value) = headers[i].1 {
            headers[i].1 = .string(value + ", " + field.value)
        } else {
            headers.append((name, .string(field.value)))
        }
    }
    DoubleState.shared.record([
        "method": .string(request.method.rawValue), "path": .string(request.uri.path),
        "query": .string(request.uri.query ?? ""), "headers": .object(headers), "auth_headers": .array(authHeaders),
        "authorized": .bool(authorized), "model": .string(or: deployment ?? json?["model"] as? String),
        "body": json != nil ? .raw(body) : .string(String(buffer: body)),
    ])
    guard authorized else { throw Refusal(unauthorized(keys.dialect)) }
    if bodyless { return ([:], "") }
    guard let json else { throw Refusal(badRequest(keys.dialect, "The request body is not a valid JSON object.")) }
    guard let model = deployment ?? json["model"] as? String, !model.isEmpty else {
        throw Refusal(badRequest(keys.dialect, "model: you must provide a model parameter"))
    }
    return (json, model)
}

// MARK: Errors

/// An error answer thrown from a handler; the router sends it as it is (and logs nothing).
struct Refusal: HTTPResponseError {
    let answer: Response
    init(_ answer: Response) { self.answer = answer }
    var status: HTTPResponse.Status { answer.status }
    func response(from request: Request, context: some RequestContext) throws -> Response { answer }
}

/// Whose error shape to answer with.
enum Dialect { case openAI, anthropic }

/// An error answer in the provider's shape. 429 and 503 carry `Retry-After`.
func errorResponse(_ dialect: Dialect, status: Int, message: String, code: String? = nil, retryAfter: Int? = nil)
    -> Response
{
    var headers: HTTPFields = [.contentType: "application/json"]
    if let seconds = retryAfter ?? (status == 429 || status == 503 ? 1 : nil) {
        headers[.retryAfter] = String(seconds)
    }
    let body: JSON
    switch dialect {
    case .openAI:
        if status == 429 { headers[.rateLimitRemaining] = "0" }
        let type = status == 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error"
        let code = code ?? (status == 429 ? "rate_limit_exceeded" : nil)
        body = ["error": ["message": .string(message), "type": .string(type), "param": nil, "code": .string(or: code)]]
    case .anthropic:
        let type = anthropicErrorTypes[status] ?? (status >= 500 ? "api_error" : "invalid_request_error")
        body = ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
    }
    return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: body.buffer))
}

let anthropicErrorTypes = [
    401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error",
]

func unauthorized(_ dialect: Dialect) -> Response {
    dialect == .openAI
        ? errorResponse(.openAI, status: 401, message: "Incorrect API key provided", code: "invalid_api_key")
        : errorResponse(.anthropic, status: 401, message: "invalid x-api-key")
}

func badRequest(_ dialect: Dialect, _ message: String) -> Response {
    errorResponse(dialect, status: 400, message: message)
}

// MARK: Behaviour on demand

/// What the model name asks of the double. The name is read as dash-separated words, and these
/// directives are recognised wherever they appear (so they combine, e.g. `slow-200-stream-slow-50`):
///   fail-<status>              always answer <status>
///   flaky-<n>-<status>         the first n requests for this model name answer <status>
///   retry-after-<secs>-<n>     the first n requests answer 429 with `Retry-After: <secs>`
///   slow-<ms>                  wait <ms> before answering
///   stream-slow-<ms>           wait <ms> between stream events
struct Behaviour {
    var fail: Int?
    var flaky: (count: Int, status: Int)?
    var retryAfter: (seconds: Int, count: Int)?
    var slowMS = 0
    var streamSlowMS = 0

    init(model: String) {
        // Ordinary names ("echo-1", "gpt-4o") have none of the directive words: skip the parse.
        guard model.contains("fail") || model.contains("flaky") || model.contains("slow") || model.contains("retry")
        else { return }
        let words = model.split(separator: "-")
        func number(_ i: Int) -> Int? { i < words.count ? Int(words[i]) : nil }
        func status(_ i: Int) -> Int? { number(i).flatMap { (400...599).contains($0) ? $0 : nil } }
        var i = 0
        while i < words.count {
            switch words[i] {
            case "fail":
                if let s = status(i + 1) { fail = s; i += 1 }
            case "flaky":
                if let n = number(i + 1), let s = status(i + 2) { flaky = (n, s); i += 2 }
            case "retry" where i + 1 < words.count && words[i + 1] == "after":
                if let s = number(i + 2), let n = number(i + 3) { retryAfter = (s, n); i += 3 }
            case "stream" where i + 1 < words.count && words[i + 1] == "slow":
                if let ms = number(i + 2) { streamSlowMS = ms; i += 2 }
            case "slow":
                if let ms = number(i + 1) { slowMS = ms; i += 1 }
            default: break
            }
            i += 1
        }
    }

    /// Reads the model name, sleeps for `slow-`, then throws the error it asks for, if any.
    static func apply(model: String, dialect: Dialect) async throws -> Behaviour {
        let behaviour = Behaviour(model: model)
        if behaviour.slowMS > 0 { try await Task.sleep(for: .milliseconds(behaviour.slowMS)) }
        func failure(_ status: Int) -> Refusal {
            Refusal(errorResponse(dialect, status: status, message: "double: failing on demand with \(status)"))
        }
        if let status = behaviour.fail { throw failure(status) }
        guard behaviour.flaky != nil || behaviour.retryAfter != nil else { return behaviour }
        let n = DoubleState.shared.count(model)
        if let flaky = behaviour.flaky, n <= flaky.count { throw failure(flaky.status) }
        if let retryAfter = behaviour.retryAfter, n <= retryAfter.count {
            let seconds = retryAfter.seconds
            throw Refusal(
                errorResponse(
                    dialect, status: 429, message: "double: rate limited on demand, retry after \(seconds)s",
                    retryAfter: seconds))
        }
        return behaviour
    }
}

/// What the double answers from in a chat: the word count of all the messages' texts (and of the
/// system prompt), and the text of the last user message.
struct Prompt {
    var words = 0
    var lastUserText = ""

    init(_ messages: [Any], system: Any? = nil) {
        words = wordCount(textOf(system))
        for case let message as [String: Any] in messages {
            let text = textOf(message["content"])
            words += wordCount(text)
            if message["role"] as? String == "user" { lastUserText = text }
        }
    }
}

/// The answer to a prompt: "echo: " + the last user text, cut to `limit` words.
struct Answer {
    let pieces: [Substring]
    let truncated: Bool

    init(lastUserText: String, limit: Int?) {
        let all = wordPieces("echo: " + lastUserText)
        truncated = limit.map { $0 >= 0 && all.count > $0 } ?? false
        pieces = truncated ? Array(all.prefix(limit ?? 0)) : all
    }

    var text: String { pieces.joined() }
    var words: Int { pieces.count }
}

/// A text/event-stream response that writes each event as it goes, `gapMS` apart. A client that
/// goes away makes a write throw, which ends this response only.
func eventStream(_ events: [ByteBuffer], gapMS: Int) -> Response {
    Response(
        status: .ok,
        headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
        body: ResponseBody { writer in
            do {
                for (i, event) in events.enumerated() {
                    if i > 0 && gapMS > 0 { try await Task.sleep(for: .milliseconds(gapMS)) }
                    try await writer.write(event)
                }
                try await writer.finish(nil)
            } catch {
                DoubleState.shared.streamEnded(completed: false)
                throw error
            }
            DoubleState.shared.streamEnded(completed: true)
        })
}

func jsonResponse(_ body: JSON) -> Response {
    Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body.buffer))
}

/// Seconds since 1970, for `created`.
func now() -> Int { Int(Date().timeIntervalSince1970) }
