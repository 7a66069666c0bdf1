import Foundation
import LoomCore

/// A provider with its key read (from the environment or the secrets file) when the gateway's
/// table was built. The key stays in memory; it is never logged or stored.
public struct ResolvedProvider: Sendable {
    public let spec: ProviderSpec
    let key: String?
    /// Why the key could not be read (a call to the provider then fails with 503 naming it).
    let keyProblem: String?

    init(spec: ProviderSpec, secrets: SecretSource) {
        self.spec = spec
        if let env = spec.apiKeyEnv {
            key = secrets.environment(env)
            keyProblem = key == nil ? "provider \(spec.name): the environment variable \(env) that holds its key is not set" : nil
        } else if let entry = spec.apiKeySecret {
            key = secrets.secret(entry)
            keyProblem = key == nil ? "provider \(spec.name): the secrets file has no entry \(entry)" : nil
        } else {
            key = nil
            keyProblem = nil
        }
        authHeaders = ProviderAdapter.authHeaders(spec.kind, key: key)
    }

    /// `content-type` and the key's header, made once (not per call).
    let authHeaders: [(String, String)]
}

/// Tokens a call used, as the provider reported them.
public struct TokenUsage: Sendable, Equatable {
    public var prompt: Int64
    public var completion: Int64

    public init(prompt: Int64 = 0, completion: Int64 = 0) {
        self.prompt = prompt
        self.completion = completion
    }

    public var total: Int64 { prompt + completion }

    /// OpenAI's `usage` object (`prompt_tokens`, `completion_tokens`); Anthropic's
    /// (`input_tokens`, `output_tokens`).
    init?(_ value: JSONValue?) {
        guard let value, case .object(let o) = value else { return nil }
        func n(_ k: String) -> Int64? { o[k]?.doubleValue.map { Int64($0) } }
        if let p = n("prompt_tokens") ?? n("input_tokens") {
            self.init(prompt: p, completion: n("completion_tokens") ?? n("output_tokens") ?? 0)
        } else if let c = n("completion_tokens") ?? n("output_tokens") {
            self.init(prompt: 0, completion: c)
        } else {
            return nil
        }
    }
}

/// A client's request bytes, read once (without building values) for what can be passed on as
/// written: where its `model` is, for the provider's copy, and where its content (`messages` or
/// `input`) is, for the trace. A range is nil when the member is not named exactly once or the
/// bytes are not valid UTF-8 (what the policies read must be what the provider gets).
struct RawRequest: Sendable {
    let bytes: [UInt8]
    let model: Range<Int>?
    let content: Range<Int>?

    /// What is looked for in a chat or embeddings request (made once, not per call).
    static let chatMembers: [String: JSONValue.MemberMode] = ["model": .count, "messages": .count]
    static let embeddingsMembers: [String: JSONValue.MemberMode] = ["model": .count, "input": .count]

    init(_ bytes: [UInt8], content key: String) {
        self.bytes = bytes
        let wanted = key == "messages" ? Self.chatMembers : key == "input" ? Self.embeddingsMembers : ["model": .count, key: .count]
        let found = try? JSONValue.members(bytes, wanted)
        let utf8 = bytes.allSatisfy { $0 < 0x80 } || String(validating: bytes, as: UTF8.self) != nil
        func once(_ name: String) -> Range<Int>? {
            guard utf8, let m = found?[name], m.occurrences == 1 else { return nil }
            return m.range
        }
        model = once("model")
        content = once(key)
    }
}

/// One HTTP call to a provider.
struct UpstreamCall: Sendable {
    var url: String
    var headers: [(String, String)]
    var body: [UInt8]
}

/// Translates between the gateway's API (OpenAI's) and each provider's: the URL, the key's
/// header, the body (Anthropic's Messages API differs), and the answer back.
enum ProviderAdapter {
    static func pathComponent(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    static func authHeaders(_ provider: ResolvedProvider) -> [(String, String)] { provider.authHeaders }

    static func authHeaders(_ kind: ProviderSpec.Kind, key: String?) -> [(String, String)] {
        var headers: [(String, String)] = [("content-type", "application/json")]
        guard let key else { return headers }
        switch kind {
        case .openai, .openaiCompatible: headers.append(("authorization", "Bearer " + key))
        case .azureOpenAI: headers.append(("api-key", key))
        case .anthropic:
            headers.append(("x-api-key", key))
        }
        return headers
    }

    /// The client's own request bytes with only the model's name replaced, when that can be done
    /// exactly (`RawRequest.model`). Nil: write the parsed body instead.
    static func withModel(_ raw: RawRequest, _ model: String) -> [UInt8]? {
        guard let range = raw.model else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(raw.bytes.count + model.utf8.count)
        out.append(contentsOf: raw.bytes[..<range.lowerBound])
        JSONValue.writeString(model, into: &out)
        out.append(contentsOf: raw.bytes[range.upperBound...])
        return out
    }

    /// A chat completion request (the client's body with the provider's model) for `provider`:
    /// the client's bytes (`raw`) with the model's name replaced when they can be sent as they
    /// are, else the parsed body written again.
    static func chat(_ body: [String: JSONValue], raw: RawRequest? = nil, model: String, stream: Bool, provider: ResolvedProvider) -> UpstreamCall {
        let spec = provider.spec
        var headers = authHeaders(provider)
        switch spec.kind {
        case .anthropic:
            headers.append(("anthropic-version", spec.anthropicVersion))
            return UpstreamCall(url: spec.baseURL + "/v1/messages", headers: headers, body: AnthropicTranslation.request(body, model: model, stream: stream).jsonBytes)
        case .openai, .openaiCompatible, .azureOpenAI:
            let url = spec.kind == .azureOpenAI
                ? "\(spec.baseURL)/openai/deployments/\(pathComponent(model))/chat/completions?api-version=\(pathComponent(spec.apiVersion ?? ProviderSpec.defaultAzureAPIVersion))"
                : spec.baseURL + "/chat/completions"
            // A stream's request asks for the usage chunk, so it is always written again.
            if !stream, let bytes = raw.flatMap({ withModel($0, model) }) { return UpstreamCall(url: url, headers: headers, body: bytes) }
            var b = body
            b["model"] = .string(model)
            if stream {
                // Ask for the usage chunk: tokens are counted from it (and it is not passed on
                // to a client that did not ask for it).
                var options = b["stream_options"]?.objectValue ?? [:]
                options["include_usage"] = .bool(true)
                b["stream_options"] = .object(options)
            }
            return UpstreamCall(url: url, headers: headers, body: JSONValue.object(b).jsonBytes)
        }
    }

    static func embeddings(_ body: [String: JSONValue], raw: RawRequest? = nil, model: String, provider: ResolvedProvider) -> UpstreamCall {
        let spec = provider.spec
        let url = spec.kind == .azureOpenAI
            ? "\(spec.baseURL)/openai/deployments/\(pathComponent(model))/embeddings?api-version=\(pathComponent(spec.apiVersion ?? ProviderSpec.defaultAzureAPIVersion))"
            : spec.baseURL + "/embeddings"
        if let bytes = raw.flatMap({ withModel($0, model) }) { return UpstreamCall(url: url, headers: authHeaders(provider), body: bytes) }
        var b = body
        b["model"] = .string(model)
        return UpstreamCall(url: url, headers: authHeaders(provider), body: JSONValue.object(b).jsonBytes)
    }

    /// The provider's model listing (`loom catalog sync`).
    static func models(_ provider: ResolvedProvider) -> UpstreamCall? {
        let spec = provider.spec
        var headers = authHeaders(provider)
        switch spec.kind {
        case .openai, .openaiCompatible: return UpstreamCall(url: spec.baseURL + "/models", headers: headers, body: [])
        case .anthropic:
            headers.append(("anthropic-version", spec.anthropicVersion))
            return UpstreamCall(url: spec.baseURL + "/v1/models", headers: headers, body: [])
        case .azureOpenAI:
            return UpstreamCall(url: "\(spec.baseURL)/openai/models?api-version=\(pathComponent(spec.apiVersion ?? ProviderSpec.defaultAzureAPIVersion))", headers: headers, body: [])
        }
    }

    /// The provider's error message in a failed answer's body (OpenAI's and Anthropic's shapes;
    /// otherwise the start of the text).
    static func errorMessage(_ body: [UInt8]) -> String {
        if let value = try? JSONValue.parse(body) {
            if let message = value["error"]?["message"]?.stringValue ?? value["error"]?.stringValue ?? value["message"]?.stringValue ?? value["detail"]?.stringValue {
                return message
            }
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "no message" : text
    }
}

/// OpenAI chat completions to and from Anthropic's Messages API.
enum AnthropicTranslation {
    static let defaultMaxTokens: Int64 = 4096

    static func text(_ content: JSONValue?) -> String {
        switch content {
        case .string(let s)?: return s
        case .array(let parts)?: return parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
        default: return ""
        }
    }

    static func blocks(_ content: JSONValue?) -> [JSONValue] {
        switch content {
        case .string(let s)?: return s.isEmpty ? [] : [.object(["type": .string("text"), "text": .string(s)])]
        case .array(let parts)?:
            return parts.compactMap { part -> JSONValue? in
                switch part["type"]?.stringValue {
                case "text": return .object(["type": .string("text"), "text": part["text"] ?? .string("")])
                case "image_url":
                    let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue ?? ""
                    if url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") {
                        let meta = url[url.index(url.startIndex, offsetBy: 5)..<comma]
                        let mediaType = meta.split(separator: ";").first.map(String.init) ?? "image/png"
                        return .object(["type": .string("image"), "source": .object([
                            "type": .string("base64"), "media_type": .string(mediaType), "data": .string(String(url[url.index(after: comma)...])),
                        ])])
                    }
                    return .object(["type": .string("image"), "source": .object(["type": .string("url"), "url": .string(url)])])
                default: return nil
                }
            }
        default: return []
        }
    }

    static func request(_ body: [String: JSONValue], model: String, stream: Bool) -> JSONValue {
        var system: [String] = []
        var messages: [JSONValue] = []
        for message in body["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "user"
            switch role {
            case "system", "developer":
                system.append(text(message["content"]))
            case "assistant":
                var content = blocks(message["content"])
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    let arguments = call["function"]?["arguments"]?.stringValue ?? "{}"
                    let input = (try? JSONValue.parse(Array(arguments.utf8))) ?? .object([:])
                    content.append(.object([
                        "type": .string("tool_use"), "id": call["id"] ?? .string("call"), "name": call["function"]?["name"] ?? .string(""), "input": input,
                    ]))
                }
                messages.append(.object(["role": .string("assistant"), "content": .array(content)]))
            case "tool":
                messages.append(.object(["role": .string("user"), "content": .array([.object([
                    "type": .string("tool_result"), "tool_use_id": message["tool_call_id"] ?? .string(""), "content": .string(text(message["content"])),
                ])])]))
            default:
                messages.append(.object(["role": .string("user"), "content": .array(blocks(message["content"]))]))
            }
        }
        var out: [String: JSONValue] = [
            "model": .string(model),
            "messages": .array(messages),
            "max_tokens": body["max_completion_tokens"] ?? body["max_tokens"] ?? .int(defaultMaxTokens),
        ]
        if !system.isEmpty { out["system"] = .string(system.joined(separator: "\n")) }
        if stream { out["stream"] = .bool(true) }
        for key in ["temperature", "top_p"] where body[key] != nil && body[key] != .null { out[key] = body[key] }
        switch body["stop"] {
        case .string(let s)?: out["stop_sequences"] = .array([.string(s)])
        case .array(let a)?: out["stop_sequences"] = .array(a)
        default: break
        }
        if let tools = body["tools"]?.arrayValue, !tools.isEmpty {
            out["tools"] = .array(tools.map { tool in
                let f = tool["function"] ?? tool
                var t: [String: JSONValue] = ["name": f["name"] ?? .string(""), "input_schema": f["parameters"] ?? .object(["type": .string("object")])]
                if let d = f["description"] { t["description"] = d }
                return .object(t)
            })
            switch body["tool_choice"] {
            case .string("required")?: out["tool_choice"] = .object(["type": .string("any")])
            case .string("none")?: out["tool_choice"] = .object(["type": .string("none")])
            case .object(let o)?:
                if let name = o["function"]?["name"] { out["tool_choice"] = .object(["type": .string("tool"), "name": name]) }
            default: break
            }
        }
        if let user = body["user"]?.stringValue { out["metadata"] = .object(["user_id": .string(user)]) }
        return .object(out)
    }

    static func finishReason(_ stop: String?) -> String {
        switch stop {
        case "max_tokens": return "length"
        case "tool_use": return "tool_calls"
        default: return "stop"
        }
    }

    /// An Anthropic message as an OpenAI chat completion, with its usage.
    static func response(_ message: JSONValue, model: String, created: Int64) -> (JSONValue, TokenUsage?) {
        var texts: [String] = []
        var calls: [JSONValue] = []
        for block in message["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text": texts.append(block["text"]?.stringValue ?? "")
            case "tool_use":
                calls.append(.object([
                    "id": block["id"] ?? .string(""), "type": .string("function"),
                    "function": .object(["name": block["name"] ?? .string(""), "arguments": .string((block["input"] ?? .object([:])).jsonString)]),
                ]))
            default: break
            }
        }
        var reply: [String: JSONValue] = ["role": .string("assistant"), "content": texts.isEmpty && !calls.isEmpty ? .null : .string(texts.joined())]
        if !calls.isEmpty { reply["tool_calls"] = .array(calls) }
        let usage = TokenUsage(message["usage"])
        var out: [String: JSONValue] = [
            "id": message["id"] ?? .string("msg"), "object": .string("chat.completion"), "created": .int(created),
            "model": message["model"] ?? .string(model),
            "choices": .array([.object(["index": .int(0), "message": .object(reply), "finish_reason": .string(finishReason(message["stop_reason"]?.stringValue))])]),
        ]
        if let usage { out["usage"] = OpenAIShapes.usage(usage) }
        return (.object(out), usage)
    }
}

/// Anthropic's stream events as OpenAI chunks, one event at a time.
struct AnthropicStreamTranslator {
    let model: String
    let created: Int64
    var id = "msg"
    var usage = TokenUsage()
    var toolIndex = -1
    var finish: String?

    init(model: String, created: Int64) {
        self.model = model
        self.created = created
    }

    func chunk(_ delta: [String: JSONValue], finish: String? = nil) -> JSONValue {
        .object([
            "id": .string(id), "object": .string("chat.completion.chunk"), "created": .int(created), "model": .string(model),
            "choices": .array([.object(["index": .int(0), "delta": .object(delta), "finish_reason": finish.map { .string($0) } ?? .null])]),
        ])
    }

    /// The OpenAI chunks for one Anthropic event (`data` parsed).
    mutating func translate(_ event: JSONValue) -> [JSONValue] {
        switch event["type"]?.stringValue {
        case "message_start":
            let message = event["message"]
            id = message?["id"]?.stringValue ?? id
            if let u = TokenUsage(message?["usage"]) { usage.prompt = u.prompt }
            return [chunk(["role": .string("assistant"), "content": .string("")])]
        case "content_block_start":
            let block = event["content_block"]
            if block?["type"]?.stringValue == "tool_use" {
                toolIndex += 1
                return [chunk(["tool_calls": .array([.object([
                    "index": .int(Int64(toolIndex)), "id": block?["id"] ?? .string(""), "type": .string("function"),
                    "function": .object(["name": block?["name"] ?? .string(""), "arguments": .string("")]),
                ])])])]
            }
            return []
        case "content_block_delta":
            let delta = event["delta"]
            switch delta?["type"]?.stringValue {
            case "text_delta": return [chunk(["content": delta?["text"] ?? .string("")])]
            case "input_json_delta":
                return [chunk(["tool_calls": .array([.object([
                    "index": .int(Int64(max(toolIndex, 0))), "function": .object(["arguments": delta?["partial_json"] ?? .string("")]),
                ])])])]
            default: return []
            }
        case "message_delta":
            if let u = TokenUsage(event["usage"]) { usage.completion = u.completion }
            finish = AnthropicTranslation.finishReason(event["delta"]?["stop_reason"]?.stringValue)
            return [chunk([:], finish: finish)]
        default:
            return []
        }
    }

    /// The usage chunk OpenAI sends last when asked (`stream_options.include_usage`).
    func usageChunk() -> JSONValue {
        .object([
            "id": .string(id), "object": .string("chat.completion.chunk"), "created": .int(created), "model": .string(model),
            "choices": .array([]), "usage": OpenAIShapes.usage(usage),
        ])
    }
}

enum OpenAIShapes {
    static func usage(_ u: TokenUsage) -> JSONValue {
        .object(["prompt_tokens": .int(u.prompt), "completion_tokens": .int(u.completion), "total_tokens": .int(u.total)])
    }
}
