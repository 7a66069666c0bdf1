/// Splits text into ``TextChunk``s according to a ``ChunkingStrategy``.
public enum Chunker: Sendable {
    /// Chunks `text`.
    ///
    /// Chunk texts are exact substrings of `text`. Chunks without any token
    /// are never produced, so whitespace-only (or punctuation-only) text
    /// yields `[]`. An invalid strategy is clamped to the nearest valid one
    /// (call ``ChunkingStrategy/validate()`` first to reject it instead).
    public static func chunk(_ text: String, strategy: ChunkingStrategy) -> [TextChunk] {
        let source = ChunkSource(text)
        let pieces: [ChunkPiece]
        switch strategy.clamped {
        case .tokens(let size, let overlap):
            pieces = TokenWindows.pieces(source, tokens: 0..<source.spans.count, size: size, overlap: overlap)
        case .headings(let maxTokens):
            pieces = HeadingChunker.pieces(source, maxTokens: maxTokens)
        case .sentences(let maxTokens, let overlapSentences):
            pieces = SentenceChunker.pieces(source, maxTokens: maxTokens, overlapSentences: overlapSentences)
        }
        var chunks: [TextChunk] = []
        chunks.reserveCapacity(pieces.count)
        for piece in pieces where piece.tokenCount > 0 && piece.start < piece.end {
            chunks.append(TextChunk(
                ordinal: chunks.count,
                text: source.text(piece.start..<piece.end),
                heading: piece.heading,
                tokenCount: piece.tokenCount))
        }
        return chunks
    }
}

/// A chunk before materialisation: a UTF-8 byte range of the source.
struct ChunkPiece {
    var start: Int
    var end: Int
    var tokenCount: Int
    var heading: String?
}

/// The text being chunked as UTF-8 bytes, with its token spans.
struct ChunkSource {
    let bytes: [UInt8]
    let spans: [TokenSpan]

    init(_ text: String) {
        bytes = Array(text.utf8)
        spans = bytes.withUnsafeBufferPointer(TokenScanner.spans)
    }

    /// The text of a byte range (always on scalar boundaries here).
    func text(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    /// Indices into `spans` of the tokens starting inside `byteRange`.
    func tokens(in byteRange: Range<Int>) -> Range<Int> {
        firstToken(atOrAfter: byteRange.lowerBound)..<firstToken(atOrAfter: byteRange.upperBound)
    }

    /// Index of the first token whose start is `>= offset`.
    private func firstToken(atOrAfter offset: Int) -> Int {
        var low = 0
        var high = spans.count
        while low < high {
            let mid = (low + high) / 2
            if spans[mid].start < offset { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// `range` without leading and trailing ASCII whitespace.
    func trimmed(_ range: Range<Int>) -> Range<Int> {
        var start = range.lowerBound
        var end = range.upperBound
        while start < end, isASCIIWhitespace(bytes[start]) { start += 1 }
        while end > start, isASCIIWhitespace(bytes[end - 1]) { end -= 1 }
        return start..<end
    }

    /// Byte ranges of the lines in `range` (without the `\n`).
    func lines(in range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = range.lowerBound
        while start < range.upperBound {
            var end = start
            while end < range.upperBound, bytes[end] != 10 { end += 1 }
            result.append(start..<end)
            start = end + 1
        }
        return result
    }

    /// The line as a `Substring`, for Markdown syntax checks.
    func line(_ range: Range<Int>) -> Substring {
        Substring(text(range))
    }

    /// `true` if the byte range holds only ASCII whitespace.
    func isBlank(_ range: Range<Int>) -> Bool {
        bytes[range].allSatisfy(isASCIIWhitespace)
    }
}

@inline(__always)
func isASCIIWhitespace(_ byte: UInt8) -> Bool {
    byte == 32 || byte == 9 || byte == 10 || byte == 13 || byte == 11 || byte == 12
}
