import Foundation

/// Approximate nearest-neighbour search by cosine similarity with a
/// hierarchical navigable small world graph (Malkov & Yashunin).
///
/// Vectors are L2-normalised on insertion and stored contiguously in one
/// `[Float]`; links live in flat arrays (see the level layout in the source).
/// Neighbours are chosen with the paper's heuristic (algorithm 4, without
/// extending candidates or keeping pruned connections). A new node selects
/// up to `2·m` neighbours on level 0 (the level-0 capacity, as FAISS does;
/// this gives clearly better recall than selecting `m`) and up to `m` on
/// upper levels; a full neighbour list is re-pruned with the same
/// heuristic when a back-link is added. Levels come from a
/// SplitMix64 generator seeded by ``HNSWParameters/seed``, so the same
/// parameters and insertion order always build the same graph.
///
/// `HNSWIndex` is a value type: ``add(_:)`` is `mutating`, while searches
/// are read-only and may run concurrently on a shared copy (each search
/// borrows a reusable visited set from an internal thread-safe pool).
public struct HNSWIndex: Sendable {
    /// The vector dimension.
    public let dimension: Int
    /// Construction and search parameters.
    public let parameters: HNSWParameters
    /// The number of vectors.
    public internal(set) var count: Int = 0

    var vectors: [Float] = []
    var graph: HNSWGraph
    /// The entry node, or -1 while empty.
    var entryPoint: Int = -1
    /// The top level of the entry node.
    var maxLevel: Int = 0
    var random: SplitMix64
    let visitedPool = VisitedPool()

    /// Highest level a node can get.
    static let levelCap = 31

    /// Creates an empty index.
    /// - Throws: ``VectorIndexError`` for `dimension < 1` or invalid parameters.
    public init(dimension: Int, parameters: HNSWParameters = HNSWParameters()) throws {
        guard dimension >= 1 else { throw VectorIndexError.invalidDimension(dimension) }
        try parameters.validate()
        self.dimension = dimension
        self.parameters = parameters
        self.graph = HNSWGraph(m: parameters.m)
        self.random = SplitMix64(seed: parameters.seed)
    }

    /// Adds a vector and returns its id (0, 1, 2, …).
    /// - Throws: ``VectorIndexError`` for a wrong length, NaN/infinite values,
    ///   or when the index is full (2³² − 2 vectors).
    @discardableResult
    public mutating func add(_ vector: [Float]) throws -> Int {
        let normalized = try VectorInput.prepare(vector, dimension: dimension)
        guard count < Int(UInt32.max) - 1 else { throw VectorIndexError.capacityExceeded }
        let node = count
        let level = randomLevel()
        vectors.append(contentsOf: normalized)
        graph.addNode(level: level)
        count += 1
        guard entryPoint >= 0 else {
            entryPoint = node
            maxLevel = level
            return node
        }
        var visited = visitedPool.take()
        let stored = vectors
        stored.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            connect(node, level: level, vectors: base, visited: &visited)
        }
        visitedPool.give(visited)
        if level > maxLevel {
            maxLevel = level
            entryPoint = node
        }
        return node
    }

    /// Draws a level: `⌊−ln(U) / ln(m)⌋`, capped at ``levelCap``.
    private mutating func randomLevel() -> Int {
        let scale = 1 / log(Double(parameters.m))
        let level = -log(random.nextOpenUnit()) * scale
        return min(Self.levelCap, Int(level))
    }

    /// Distance used inside the graph: negative dot product of unit vectors
    /// (so smaller is closer and `-distance` is the cosine similarity).
    @inline(__always)
    func distance(_ query: UnsafePointer<Float>, _ node: UInt32, _ vectors: UnsafePointer<Float>) -> Float {
        -VectorMath.dot(query, vectors + Int(node) * dimension, count: dimension)
    }
}
