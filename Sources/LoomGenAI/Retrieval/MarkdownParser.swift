/// Turns decoded Markdown into a document.
enum MarkdownParser {
    /// Strips YAML front matter into metadata (simple `key: value` lines),
    /// keeps the Markdown body as the text, and picks the title from the
    /// first `# ` heading, else the front-matter `title`, else the file name.
    static func parse(_ text: String, path: String) -> ParsedDocument {
        let (metadata, body) = FrontMatter.split(text)
        let trimmedBody = TextScan.trimmed(body)
        let title = firstTopLevelHeading(trimmedBody)
            ?? metadata["title"].flatMap { TextScan.isBlank($0) ? nil : TextScan.clampTitle($0) }
            ?? PathName.fileName(path)
        return ParsedDocument(source: path, title: title, text: String(trimmedBody), metadata: metadata)
    }

    /// The text of the first level-1 ATX heading outside fenced code.
    private static func firstTopLevelHeading(_ text: Substring) -> String? {
        var fences = MarkdownSyntax.FenceTracker()
        for line in TextScan.lines(text) {
            if fences.consume(line) { continue }
            if let heading = MarkdownSyntax.heading(line), heading.level == 1, !heading.text.isEmpty {
                return TextScan.clampTitle(heading.text)
            }
        }
        return nil
    }
}

/// YAML front matter (`---` … `---`) at the very start of a Markdown file.
enum FrontMatter {
    /// Splits `text` into front-matter metadata and the remaining body.
    ///
    /// Only top-level `key: value` lines are read; list items, nested keys,
    /// comments and keys without a value are ignored. Surrounding quotes are
    /// removed from values. Without a closing `---` (or `...`) line the text
    /// is returned unchanged with empty metadata.
    static func split(_ text: String) -> (metadata: [String: String], body: Substring) {
        let whole = text[...]
        guard let firstLineEnd = whole.utf8.firstIndex(of: 10),
              TextScan.trimmed(whole[..<firstLineEnd]) == "---",
              whole.utf8.first == 45
        else { return ([:], whole) }
        var metadata: [String: String] = [:]
        var lineStart = whole.utf8.index(after: firstLineEnd)
        while lineStart < whole.endIndex {
            let lineEnd = whole.utf8[lineStart...].firstIndex(of: 10) ?? whole.endIndex
            let line = whole[lineStart..<lineEnd]
            let marker = TextScan.trimmed(line)
            if marker == "---" || marker == "..." {
                let bodyStart = lineEnd < whole.endIndex ? whole.utf8.index(after: lineEnd) : whole.endIndex
                return (metadata, whole[bodyStart...])
            }
            if let (key, value) = keyValue(line) {
                metadata[key] = value
            }
            guard lineEnd < whole.endIndex else { break }
            lineStart = whole.utf8.index(after: lineEnd)
        }
        return ([:], whole)
    }

    /// Parses a top-level `key: value` line.
    private static func keyValue(_ line: Substring) -> (String, String)? {
        guard let first = line.unicodeScalars.first,
              !first.properties.isWhitespace, first != "#", first != "-",
              let colon = line.firstIndex(of: ":")
        else { return nil }
        let key = TextScan.trimmed(line[..<colon])
        var value = TextScan.trimmed(line[line.index(after: colon)...])
        guard !key.isEmpty, !value.isEmpty else { return nil }
        if value.count >= 2, let open = value.first, open == "\"" || open == "'", value.last == open {
            value = value.dropFirst().dropLast()
        }
        return (String(key), String(value))
    }
}
