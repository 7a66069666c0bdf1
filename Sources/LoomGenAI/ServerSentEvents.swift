/// One server-sent event: its `event:` name (nil: a plain message) and its `data:` lines joined.
struct ServerSentEvent: Sendable, Equatable {
    var event: String?
    var data: [UInt8]
}

/// Splits a stream of bytes into server-sent events (the WHATWG rules that matter for LLM
/// APIs: `\n`, `\r\n` or `\r` line ends, `event:` and `data:` fields, comments and other fields
/// ignored, an empty line ends an event).
struct ServerSentEventParser {
    var line: [UInt8] = []
    var event: String?
    var data: [UInt8] = []
    var hasData = false
    var lastWasCR = false

    /// The events completed by `bytes`.
    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [ServerSentEvent] where Bytes.Element == UInt8 {
        var out: [ServerSentEvent] = []
        for b in bytes {
            if b == 0x0A && lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = b == 0x0D
            if b == 0x0A || b == 0x0D {
                endLine(&out)
            } else {
                line.append(b)
            }
        }
        return out
    }

    /// What is left at the end of the stream (an event without its final empty line).
    mutating func finish() -> [ServerSentEvent] {
        var out: [ServerSentEvent] = []
        if !line.isEmpty { endLine(&out) }
        endLine(&out)
        return out
    }

    mutating func endLine(_ out: inout [ServerSentEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            if hasData || event != nil { out.append(ServerSentEvent(event: event, data: data)) }
            event = nil
            data.removeAll(keepingCapacity: true)
            hasData = false
            return
        }
        if line.first == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = line[..<colon]
        var value = colon < line.endIndex ? line[(colon + 1)...] : []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            event = String(decoding: value, as: UTF8.self)
        }
    }
}
