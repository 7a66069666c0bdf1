// The Anthropic route of the LLM test double: `POST /v1/messages`, plain, streamed and tool use.
import Foundation
import Hummingbird

/// `POST /v1/messages` (Messages API; any `anthropic-version` is accepted).
func messages(_ request: Request) async throws -> Response {
    let (body, model) = try await receive(request, keys: .anthropic)
    guard let messages = body["messages"] as? [Any], !messages.isEmpty else {
        return badRequest(.anthropic, "messages: Field required")
    }
    let behaviour = try await Behaviour.apply(model: model, dialect: .anthropic)

    let prompt = Prompt(messages, system: body["system"])
    let number = DoubleState.shared.nextID()
    let id = "msg_\(number)"

    // The answer: a tool_use block for the chosen tool, or the echo of the last user message.
    let block: JSON
    let deltas: [JSON]
    let stopReason: String
    let outputTokens: Int
    if let tool = chosenTool(body) {
        let input: JSON = ["echo": .string(prompt.lastUserText)]
        let inputText = input.text
        block = ["type": "tool_use", "id": .string("toolu_\(number)"), "name": .string(tool), "input": input]
        deltas = [["type": "input_json_delta", "partial_json": .string(inputText)]]
        stopReason = "tool_use"
        outputTokens = wordCount(inputText)
    } else {
        let answer = Answer(lastUserText: prompt.lastUserText, limit: intValue(body["max_tokens"]))
        block = ["type": "text", "text": .string(answer.text)]
        deltas = answer.pieces.map { ["type": "text_delta", "text": .string(String($0))] }
        stopReason = answer.truncated ? "max_tokens" : "end_turn"
        outputTokens = answer.words
    }
    func message(content: JSON, stopReason: String?, outputTokens: Int) -> JSON {
        [
            "id": .string(id), "type": "message", "role": "assistant", "model": .string(model), "content": content,
            "stop_reason": .string(or: stopReason), "stop_sequence": nil,
            "usage": ["input_tokens": .int(prompt.words), "output_tokens": .int(outputTokens)],
        ]
    }
    guard body["stream"] as? Bool == true else {
        return jsonResponse(message(content: [block], stopReason: stopReason, outputTokens: outputTokens))
    }

    // Streamed: message_start, ping, the block (start, deltas, stop), message_delta, message_stop.
    func event(_ type: String, _ data: JSON) -> ByteBuffer {
        guard case .object(let members) = data else { return ByteBuffer() }
        let json = JSON.object([("type", .string(type))] + members).bytes
        return ByteBuffer(bytes: Array("event: \(type)\ndata: ".utf8) + json + Array("\n\n".utf8))
    }
    var startBlock = block
    if case .object(let members) = block {
        // The block opens empty; its text or input arrives in the deltas.
        startBlock = .object(members.map { ($0.0, $0.0 == "text" ? "" : $0.0 == "input" ? [:] : $0.1) })
    }
    var events = [
        event("message_start", ["message": message(content: [], stopReason: nil, outputTokens: 0)]),
        event("ping", [:]),
        event("content_block_start", ["index": 0, "content_block": startBlock]),
    ]
    for delta in deltas {
        events.append(event("content_block_delta", ["index": 0, "delta": delta]))
    }
    events.append(event("content_block_stop", ["index": 0]))
    events.append(
        event(
            "message_delta",
            [
                "delta": ["stop_reason": .string(stopReason), "stop_sequence": nil],
                "usage": ["output_tokens": .int(outputTokens)],
            ]))
    events.append(event("message_stop", [:]))
    return eventStream(events, gapMS: behaviour.streamSlowMS)
}

/// The tool to use: none without `tools` or with `tool_choice: {"type":"none"}`; the one that
/// `tool_choice: {"type":"tool","name":...}` names; else the first tool.
private func chosenTool(_ body: [String: Any]) -> String? {
    guard let tools = body["tools"] as? [Any], !tools.isEmpty else { return nil }
    let choice = body["tool_choice"] as? [String: Any]
    if choice?["type"] as? String == "none" { return nil }
    if choice?["type"] as? String == "tool", let named = choice?["name"] as? String { return named }
    return (tools.first as? [String: Any])?["name"] as? String ?? "tool"
}
