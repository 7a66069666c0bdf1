import Foundation

/// Extraction of a JSON document from model output.
enum JSONText {
    /// Parses `answer` as JSON. Accepted shapes: the whole answer (surrounding
    /// whitespace ignored), or the whole answer being one Markdown fenced block
    /// (```` ``` ```` or ```` ```json ````, any language tag) whose body is JSON.
    /// Text outside the fence is not tolerated. Returns `nil` otherwise.
    static func parseAnswer(_ answer: String) -> StrictJSON? {
        let trimmed = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        if let value = StrictJSON.parse(trimmed) { return value }
        guard let body = fencedBody(trimmed) else { return nil }
        return StrictJSON.parse(body)
    }

    /// The body of a text that is exactly one fenced block, else `nil`.
    static func fencedBody(_ trimmed: String) -> String? {
        guard trimmed.hasPrefix("```"), trimmed.hasSuffix("```"), trimmed.count >= 6 else { return nil }
        let inner = trimmed.dropFirst(3).dropLast(3)
        guard let newline = inner.firstIndex(where: \.isNewline) else { return nil }
        let tag = inner[..<newline].trimmingCharacters(in: .whitespaces)
        guard tag.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
        let body = inner[inner.index(after: newline)...]
        guard !body.contains("```") else { return nil }
        return String(body)
    }
}

extension StrictJSON {
    /// Compact JSON text with sorted keys (for messages); `"?"` if not encodable.
    var compactText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "?" }
        return text
    }
}
