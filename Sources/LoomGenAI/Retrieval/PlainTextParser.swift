/// Turns decoded plain text into a document.
enum PlainTextParser {
    /// Title = first non-blank line (trimmed, at most 200 characters), else
    /// the file name. The text is kept as is, minus surrounding whitespace.
    static func parse(_ text: String, path: String) -> ParsedDocument {
        let body = TextScan.trimmed(text)
        let title = TextScan.firstNonBlankLine(body).map(TextScan.clampTitle)
            ?? PathName.fileName(path)
        return ParsedDocument(source: path, title: title, text: String(body))
    }
}
