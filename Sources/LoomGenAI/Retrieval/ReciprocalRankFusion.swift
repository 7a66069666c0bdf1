/// Reciprocal rank fusion: merges several rankings into one.
public enum ReciprocalRankFusion: Sendable {
    /// Fuses rankings (each a list of ids, best first).
    ///
    /// Each id scores `Σ 1 / (k + rank)` over the rankings that contain it,
    /// with 1-based ranks; only an id's first occurrence within a ranking
    /// counts. Results are sorted by score descending, then id ascending,
    /// and cut to `limit` (`limit <= 0` returns `[]`). A negative `k` is
    /// treated as 0.
    public static func fuse(_ rankings: [[Int]], k: Int = 60, limit: Int) -> [ScoredHit] {
        guard limit > 0 else { return [] }
        let constant = Double(max(0, k))
        var scores: [Int: Double] = [:]
        for ranking in rankings {
            var seen = Set<Int>()
            for (offset, id) in ranking.enumerated() where seen.insert(id).inserted {
                scores[id, default: 0] += 1 / (constant + Double(offset + 1))
            }
        }
        var top = TopKHits(k: limit)
        for (id, score) in scores {
            top.insert(ScoredHit(id: id, score: score))
        }
        return top.sorted()
    }
}
