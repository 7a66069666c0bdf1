/// Turns decoded HTML into a document.
enum HTMLParser {
    /// Extracts the visible text (see ``HTMLTextExtractor``). Title =
    /// `<title>`, else the first `<h1>`, else the file name.
    static func parse(_ text: String, path: String) -> ParsedDocument {
        let extracted = HTMLTextExtractor.extract(Array(text.utf8))
        let title = [extracted.title, extracted.firstHeading]
            .compactMap { $0 }
            .first { !TextScan.isBlank($0) }
            .map(TextScan.clampTitle)
            ?? PathName.fileName(path)
        return ParsedDocument(source: path, title: title, text: extracted.text)
    }
}
