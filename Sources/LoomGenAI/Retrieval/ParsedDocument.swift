/// One document extracted from a source file.
public struct ParsedDocument: Sendable, Hashable, Codable {
    /// Where the document came from: the file's relative path, plus
    /// `"#<line>"` (1-based) for records of a JSONL file.
    public var source: String
    /// A short human-readable title (at most 200 characters).
    public var title: String
    /// The document's text, ready for chunking (never empty or whitespace-only).
    public var text: String
    /// String metadata (front-matter keys, JSONL scalar fields).
    public var metadata: [String: String]

    /// Creates a document.
    public init(source: String, title: String, text: String, metadata: [String: String] = [:]) {
        self.source = source
        self.title = title
        self.text = text
        self.metadata = metadata
    }
}

/// A non-fatal problem met while parsing (an invalid line, undecodable bytes...).
public struct ParseProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The file path, plus `"#<line>"` when the problem concerns one JSONL line.
    public var source: String
    /// What went wrong.
    public var message: String

    /// Creates a problem report.
    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

/// The outcome of parsing one file: the documents that could be extracted and
/// the problems that prevented others from being extracted.
public struct DocumentParseResult: Sendable, Hashable, Codable {
    /// Successfully parsed documents, in file order.
    public var documents: [ParsedDocument]
    /// Problems, in file order. Parsing never throws; everything is reported here.
    public var problems: [ParseProblem]

    /// Creates a result.
    public init(documents: [ParsedDocument] = [], problems: [ParseProblem] = []) {
        self.documents = documents
        self.problems = problems
    }
}
