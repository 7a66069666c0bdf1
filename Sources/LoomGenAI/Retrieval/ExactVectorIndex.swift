/// Brute-force cosine similarity search: scores every vector. Exact, so it
/// serves as the recall reference for ``HNSWIndex``; fine for small sets.
///
/// Vectors are L2-normalised on insertion and stored contiguously.
public struct ExactVectorIndex: Sendable {
    /// The vector dimension.
    public let dimension: Int
    /// The number of vectors.
    public private(set) var count: Int = 0
    private var vectors: [Float] = []

    /// Creates an empty index.
    /// - Throws: ``VectorIndexError/invalidDimension(_:)`` if `dimension < 1`.
    public init(dimension: Int) throws {
        guard dimension >= 1 else { throw VectorIndexError.invalidDimension(dimension) }
        self.dimension = dimension
    }

    /// Adds a vector and returns its id (0, 1, 2, …).
    /// - Throws: ``VectorIndexError`` for a wrong length or NaN/infinite values.
    @discardableResult
    public mutating func add(_ vector: [Float]) throws -> Int {
        let normalized = try VectorInput.prepare(vector, dimension: dimension)
        vectors.append(contentsOf: normalized)
        count += 1
        return count - 1
    }

    /// The `k` most similar vectors by cosine similarity (score descending,
    /// then id ascending), optionally restricted to ids where `allow` is true.
    /// Returns `[]` if `k <= 0` or the query has the wrong length or
    /// non-finite values.
    public func search(_ query: [Float], k: Int, allow: ((Int) -> Bool)? = nil) -> [ScoredHit] {
        guard k > 0, let normalized = try? VectorInput.prepare(query, dimension: dimension) else { return [] }
        var top = TopKHits(k: k)
        vectors.withUnsafeBufferPointer { stored in
            normalized.withUnsafeBufferPointer { queryBuffer in
                guard let base = stored.baseAddress, let queryBase = queryBuffer.baseAddress else { return }
                for id in 0..<count where allow?(id) ?? true {
                    let similarity = VectorMath.dot(base + id * dimension, queryBase, count: dimension)
                    top.insert(ScoredHit(id: id, score: Double(similarity)))
                }
            }
        }
        return top.sorted()
    }
}
