// The OpenAI (and Azure OpenAI) routes of the LLM test double: models, chat completions (plain,
// streamed, tool calls) and embeddings. Azure is the same API under
// /openai/deployments/{deployment}/..., keyed with `api-key`, and its deployment is the model.
import Foundation
import Hummingbird

let modelIDs = ["echo-1", "echo-2", "embed-1", "embed-bow", "tool-1", "claude-echo"]

/// `GET /v1/models`.
func listModels(_ request: Request) async throws -> Response {
    _ = try await receive(request, keys: .bearer, bodyless: true)
    let models: [JSON] = modelIDs.map {
        ["id": .string($0), "object": "model", "created": 1_700_000_000, "owned_by": "double"]
    }
    return jsonResponse(["object": "list", "data": .array(models)])
}

/// `POST /v1/chat/completions` and Azure's `POST /openai/deployments/{deployment}/chat/completions`.
func chatCompletions(_ request: Request, keys: KeyStyle, deployment: String? = nil) async throws -> Response {
    let (body, model) = try await receive(request, keys: keys, deployment: deployment)
    guard let messages = body["messages"] as? [Any], !messages.isEmpty else {
        return badRequest(.openAI, "'messages' is a required property and must be a non-empty array")
    }
    let behaviour = try await Behaviour.apply(model: model, dialect: .openAI)

    let prompt = Prompt(messages)
    let id = DoubleState.shared.nextID()
    let created = now()

    // The answer: a call of the chosen tool, or the echo of the last user message; and its deltas.
    let message: JSON
    let deltas: [JSON]
    let finishReason: String
    let completionTokens: Int
    if let tool = chosenTool(body) {
        let arguments = JSON.object([("echo", .string(prompt.lastUserText))]).text
        let call: [(String, JSON)] = [
            ("id", .string("call_\(id)")), ("type", "function"),
            ("function", ["name": .string(tool), "arguments": .string(arguments)]),
        ]
        message = ["role": "assistant", "content": nil, "tool_calls": [.object(call)]]
        deltas = [["tool_calls": [.object([("index", 0)] + call)]]]
        finishReason = "tool_calls"
        completionTokens = wordCount(arguments)
    } else {
        let limit = intValue(body["max_completion_tokens"]) ?? intValue(body["max_tokens"])
        let answer = Answer(lastUserText: prompt.lastUserText, limit: limit)
        message = ["role": "assistant", "content": .string(answer.text)]
        deltas = answer.pieces.map { ["content": .string(String($0))] }
        finishReason = answer.truncated ? "length" : "stop"
        completionTokens = answer.words
    }
    let usage: JSON = [
        "prompt_tokens": .int(prompt.words), "completion_tokens": .int(completionTokens),
        "total_tokens": .int(prompt.words + completionTokens),
    ]
    guard body["stream"] as? Bool == true else {
        return jsonResponse([
            "id": .string("chatcmpl-\(id)"), "object": "chat.completion", "created": .int(created),
            "model": .string(model),
            "choices": [["index": 0, "message": message, "logprobs": nil, "finish_reason": .string(finishReason)]],
            "usage": usage,
        ])
    }

    // Streamed: role, then one delta per word (or the whole tool call), finish, usage, [DONE].
    func event(_ choices: JSON, usage: JSON? = nil) -> ByteBuffer {
        var members: [(String, JSON)] = [
            ("id", .string("chatcmpl-\(id)")), ("object", "chat.completion.chunk"), ("created", .int(created)),
            ("model", .string(model)), ("choices", choices),
        ]
        if let usage { members.append(("usage", usage)) }
        return ByteBuffer(bytes: Array("data: ".utf8) + JSON.object(members).bytes + Array("\n\n".utf8))
    }
    func chunk(_ delta: JSON, finish: String? = nil) -> ByteBuffer {
        event([["index": 0, "delta": delta, "logprobs": nil, "finish_reason": .string(or: finish)]])
    }
    var events = [chunk(["role": "assistant", "content": ""])] + deltas.map { chunk($0) }
    events.append(chunk([:], finish: finishReason))
    if (body["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true {
        events.append(event([], usage: usage))
    }
    events.append(ByteBuffer(string: "data: [DONE]\n\n"))
    return eventStream(events, gapMS: behaviour.streamSlowMS)
}

/// The function to call: none without `tools` or with `tool_choice: "none"`; the one that
/// `tool_choice` names; else the first tool's.
private func chosenTool(_ body: [String: Any]) -> String? {
    guard let tools = body["tools"] as? [Any], !tools.isEmpty else { return nil }
    let choice = body["tool_choice"]
    if choice as? String == "none" { return nil }
    if let named = ((choice as? [String: Any])?["function"] as? [String: Any])?["name"] as? String { return named }
    return ((tools.first as? [String: Any])?["function"] as? [String: Any])?["name"] as? String ?? "tool"
}

/// `POST /v1/embeddings` and Azure's `POST /openai/deployments/{deployment}/embeddings`.
func embeddings(_ request: Request, keys: KeyStyle, deployment: String? = nil) async throws -> Response {
    let (body, model) = try await receive(request, keys: keys, deployment: deployment)
    guard let inputs = embeddingInputs(body["input"]) else {
        return badRequest(.openAI, "'input' must be a string, an array of strings or an array of token arrays")
    }
    // `embed-bow-64` and the like: the model's name gives its dimensions.
    let named = model.hasPrefix("embed-bow-") ? Int(model.dropFirst("embed-bow-".count)) : nil
    let dimensions = intValue(body["dimensions"]) ?? named ?? 8
    guard (1...65536).contains(dimensions) else { return badRequest(.openAI, "'dimensions' must be 1 to 65536") }
    let base64 = body["encoding_format"] as? String == "base64"
    _ = try await Behaviour.apply(model: model, dialect: .openAI)

    var data: [JSON] = []
    var tokens = 0
    for (i, text) in inputs.enumerated() {
        let vector = model.hasPrefix("embed-bow") ? bagOfWords(text, dimensions: dimensions) : embedding(of: text, dimensions: dimensions)
        let value: JSON = base64 ? .string(base64Floats(vector)) : .array(vector.map { .float($0) })
        data.append(["object": "embedding", "index": .int(i), "embedding": value])
        tokens += wordCount(text)
    }
    return jsonResponse([
        "object": "list", "data": .array(data), "model": .string(model),
        "usage": ["prompt_tokens": .int(tokens), "total_tokens": .int(tokens)],
    ])
}

/// The texts of `input`: a string, strings, one token array, or token arrays (a token array
/// stands for the text of its numbers, space-separated).
private func embeddingInputs(_ input: Any?) -> [String]? {
    if let text = input as? String { return [text] }
    guard let items = input as? [Any], !items.isEmpty else { return nil }
    func tokens(_ value: Any) -> String? {
        guard let array = value as? [Any] else { return nil }
        let numbers = array.compactMap { intValue($0) }
        return numbers.count == array.count ? numbers.map(String.init).joined(separator: " ") : nil
    }
    if let texts = items as? [String] { return texts }
    if let single = tokens(items) { return [single] }
    let arrays = items.compactMap(tokens)
    return arrays.count == items.count ? arrays : nil
}

/// A deterministic unit vector for a text: FNV-1a of its UTF-8 seeds a 64-bit LCG whose draws,
/// scaled to [-1, 1], are L2-normalised.
func embedding(of text: String, dimensions: Int) -> [Float] {
    var state: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 { state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    var values = [Double](repeating: 0, count: dimensions)
    var norm = 0.0
    for i in 0..<dimensions {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        values[i] = Double(state >> 11) / Double(1 << 53) * 2 - 1
        norm += values[i] * values[i]
    }
    norm = norm.squareRoot()
    return values.map { Float(norm > 0 ? $0 / norm : 1 / Double(dimensions).squareRoot()) }
}

/// A bag-of-words vector (`embed-bow`): the sum of one `embedding(of:)` vector per lowercased
/// word (letters and digits), L2-normalised, so that texts sharing words are near each other
/// as real embeddings of related texts are. Deterministic; bench/retrieval_bench.py computes
/// the same vectors in numpy.
func bagOfWords(_ text: String, dimensions: Int) -> [Float] {
    var sum = [Double](repeating: 0, count: dimensions)
    var word: [UInt8] = []
    func add() {
        guard !word.isEmpty else { return }
        let v = embedding(of: String(decoding: word, as: UTF8.self), dimensions: dimensions)
        for i in 0..<dimensions { sum[i] += Double(v[i]) }
        word.removeAll(keepingCapacity: true)
    }
    for b in text.lowercased().utf8 {
        if (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) { word.append(b) } else { add() }
    }
    add()
    let norm = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
    guard norm > 0 else { return embedding(of: text, dimensions: dimensions) }
    return sum.map { Float($0 / norm) }
}

/// The base64 of the floats as little-endian float32, as OpenAI sends `encoding_format: base64`.
private func base64Floats(_ vector: [Float]) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(vector.count * 4)
    for value in vector {
        let bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
    }
    return Data(bytes).base64EncodedString()
}

/// `POST /v1/moderations`: flags any input that contains the word "forbidden" (category
/// `harassment`), deterministically, so that a gateway's moderation rule can be tested.
func moderations(_ request: Request) async throws -> Response {
    let (body, model) = try await receive(request, keys: .bearer)
    let inputs: [String] = (body["input"] as? String).map { [$0] } ?? (body["input"] as? [Any])?.compactMap { $0 as? String } ?? []
    let results: [JSON] = inputs.map { text in
        let flagged = text.lowercased().contains("forbidden")
        return ["flagged": .bool(flagged), "categories": ["harassment": .bool(flagged), "violence": .bool(false)]]
    }
    return jsonResponse(["id": "modr-double", "model": .string(model), "results": .array(results)])
}
