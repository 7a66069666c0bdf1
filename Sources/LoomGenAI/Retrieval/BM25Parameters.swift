/// Okapi BM25 parameters. The defaults match `rank_bm25.BM25Okapi`.
public struct BM25Parameters: Sendable, Hashable, Codable {
    /// Term-frequency saturation (default 1.5).
    public var k1: Double
    /// Document-length normalisation strength, 0…1 (default 0.75).
    public var b: Double
    /// Negative idfs are replaced by `epsilon × average idf` (default 0.25).
    public var epsilon: Double

    /// Creates parameters.
    public init(k1: Double = 1.5, b: Double = 0.75, epsilon: Double = 0.25) {
        self.k1 = k1
        self.b = b
        self.epsilon = epsilon
    }
}
