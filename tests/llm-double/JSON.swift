// JSON in and out for the LLM test double.
//
// Requests are parsed with JSONSerialization, which copes with the loose shapes that the provider
// APIs accept (a `content` that is a string or an array of parts, unknown fields, ...). Responses
// are built as `JSON` values, which keep their keys in the written order and write explicit nulls
// (`"content": null`, `"finish_reason": null`), as the providers do, and serialise straight to bytes.
import Foundation
import Hummingbird

/// A JSON value to send.
enum JSON: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    case null, bool(Bool), int(Int), float(Float), string(String), array([JSON]), object([(String, JSON)])
    /// Bytes that are already JSON (a recorded request body), written verbatim.
    case raw(ByteBuffer)

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(nilLiteral: ()) { self = .null }
    init(arrayLiteral elements: JSON...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSON)...) { self = .object(elements) }

    /// `.string(s)`, or `.null` when there is no string.
    static func string(or value: String?) -> JSON { value.map { .string($0) } ?? .null }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    var buffer: ByteBuffer { ByteBuffer(bytes: bytes) }
    var text: String { String(decoding: bytes, as: UTF8.self) }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .float(let value): out.append(contentsOf: (value.isFinite ? value.description : "0").utf8)
        case .string(let value): Self.write(string: value, into: &out)
        case .raw(let buffer): out.append(contentsOf: buffer.readableBytesView)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (i, value) in values.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(string: key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal: the UTF-8 bytes with `"`, `\` and control characters escaped.
    static func write(string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let low = byte & 15
                out.append(contentsOf: "\\u00".utf8)
                out.append(UInt8(ascii: byte >> 4 == 0 ? "0" : "1"))
                out.append(low < 10 ? UInt8(ascii: "0") + low : UInt8(ascii: "a") + low - 10)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: Reading requests

/// The request body as a JSON object, or nil when it is not one.
func parseObject(_ body: ByteBuffer) -> [String: Any]? {
    guard body.readableBytes > 0 else { return nil }
    return (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
}

/// An integer field (JSON numbers arrive as NSNumber); nil for a fraction, a string or null.
func intValue(_ value: Any?) -> Int? { value as? Int }

/// The text of a message `content` (or an Anthropic `system`): a string, or the `text` of the parts
/// of an array (`{"type":"text","text":...}`) joined by spaces; anything else has no text.
func textOf(_ content: Any?) -> String {
    if let text = content as? String { return text }
    guard let parts = content as? [Any] else { return "" }
    return parts.compactMap { ($0 as? [String: Any])?["text"] as? String }.joined(separator: " ")
}

/// The number of whitespace-separated words, the double's stand-in for a token count.
func wordCount(_ text: String) -> Int {
    var count = 0
    var inWord = false
    for scalar in text.unicodeScalars {
        let space = scalar.properties.isWhitespace
        if !space && !inWord { count += 1 }
        inWord = !space
    }
    return count
}

/// Splits text into one piece per word, each piece carrying the whitespace before its word (and the
/// last one any trailing whitespace), so that the pieces joined give back the text exactly. The
/// pieces are the stream deltas: "echo: hello world" → "echo:", " hello", " world".
func wordPieces(_ text: String) -> [Substring] {
    var pieces: [Substring] = []
    let scalars = text.unicodeScalars
    var start = scalars.startIndex
    var inWord = false
    for i in scalars.indices {
        let space = scalars[i].properties.isWhitespace
        if space && inWord {
            pieces.append(text[start..<i])
            start = i
        }
        inWord = !space
    }
    if start < text.endIndex {
        if inWord || pieces.isEmpty {
            pieces.append(text[start...])
        } else {
            pieces[pieces.count - 1] = text[pieces[pieces.count - 1].startIndex...]
        }
    }
    return pieces
}
