/// Small, allocation-light helpers for scanning text line by line.
enum TextScan {
    /// `true` if `text` contains only whitespace (or nothing).
    static func isBlank<S: StringProtocol>(_ text: S) -> Bool {
        text.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
    }

    /// `text` without leading and trailing whitespace (including newlines).
    static func trimmed(_ text: Substring) -> Substring {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return text[first..<scalars.index(after: last)]
    }

    /// `text` without leading and trailing whitespace (including newlines).
    static func trimmed(_ text: String) -> Substring {
        trimmed(text[...])
    }

    /// Splits `text` into lines at `\n` (the newline is not included). A
    /// trailing newline does not produce an empty final line.
    static func lines(_ text: Substring) -> [Substring] {
        var result: [Substring] = []
        var start = text.startIndex
        let utf8 = text.utf8
        while start < text.endIndex {
            if let newline = utf8[start...].firstIndex(of: 10) {
                result.append(text[start..<newline])
                start = utf8.index(after: newline)
            } else {
                result.append(text[start...])
                break
            }
        }
        return result
    }

    /// The first non-blank line of `text`, trimmed, or `nil`.
    static func firstNonBlankLine(_ text: Substring) -> Substring? {
        var start = text.startIndex
        let utf8 = text.utf8
        while start < text.endIndex {
            let end = utf8[start...].firstIndex(of: 10) ?? text.endIndex
            let line = trimmed(text[start..<end])
            if !line.isEmpty { return line }
            if end == text.endIndex { break }
            start = utf8.index(after: end)
        }
        return nil
    }

    /// Limits a title to ``DocumentParser/maxTitleLength`` characters.
    static func clampTitle(_ title: Substring) -> String {
        String(trimmed(title).prefix(DocumentParser.maxTitleLength))
    }

    /// Limits a title to ``DocumentParser/maxTitleLength`` characters.
    static func clampTitle(_ title: String) -> String {
        clampTitle(title[...])
    }

    /// Collapses every run of whitespace into one space and trims the ends.
    static func collapseWhitespace<S: StringProtocol>(_ text: S) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
