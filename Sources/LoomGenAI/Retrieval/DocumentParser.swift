/// Parses the bytes of one source file into ``ParsedDocument`` values.
///
/// Parsing never throws and never crashes: undecodable input (invalid UTF-8,
/// binary data), empty files and bad JSONL lines are reported as
/// ``ParseProblem``s in the returned ``DocumentParseResult``.
///
/// Text is decoded as UTF-8 (a leading byte-order mark is dropped) and line
/// endings are normalised to `"\n"`.
public struct DocumentParser: Sendable {
    /// The maximum length of a title, in characters.
    public static let maxTitleLength = 200

    /// The JSONL field holding a record's text (default `"text"`).
    public var jsonlTextField: String
    /// The JSONL field holding a record's title (default `"title"`).
    public var jsonlTitleField: String

    /// Creates a parser.
    /// - Parameters:
    ///   - jsonlTextField: JSONL field to read the text from.
    ///   - jsonlTitleField: JSONL field to read the title from, when present.
    public init(jsonlTextField: String = "text", jsonlTitleField: String = "title") {
        self.jsonlTextField = jsonlTextField
        self.jsonlTitleField = jsonlTitleField
    }

    /// Parses one file.
    /// - Parameters:
    ///   - bytes: The raw file contents.
    ///   - path: The file's relative path; used for `source`, for the
    ///     fallback title, and (unless `format` is given) to pick the format.
    ///   - format: Overrides format detection from the extension.
    /// - Returns: The documents found and any problems met.
    public func parse(_ bytes: [UInt8], path: String, format: SourceFormat? = nil) -> DocumentParseResult {
        switch format ?? SourceFormat(path: path) {
        case .jsonl:
            return JSONLParser(textField: jsonlTextField, titleField: jsonlTitleField)
                .parse(bytes, path: path)
        case .text:
            return parseWholeFile(bytes, path: path, PlainTextParser.parse)
        case .markdown:
            return parseWholeFile(bytes, path: path, MarkdownParser.parse)
        case .html:
            return parseWholeFile(bytes, path: path, HTMLParser.parse)
        }
    }

    /// Decodes a single-document file and hands the text to `body`.
    private func parseWholeFile(
        _ bytes: [UInt8],
        path: String,
        _ body: (String, String) -> ParsedDocument
    ) -> DocumentParseResult {
        switch TextDecoding.decode(bytes[...]) {
        case .failure(let failure):
            return DocumentParseResult(problems: [ParseProblem(source: path, message: failure.message)])
        case .success(let text):
            let document = body(text, path)
            if TextScan.isBlank(document.text) {
                return DocumentParseResult(problems: [ParseProblem(source: path, message: "no text content")])
            }
            return DocumentParseResult(documents: [document])
        }
    }
}
