/// One chunk of a document produced by ``Chunker``.
public struct TextChunk: Sendable, Hashable, Codable {
    /// Position of the chunk within its document (0, 1, 2, …).
    public var ordinal: Int
    /// The chunk text: an exact substring of the original text (never empty).
    public var text: String
    /// For the headings strategy, the path of enclosing headings
    /// (e.g. `"Install > Linux"`); `nil` before the first heading and for
    /// other strategies.
    public var heading: String?
    /// Number of ``TextTokenizer`` tokens in `text` (always at least 1).
    public var tokenCount: Int

    /// Creates a chunk.
    public init(ordinal: Int, text: String, heading: String? = nil, tokenCount: Int) {
        self.ordinal = ordinal
        self.text = text
        self.heading = heading
        self.tokenCount = tokenCount
    }
}
