import AsyncHTTPClient
import Foundation
import LoomCore
import LoomStore
import NIOCore

/// A streamed chat completion on its way from the provider to the client: `relay` writes each
/// event as OpenAI's server-sent events as soon as it arrives (Anthropic's events translated),
/// counts the tokens from the provider's usage, and leaves out the usage chunk the gateway asked
/// for when the client did not. When the client goes away, the write fails, the relay stops
/// reading, and the provider's request is cancelled with it.
public final class GatewayStream: Sendable {
    let response: HTTPClientResponse
    let kind: ProviderSpec.Kind
    let model: String
    let includeUsage: Bool
    let finished: @Sendable (TokenUsage?, Bool) -> Void

    init(response: HTTPClientResponse, kind: ProviderSpec.Kind, model: String, includeUsage: Bool, finished: @escaping @Sendable (TokenUsage?, Bool) -> Void) {
        self.response = response
        self.kind = kind
        self.model = model
        self.includeUsage = includeUsage
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

    /// Relays the stream through `write`; throws what `write` throws (the client went away).
    public func relay(_ write: (ByteBuffer) async throws -> Void) async throws {
        var parser = ServerSentEventParser()
        var usage: TokenUsage?
        var anthropic = kind == .anthropic ? AnthropicStreamTranslator(model: model, created: LoomStore.Clock.nowMillis() / 1000) : nil
        var sawDone = false
        var failed = false
        defer { finished(usage ?? anthropic.map { $0.usage }, failed) }
        var upstream = response.body.makeAsyncIterator()
        while true {
            let next: ByteBuffer?
            do {
                next = try await upstream.next()
            } catch {
                // The provider's stream broke: tell the client in the stream, and count a failure.
                failed = true
                try await write(Self.event(JSONValue.object(["error": .object([
                    "message": .string("the provider's stream ended early: \(error)"), "type": .string("api_error"),
                ])]).jsonBytes))
                throw error
            }
            guard let chunk = next else { break }
            for event in parser.feed(chunk.readableBytesView) {
                    if var translator = anthropic {
                        guard let value = try? JSONValue.parse(event.data) else { continue }
                        if value["type"]?.stringValue == "error" {
                            failed = true
                            try await write(Self.event(JSONValue.object(["error": .object([
                                "message": .string(value["error"]?["message"]?.stringValue ?? "provider error"), "type": .string("api_error"),
                            ])]).jsonBytes))
                            continue
                        }
                        for out in translator.translate(value) { try await write(Self.event(out.jsonBytes)) }
                        if value["type"]?.stringValue == "message_stop" {
                            usage = translator.usage
                            if includeUsage { try await write(Self.event(translator.usageChunk().jsonBytes)) }
                            try await write(Self.done)
                            sawDone = true
                        }
                        anthropic = translator
                        continue
                    }
                    if event.data.elementsEqual("[DONE]".utf8) {
                        try await write(Self.done)
                        sawDone = true
                        continue
                    }
                    if event.data.starts(with: Array(#"{"error""#.utf8)) { failed = true }
                    // The usage chunk (or usage on another chunk): read it; pass it on only when asked.
                    if Self.mentionsUsage(event.data), let value = try? JSONValue.parse(event.data), let u = TokenUsage(value["usage"]) {
                        usage = u
                        if !includeUsage && (value["choices"]?.arrayValue?.isEmpty ?? true) { continue }
                    }
                    try await write(Self.event(event.data))
            }
        }
        if !sawDone {
            // The provider ended without [DONE]: end the client's stream properly anyway.
            try await write(Self.done)
        }
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
