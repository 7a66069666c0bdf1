/// Minimal Markdown line syntax shared by the Markdown parser and the
/// heading chunker: ATX headings and fenced code blocks.
enum MarkdownSyntax {
    /// An ATX heading (`#` … `######`).
    struct Heading: Equatable {
        var level: Int
        var text: String
    }

    /// Parses `line` as an ATX heading: up to three spaces of indentation,
    /// 1–6 `#`, then a space/tab or the end of the line. An optional closing
    /// run of `#` is removed from the text.
    static func heading(_ line: Substring) -> Heading? {
        let bytes = line.utf8
        var index = bytes.startIndex
        var indent = 0
        while index < bytes.endIndex, bytes[index] == 32 {
            indent += 1
            if indent > 3 { return nil }
            index = bytes.index(after: index)
        }
        var level = 0
        while index < bytes.endIndex, bytes[index] == 35 {
            level += 1
            if level > 6 { return nil }
            index = bytes.index(after: index)
        }
        guard level >= 1 else { return nil }
        if index < bytes.endIndex, bytes[index] != 32, bytes[index] != 9 { return nil }
        var content = TextScan.trimmed(line[index...])
        // Drop a closing sequence: trailing #s preceded by whitespace (or alone).
        if let lastNonHash = content.utf8.lastIndex(where: { $0 != 35 }) {
            let byte = content.utf8[lastNonHash]
            if lastNonHash < content.utf8.index(before: content.endIndex), byte == 32 || byte == 9 {
                content = TextScan.trimmed(content[..<lastNonHash])
            }
        } else {
            content = ""
        }
        return Heading(level: level, text: String(content))
    }

    /// Tracks whether lines are inside a fenced code block (``` or ~~~).
    struct FenceTracker {
        private var open: (marker: UInt8, length: Int)?

        /// `true` while inside a fenced block.
        var isInsideFence: Bool { open != nil }

        /// Feeds one line; returns `true` if the line is code (a fence line
        /// or a line inside a fenced block), `false` for ordinary Markdown.
        mutating func consume(_ line: Substring) -> Bool {
            if let fence = MarkdownSyntax.fence(line) {
                if let current = open {
                    if fence.marker == current.marker, fence.length >= current.length, fence.isBare {
                        open = nil
                    }
                } else {
                    open = (fence.marker, fence.length)
                }
                return true
            }
            return open != nil
        }
    }

    /// A fence line: up to three spaces, then at least three backticks or tildes.
    private static func fence(_ line: Substring) -> (marker: UInt8, length: Int, isBare: Bool)? {
        let bytes = line.utf8
        var index = bytes.startIndex
        var indent = 0
        while index < bytes.endIndex, bytes[index] == 32 {
            indent += 1
            if indent > 3 { return nil }
            index = bytes.index(after: index)
        }
        guard index < bytes.endIndex, bytes[index] == 96 || bytes[index] == 126 else { return nil }
        let marker = bytes[index]
        var length = 0
        while index < bytes.endIndex, bytes[index] == marker {
            length += 1
            index = bytes.index(after: index)
        }
        guard length >= 3 else { return nil }
        let rest = line[index...]
        return (marker, length, TextScan.isBlank(rest))
    }
}
