import Foundation

/// Rank-based retrieval metrics with binary relevance over the top `k` ids.
///
/// Only the first occurrence of an id counts; a repeated id keeps its
/// position but is not relevant again (so nDCG stays within [0, 1]).
public enum RetrievalMetrics: Sendable {
    /// Why a retrieval metric cannot be computed.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case noRelevantIds
        case invalidK(Int)

        public var description: String {
            switch self {
            case .noRelevantIds: "no relevant ids labeled"
            case .invalidK(let k): "k must be at least 1, got \(k)"
            }
        }
    }

    /// 1-based ranks (≤ k) at which a relevant id first appears.
    static func relevantRanks(retrieved: [String], relevant: Set<String>, k: Int) -> [Int] {
        var seen: Set<String> = []
        var ranks: [Int] = []
        for (offset, id) in retrieved.prefix(k).enumerated() {
            guard seen.insert(id).inserted else { continue }
            if relevant.contains(id) { ranks.append(offset + 1) }
        }
        return ranks
    }

    private static func check(relevant: Set<String>, k: Int) throws(Failure) {
        if k < 1 { throw .invalidK(k) }
        if relevant.isEmpty { throw .noRelevantIds }
    }

    /// Hit rate@k: 1 if any relevant id is among the first `k` retrieved, else 0.
    public static func hitRate(retrieved: [String], relevant: Set<String>, k: Int) throws(Failure) -> Double {
        try check(relevant: relevant, k: k)
        return relevantRanks(retrieved: retrieved, relevant: relevant, k: k).isEmpty ? 0 : 1
    }

    /// Reciprocal rank@k: 1 / rank of the first relevant id within the first `k`, else 0.
    public static func reciprocalRank(retrieved: [String], relevant: Set<String>, k: Int) throws(Failure) -> Double {
        try check(relevant: relevant, k: k)
        guard let first = relevantRanks(retrieved: retrieved, relevant: relevant, k: k).first else { return 0 }
        return 1 / Double(first)
    }

    /// DCG and ideal DCG at k with binary relevance:
    /// DCG = Σ_{relevant rank i ≤ k} 1 / log2(i + 1);
    /// IDCG = Σ_{i = 1}^{min(k, |relevant|)} 1 / log2(i + 1).
    public static func dcg(retrieved: [String], relevant: Set<String>, k: Int) throws(Failure) -> (dcg: Double, idcg: Double) {
        try check(relevant: relevant, k: k)
        let dcg = relevantRanks(retrieved: retrieved, relevant: relevant, k: k)
            .reduce(0.0) { $0 + discount($1) }
        let idcg = (1...min(k, relevant.count)).reduce(0.0) { $0 + discount($1) }
        return (dcg, idcg)
    }

    /// nDCG@k = DCG / IDCG (see `dcg`), in [0, 1].
    public static func ndcg(retrieved: [String], relevant: Set<String>, k: Int) throws(Failure) -> Double {
        let (dcg, idcg) = try dcg(retrieved: retrieved, relevant: relevant, k: k)
        return dcg / idcg
    }

    private static func discount(_ rank: Int) -> Double {
        1 / log2(Double(rank) + 1)
    }
}
