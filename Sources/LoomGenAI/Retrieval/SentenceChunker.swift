/// The `sentences` strategy: whole sentences packed up to a token budget.
enum SentenceChunker {
    /// Packs consecutive sentences while the total stays within `maxTokens`.
    /// Each chunk after the first starts with up to `overlapSentences` of the
    /// previous chunk's last sentences (fewer if they would not fit together
    /// with at least one new sentence). A sentence longer than `maxTokens`
    /// is emitted alone as token windows, and no overlap crosses it.
    static func pieces(_ source: ChunkSource, maxTokens: Int, overlapSentences: Int) -> [ChunkPiece] {
        let sentences = SentenceSplitter.sentences(source.bytes)
        let tokenCounts = sentences.map { source.tokens(in: $0).count }
        var result: [ChunkPiece] = []
        var next = 0
        var floor = 0  // earliest sentence a chunk may start with
        while next < sentences.count {
            if tokenCounts[next] > maxTokens {
                result += TokenWindows.pieces(
                    source, tokens: source.tokens(in: sentences[next]), size: maxTokens, overlap: 0)
                next += 1
                floor = next
                continue
            }
            var first = max(floor, next - overlapSentences)
            var total = tokenCounts[first...next].reduce(0, +)
            while total > maxTokens, first < next {
                total -= tokenCounts[first]
                first += 1
            }
            var end = next + 1
            while end < sentences.count, total + tokenCounts[end] <= maxTokens {
                total += tokenCounts[end]
                end += 1
            }
            result.append(ChunkPiece(
                start: sentences[first].lowerBound, end: sentences[end - 1].upperBound,
                tokenCount: total, heading: nil))
            floor = first + 1
            next = end
        }
        return result
    }
}
