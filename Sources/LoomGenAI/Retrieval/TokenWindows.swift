/// Fixed-size token windows, shared by all chunking strategies.
enum TokenWindows {
    /// Windows of `size` tokens over `tokens` (indices into `source.spans`),
    /// stepping `size - overlap`. Each window spans the original text from
    /// its first token's start to its last token's end. The last window ends
    /// at the last token; no window is a suffix of the previous one.
    static func pieces(
        _ source: ChunkSource,
        tokens: Range<Int>,
        size: Int,
        overlap: Int,
        heading: String? = nil
    ) -> [ChunkPiece] {
        let step = max(1, size - overlap)
        var result: [ChunkPiece] = []
        var first = tokens.lowerBound
        while first < tokens.upperBound {
            let last = min(first + size, tokens.upperBound)
            result.append(ChunkPiece(
                start: source.spans[first].start,
                end: source.spans[last - 1].end,
                tokenCount: last - first,
                heading: heading))
            if last == tokens.upperBound { break }
            first += step
        }
        return result
    }
}
