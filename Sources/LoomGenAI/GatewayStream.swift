import AsyncHTTPClient
import Foundation
import LoomCore
import LoomStore
import NIOCore

/// A streamed chat completion on its way from the provider to the client: `relay` writes each
/// event as OpenAI's server-sent events as soon as it arrives (Anthropic's events translated),
/// counts the tokens from the provider's usage, and leaves out the usage chunk the gateway asked
/// for when the client did not. With output policies, content passes through a `StreamGuard`
/// that holds back only what a finding could still grow into. When the client goes away, the
/// write fails, the relay stops reading, and the provider's request is cancelled with it.
public final class GatewayStream: Sendable {
    let response: HTTPClientResponse
    let kind: ProviderSpec.Kind
    let model: String
    let includeUsage: Bool
    let streamGuard: StreamGuard?
    let decided: @Sendable ([PolicyDecision]) -> Void
    let finished: @Sendable (Summary) -> Void
    /// When the provider's answer started (the stream's head).
    let headAt = ContinuousClock.now

    /// How a relayed stream went, for the usage and the trace.
    struct Summary: Sendable {
        var usage: TokenUsage?
        var failed: Bool
        /// The content the client got (cut at the trace's limit).
        var output: String
        var headAt: ContinuousClock.Instant
        var firstEventAt: ContinuousClock.Instant?
        /// Whether the stream reached its end (not cut by the client or the provider).
        var completed: Bool
    }

    init(
        response: HTTPClientResponse, kind: ProviderSpec.Kind, model: String, includeUsage: Bool, guard streamGuard: StreamGuard? = nil,
        decided: @escaping @Sendable ([PolicyDecision]) -> Void = { _ in }, finished: @escaping @Sendable (Summary) -> Void
    ) {
        self.response = response
        self.kind = kind
        self.model = model
        self.includeUsage = includeUsage
        self.streamGuard = streamGuard
        self.decided = decided
        self.finished = finished
    }

    static let done = ByteBuffer(string: "data: [DONE]\n\n")

    static func event(_ data: some Sequence<UInt8>) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeString("data: ")
        b.writeBytes(data)
        b.writeString("\n\n")
        return b
    }

    /// What the relay knows as it goes.
    struct State {
        var usage: TokenUsage?
        var sawDone = false
        var failed = false
        var filtered = false
        var streamGuard: StreamGuard?
        var anthropic: AnthropicStreamTranslator?
        var lastChunk: JSONValue?
        var firstEventAt: ContinuousClock.Instant?
        var completed = false
        /// The content written, when chunks are parsed anyway (a guard, Anthropic's events).
        var output = ""
        /// Otherwise the events as relayed, read for the trace once the stream is over.
        var events: [[UInt8]] = []
        var eventBytes = 0

        mutating func keep(_ data: [UInt8]) {
            guard eventBytes < 256 << 10 else { return }
            events.append(data)
            eventBytes += data.count
        }

        /// The content of the relayed events, read once the client has them all.
        func content() -> String {
            guard !events.isEmpty else { return output }
            var text = output
            for e in events {
                guard let v = try? JSONValue.parse(e), let s = v["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue else { continue }
                text += s
                if text.utf8.count > TraceBuilder.textLimit { break }
            }
            return text
        }
    }

    /// Relays the stream through `write`; throws what `write` throws (the client went away).
    public func relay(_ write: (ByteBuffer) async throws -> Void) async throws {
        var parser = ServerSentEventParser()
        var state = State(
            streamGuard: streamGuard,
            anthropic: kind == .anthropic ? AnthropicStreamTranslator(model: model, created: LoomStore.Clock.nowMillis() / 1000) : nil)
        defer {
            if let g = state.streamGuard, !g.decisions.isEmpty { decided(g.decisions) }
            finished(Summary(
                usage: state.usage ?? state.anthropic.map { $0.usage }, failed: state.failed, output: state.content(), headAt: headAt,
                firstEventAt: state.firstEventAt, completed: state.completed))
        }
        var upstream = response.body.makeAsyncIterator()
        reading: while true {
            let next: ByteBuffer?
            do {
                next = try await upstream.next()
            } catch {
                // The provider's stream broke: tell the client in the stream, and count a failure.
                state.failed = true
                try await write(Self.event(JSONValue.object(["error": .object([
                    "message": .string("the provider's stream ended early: \(error)"), "type": .string("api_error"),
                ])]).jsonBytes))
                throw error
            }
            guard let chunk = next else { break }
            for event in parser.feed(chunk.readableBytesView) {
                try await handle(event, &state, write)
                if state.filtered { break reading }
            }
        }
        if !state.sawDone {
            // The provider ended without [DONE] (or a policy ended the stream): end it properly.
            if state.streamGuard != nil && !state.filtered { try await flushGuard(&state, write) }
            try await write(Self.done)
        }
        state.completed = true
    }

    func handle(_ event: ServerSentEvent, _ state: inout State, _ write: (ByteBuffer) async throws -> Void) async throws {
        if var translator = state.anthropic {
            guard let value = try? JSONValue.parse(event.data) else { return }
            if value["type"]?.stringValue == "error" {
                state.failed = true
                try await write(Self.event(JSONValue.object(["error": .object([
                    "message": .string(value["error"]?["message"]?.stringValue ?? "provider error"), "type": .string("api_error"),
                ])]).jsonBytes))
                return
            }
            let chunks = translator.translate(value)
            state.anthropic = translator
            for out in chunks { try await emit(out, &state, write) }
            if value["type"]?.stringValue == "message_stop" {
                state.usage = translator.usage
                if includeUsage { try await write(Self.event(translator.usageChunk().jsonBytes)) }
                try await write(Self.done)
                state.sawDone = true
            }
            return
        }
        if event.data.elementsEqual("[DONE]".utf8) {
            if state.streamGuard != nil { try await flushGuard(&state, write) }
            try await write(Self.done)
            state.sawDone = true
            return
        }
        if event.data.starts(with: Array(#"{"error""#.utf8)) { state.failed = true }
        // The usage chunk (or usage on another chunk): read it; pass it on only when asked.
        if Self.mentionsUsage(event.data), let value = try? JSONValue.parse(event.data), let u = TokenUsage(value["usage"]) {
            state.usage = u
            if !includeUsage && (value["choices"]?.arrayValue?.isEmpty ?? true) { return }
            if value["choices"]?.arrayValue?.isEmpty ?? true {
                try await write(Self.event(event.data))
                return
            }
        }
        guard state.streamGuard != nil else {
            if state.firstEventAt == nil { state.firstEventAt = .now }
            try await write(Self.event(event.data))
            state.keep(event.data)
            return
        }
        guard let value = try? JSONValue.parse(event.data) else {
            try await write(Self.event(event.data))
            return
        }
        try await emit(value, &state, write)
    }

    /// Writes an OpenAI chunk, through the guard when there is one.
    func emit(_ chunk: JSONValue, _ state: inout State, _ write: (ByteBuffer) async throws -> Void) async throws {
        guard var g = state.streamGuard, case .object(var object) = chunk, var choices = object["choices"]?.arrayValue, !choices.isEmpty,
            case .object(var choice) = choices[0]
        else {
            if !state.filtered {
                if state.firstEventAt == nil { state.firstEventAt = .now }
                try await write(Self.event(chunk.jsonBytes))
                if let s = chunk["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue { state.output += s }
            }
            return
        }
        state.lastChunk = chunk
        var delta = choice["delta"]?.objectValue ?? [:]
        let finish = choice["finish_reason"].flatMap { $0 == .null ? nil : $0 }
        var text = ""
        if case .string(let content)? = delta["content"] {
            text = g.release(content, final: finish != nil)
        } else if finish != nil {
            text = g.release("", final: true)
        }
        state.streamGuard = g
        if g.blocked {
            state.filtered = true
            try await write(Self.event(Self.filteredChunk(object).jsonBytes))
            return
        }
        delta["content"] = text.isEmpty ? nil : .string(text)
        if delta.isEmpty && finish == nil { return }  // nothing to show yet
        choice["delta"] = .object(delta)
        choices[0] = .object(choice)
        object["choices"] = .array(choices)
        if state.firstEventAt == nil { state.firstEventAt = .now }
        try await write(Self.event(JSONValue.object(object).jsonBytes))
        state.output += text
    }

    /// Releases what the guard still holds when the content ends without a finish chunk.
    func flushGuard(_ state: inout State, _ write: (ByteBuffer) async throws -> Void) async throws {
        guard var g = state.streamGuard, !g.pending.isEmpty, case .object(var object)? = state.lastChunk else { return }
        let text = g.release("", final: true)
        state.streamGuard = g
        if g.blocked {
            state.filtered = true
            try await write(Self.event(Self.filteredChunk(object).jsonBytes))
            return
        }
        guard !text.isEmpty else { return }
        object["choices"] = .array([.object(["index": .int(0), "delta": .object(["content": .string(text)]), "finish_reason": .null])])
        try await write(Self.event(JSONValue.object(object).jsonBytes))
        state.output += text
    }

    /// The last chunk of a stream a policy stopped: nothing more, `finish_reason: content_filter`.
    static func filteredChunk(_ like: [String: JSONValue]) -> JSONValue {
        var o = like
        o["choices"] = .array([.object(["index": .int(0), "delta": .object([:]), "finish_reason": .string("content_filter")])])
        o["usage"] = nil
        return .object(o)
    }

    /// Whether an event's JSON has a non-null `"usage"` (checked on the bytes before parsing).
    static func mentionsUsage(_ data: [UInt8]) -> Bool {
        let needle = Array("\"usage\":".utf8)
        guard data.count > needle.count else { return false }
        var i = 0
        while i + needle.count <= data.count {
            if data[i] == needle[0], data[i..<(i + needle.count)].elementsEqual(needle) {
                var j = i + needle.count
                while j < data.count, data[j] == 0x20 { j += 1 }
                return j < data.count && data[j] != UInt8(ascii: "n")
            }
            i += 1
        }
        return false
    }
}
