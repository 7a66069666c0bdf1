/// One search result: a document or vector id together with its score.
///
/// Every index in this module returns hits sorted by `score` descending and,
/// for equal scores, by `id` ascending, so results are fully deterministic.
public struct ScoredHit: Sendable, Hashable, Codable {
    /// The id returned when the item was added to its index.
    public var id: Int
    /// The relevance score; its meaning depends on the index (BM25 score,
    /// cosine similarity, or reciprocal-rank-fusion score).
    public var score: Double

    /// Creates a hit.
    public init(id: Int, score: Double) {
        self.id = id
        self.score = score
    }

    /// `true` when `self` ranks strictly before `other`
    /// (higher score first, then lower id).
    @inlinable
    func ranksBefore(_ other: ScoredHit) -> Bool {
        if score != other.score { return score > other.score }
        return id < other.id
    }
}
