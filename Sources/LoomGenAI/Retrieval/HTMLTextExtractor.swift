/// Extracts visible text from HTML bytes with a small, forgiving tokenizer.
///
/// - `script`, `style`, `template` and `noscript` contents, comments,
///   doctype/processing instructions and everything in `head` (except the
///   `title`, which is captured separately) are dropped.
/// - `h1`–`h6` become Markdown headings (`#`…`######`) on their own lines,
///   separated by blank lines.
/// - `p` and `pre` produce paragraph breaks (blank lines); other block
///   elements (`div`, `li`, `br`, `tr`, `section`, …) produce line breaks;
///   table cells are separated by spaces.
/// - Whitespace is collapsed outside `pre`; character references are decoded
///   (`&nbsp;` becomes a plain space).
struct HTMLTextExtractor {
    /// What was extracted.
    struct Extracted {
        var title: String?
        var firstHeading: String?
        var text: String
    }

    /// Extracts text, `<title>` and the first `<h1>` from valid UTF-8 bytes.
    static func extract(_ bytes: [UInt8]) -> Extracted {
        var extractor = HTMLTextExtractor(bytes: bytes)
        extractor.run()
        return extractor.finish()
    }

    private static let rawTextElements: Set<String> = ["script", "style", "template", "noscript"]
    private static let blockElements: Set<String> = [
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr",
        "html", "li", "main", "nav", "ol", "option", "section", "summary", "table", "tbody",
        "tfoot", "thead", "tr", "ul",
    ]

    private let bytes: [UInt8]
    private var out: [UInt8] = []
    private var titleBuffer: [UInt8] = []
    private var titleComplete = false
    private var inTitle = false
    private var inHead = false
    private var preDepth = 0
    private var pendingSpace = false
    /// Start of the current heading's `#` marker in `out`, and where its text begins.
    private var heading: (markerStart: Int, textStart: Int)?
    private var firstHeadingBuffer: [UInt8]?
    private var collectingFirstHeading = false

    private init(bytes: [UInt8]) {
        self.bytes = bytes
        out.reserveCapacity(bytes.count / 2)
    }

    // MARK: - Tokenizing

    private mutating func run() {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte == 60 {  // '<'
                index = consumeMarkup(at: index)
            } else if byte == 38, let (scalar, length) = HTMLEntities.decode(bytes, at: index) {  // '&'
                if scalar == "\u{00A0}" {
                    emit(32)
                } else {
                    for unit in String(Character(scalar)).utf8 { emit(unit) }
                }
                index += length
            } else {
                emit(byte)
                index += 1
            }
        }
        if heading != nil { closeHeading() }
    }

    /// Handles the markup starting with `<` at `start`; returns the index to continue at.
    private mutating func consumeMarkup(at start: Int) -> Int {
        let count = bytes.count
        if matches("<!--", at: start) {
            return find([45, 45, 62], from: start + 4).map { $0 + 3 } ?? count
        }
        if start + 1 < count, bytes[start + 1] == 33 || bytes[start + 1] == 63 {  // "<!" / "<?"
            return find([62], from: start + 2).map { $0 + 1 } ?? count
        }
        var cursor = start + 1
        let closing = cursor < count && bytes[cursor] == 47
        if closing { cursor += 1 }
        let nameStart = cursor
        guard cursor < count, isASCIILetter(bytes[cursor]) else {
            emit(60)
            return start + 1
        }
        while cursor < count, isNameByte(bytes[cursor]) { cursor += 1 }
        let name = String(decoding: bytes[nameStart..<cursor].map(lowercased), as: UTF8.self)
        guard let end = tagEnd(from: cursor) else { return count }
        let selfClosing = end > nameStart && bytes[end - 1] == 47
        var next = end + 1
        if !closing, !selfClosing, Self.rawTextElements.contains(name) {
            next = findClosingTag(name, from: next) ?? count
        }
        handleTag(name, closing: closing)
        return next
    }

    /// Index of the `>` ending a tag, skipping quoted attribute values.
    private func tagEnd(from start: Int) -> Int? {
        var quote: UInt8?
        var afterEquals = false
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if let open = quote {
                if byte == open { quote = nil }
            } else if byte == 62 {
                return index
            } else if byte == 61 {
                afterEquals = true
            } else if (byte == 34 || byte == 39) && afterEquals {
                quote = byte
                afterEquals = false
            } else if !isWhitespace(byte) {
                afterEquals = false
            }
            index += 1
        }
        return nil
    }

    /// Index of `</name` (case-insensitive) at or after `start`.
    private func findClosingTag(_ name: String, from start: Int) -> Int? {
        let pattern = [60, 47] + Array(name.utf8)
        var index = start
        while let candidate = find([60, 47], from: index) {
            if matches(pattern, at: candidate, caseInsensitive: true) { return candidate }
            index = candidate + 2
        }
        return nil
    }

    // MARK: - Tags

    private mutating func handleTag(_ name: String, closing: Bool) {
        switch name {
        case "head":
            inHead = !closing
        case "body":
            if !closing { inHead = false }
        case "title":
            if closing, inTitle {
                titleComplete = titleComplete || !titleBuffer.allSatisfy(isWhitespace)
            }
            inTitle = !closing
        case "h1", "h2", "h3", "h4", "h5", "h6":
            if closing {
                if heading != nil { closeHeading() }
            } else {
                openHeading(level: Int(name.utf8.last.map { $0 - 48 } ?? 1))
            }
        case "br":
            lineBreak(blank: false)
        case "p":
            lineBreak(blank: true)
        case "pre":
            lineBreak(blank: true)
            preDepth = closing ? max(0, preDepth - 1) : preDepth + 1
        case "td", "th":
            pendingSpace = true
        default:
            if Self.blockElements.contains(name) { lineBreak(blank: false) }
        }
    }

    private mutating func openHeading(level: Int) {
        if heading != nil { closeHeading() }
        lineBreak(blank: true)
        let markerStart = out.count
        out.append(contentsOf: repeatElement(35, count: level))
        out.append(32)
        heading = (markerStart, out.count)
        pendingSpace = false
        if level == 1, firstHeadingBuffer == nil, !inHead {
            firstHeadingBuffer = []
            collectingFirstHeading = true
        }
    }

    private mutating func closeHeading() {
        guard let current = heading else { return }
        heading = nil
        collectingFirstHeading = false
        if firstHeadingBuffer?.allSatisfy(isWhitespace) == true { firstHeadingBuffer = nil }
        trimTrailingSpaces()
        if out.count <= current.textStart {
            out.removeSubrange(current.markerStart...)
        }
        lineBreak(blank: true)
    }

    // MARK: - Output

    /// Routes one byte of character data to the title, the body, or nowhere.
    private mutating func emit(_ byte: UInt8) {
        if inTitle {
            if !titleComplete { titleBuffer.append(byte) }
            return
        }
        if inHead { return }
        if collectingFirstHeading { firstHeadingBuffer?.append(byte) }
        if preDepth > 0, heading == nil {
            out.append(byte)
            return
        }
        if isWhitespace(byte) {
            pendingSpace = true
            return
        }
        if pendingSpace, let last = out.last, last != 10, last != 32 {
            out.append(32)
        }
        pendingSpace = false
        out.append(byte)
    }

    /// Ends the current line; `blank` asks for an empty line after it.
    private mutating func lineBreak(blank: Bool) {
        if heading != nil {
            pendingSpace = true
            return
        }
        pendingSpace = false
        trimTrailingSpaces()
        guard !out.isEmpty, !inHead else { return }
        var trailing = 0
        while trailing < 2, trailing < out.count, out[out.count - 1 - trailing] == 10 { trailing += 1 }
        let needed = blank ? 2 : 1
        while trailing < needed {
            out.append(10)
            trailing += 1
        }
    }

    private mutating func trimTrailingSpaces() {
        while out.last == 32 { out.removeLast() }
    }

    private func finish() -> Extracted {
        var lines: [Substring] = []
        let raw = String(decoding: out, as: UTF8.self)
        for line in TextScan.lines(raw[...]) {
            let cleaned = line.reversed().drop(while: { $0 == " " || $0 == "\t" }).count
            let kept = line.prefix(cleaned)
            if kept.isEmpty, lines.last?.isEmpty ?? true { continue }
            lines.append(kept)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        let title = titleBuffer.isEmpty ? nil : TextScan.collapseWhitespace(String(decoding: titleBuffer, as: UTF8.self))
        let firstHeading = firstHeadingBuffer.map { TextScan.collapseWhitespace(String(decoding: $0, as: UTF8.self)) }
        return Extracted(title: title, firstHeading: firstHeading, text: lines.joined(separator: "\n"))
    }

    // MARK: - Byte helpers

    private func matches(_ pattern: [UInt8], at start: Int, caseInsensitive: Bool = false) -> Bool {
        guard start + pattern.count <= bytes.count else { return false }
        for (offset, expected) in pattern.enumerated() {
            let actual = bytes[start + offset]
            if caseInsensitive ? lowercased(actual) != expected : actual != expected { return false }
        }
        return true
    }

    private func matches(_ pattern: String, at start: Int) -> Bool {
        matches(Array(pattern.utf8), at: start)
    }

    private func find(_ pattern: [UInt8], from start: Int) -> Int? {
        guard let first = pattern.first, start < bytes.count else { return nil }
        var index = start
        while index + pattern.count <= bytes.count {
            if bytes[index] == first, matches(pattern, at: index) { return index }
            index += 1
        }
        return nil
    }
}

private func isWhitespace(_ byte: UInt8) -> Bool {
    byte == 32 || byte == 9 || byte == 10 || byte == 12 || byte == 13
}

private func isASCIILetter(_ byte: UInt8) -> Bool {
    (byte >= 97 && byte <= 122) || (byte >= 65 && byte <= 90)
}

private func isNameByte(_ byte: UInt8) -> Bool {
    isASCIILetter(byte) || (byte >= 48 && byte <= 57) || byte == 45 || byte == 58 || byte == 95
}

private func lowercased(_ byte: UInt8) -> UInt8 {
    (byte >= 65 && byte <= 90) ? byte + 32 : byte
}
