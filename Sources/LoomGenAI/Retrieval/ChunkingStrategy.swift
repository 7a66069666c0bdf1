/// How ``Chunker`` splits a document into chunks. Sizes are counted in
/// ``TextTokenizer`` tokens.
///
/// JSON form (snake_case keys, `kind` selects the case):
/// - `{"kind":"tokens","size":200,"overlap":40}`
/// - `{"kind":"headings","max_tokens":400}`
/// - `{"kind":"sentences","max_tokens":200,"overlap_sentences":1}`
///
/// `overlap` and `overlap_sentences` default to 0 when absent. Decoding
/// validates the values (see ``validate()``).
public enum ChunkingStrategy: Sendable, Hashable, Codable {
    /// Fixed windows of `size` tokens; consecutive windows share `overlap` tokens.
    case tokens(size: Int, overlap: Int)
    /// Markdown sections split at ATX headings, each at most `maxTokens`
    /// tokens (long sections are split by paragraph, then by token window).
    case headings(maxTokens: Int)
    /// Whole sentences packed up to `maxTokens` tokens; neighbouring chunks
    /// share `overlapSentences` sentences.
    case sentences(maxTokens: Int, overlapSentences: Int)

    /// Throws a ``ValidationError`` explaining the first invalid value:
    /// sizes must be at least 1, overlaps at least 0, and a token overlap
    /// smaller than the window size.
    public func validate() throws {
        switch self {
        case .tokens(let size, let overlap):
            if size < 1 { throw ValidationError("tokens chunking: size must be at least 1 (got \(size))") }
            if overlap < 0 { throw ValidationError("tokens chunking: overlap must not be negative (got \(overlap))") }
            if overlap >= size {
                throw ValidationError("tokens chunking: overlap (\(overlap)) must be smaller than size (\(size))")
            }
        case .headings(let maxTokens):
            if maxTokens < 1 {
                throw ValidationError("headings chunking: max_tokens must be at least 1 (got \(maxTokens))")
            }
        case .sentences(let maxTokens, let overlapSentences):
            if maxTokens < 1 {
                throw ValidationError("sentences chunking: max_tokens must be at least 1 (got \(maxTokens))")
            }
            if overlapSentences < 0 {
                throw ValidationError(
                    "sentences chunking: overlap_sentences must not be negative (got \(overlapSentences))")
            }
        }
    }

    /// A valid strategy closest to `self` (values clamped into range); used
    /// by ``Chunker`` so that it never fails.
    var clamped: ChunkingStrategy {
        switch self {
        case .tokens(let size, let overlap):
            let validSize = max(1, size)
            return .tokens(size: validSize, overlap: min(max(0, overlap), validSize - 1))
        case .headings(let maxTokens):
            return .headings(maxTokens: max(1, maxTokens))
        case .sentences(let maxTokens, let overlapSentences):
            return .sentences(maxTokens: max(1, maxTokens), overlapSentences: max(0, overlapSentences))
        }
    }

    private enum CodingKeys: String, CodingKey {
        case kind, size, overlap
        case maxTokens = "max_tokens"
        case overlapSentences = "overlap_sentences"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "tokens":
            self = .tokens(
                size: try container.decode(Int.self, forKey: .size),
                overlap: try container.decodeIfPresent(Int.self, forKey: .overlap) ?? 0)
        case "headings":
            self = .headings(maxTokens: try container.decode(Int.self, forKey: .maxTokens))
        case "sentences":
            self = .sentences(
                maxTokens: try container.decode(Int.self, forKey: .maxTokens),
                overlapSentences: try container.decodeIfPresent(Int.self, forKey: .overlapSentences) ?? 0)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container,
                debugDescription: "unknown chunking kind \"\(kind)\" (expected tokens, headings or sentences)")
        }
        do {
            try validate()
        } catch let error as ValidationError {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .tokens(let size, let overlap):
            try container.encode("tokens", forKey: .kind)
            try container.encode(size, forKey: .size)
            try container.encode(overlap, forKey: .overlap)
        case .headings(let maxTokens):
            try container.encode("headings", forKey: .kind)
            try container.encode(maxTokens, forKey: .maxTokens)
        case .sentences(let maxTokens, let overlapSentences):
            try container.encode("sentences", forKey: .kind)
            try container.encode(maxTokens, forKey: .maxTokens)
            try container.encode(overlapSentences, forKey: .overlapSentences)
        }
    }
}
