/// Construction and search parameters for ``HNSWIndex``.
///
/// JSON keys: `m`, `ef_construction`, `ef_search`, `seed` (each optional;
/// missing keys take the defaults). Decoding validates the values.
public struct HNSWParameters: Sendable, Hashable, Codable {
    /// Links per node on the upper levels; level 0 allows `2·m` (default 16).
    public var m: Int
    /// Candidate list size while inserting (default 200).
    public var efConstruction: Int
    /// Default candidate list size while searching (default 256: recall@10 of 0.94 at 128 and
    /// 0.99 at 256 on bench/retrieval_bench.py's topic corpus of 20,000 chunks); a search
    /// always uses at least `k`.
    public var efSearch: Int
    /// Seed of the level generator; the same seed and insertion order give
    /// the same graph (default 42).
    public var seed: UInt64

    /// Creates parameters.
    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 256, seed: UInt64 = 42) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
    }

    /// The candidate list size an index of `count` vectors searches with when its spec leaves
    /// `ef_search` out: about count / 500 (2,048 at a million), at least 256 and at most 4,096.
    /// HNSW's recall at a fixed `ef` falls as the graph grows; on bench/retrieval_bench.py's topic
    /// corpus recall@10 is 0.99 at 256 for 20,000 vectors, and at 1,000,000 vectors 0.70 at
    /// 256, 0.92 at 1,024, 0.97 at 2,048 and 0.99 at 4,096 (BENCHMARKS.md).
    public static func automaticEfSearch(count: Int) -> Int {
        min(4096, max(256, Int((Double(count) * 2048 / 1_000_000).rounded())))
    }

    /// The largest accepted `m`.
    public static let maximumM = 512

    /// Throws ``VectorIndexError/invalidParameters(_:)`` unless
    /// `2 <= m <= 512`, `efConstruction >= 1` and `efSearch >= 1`.
    public func validate() throws {
        guard m >= 2, m <= Self.maximumM else {
            throw VectorIndexError.invalidParameters("m must be between 2 and \(Self.maximumM) (got \(m))")
        }
        guard efConstruction >= 1 else {
            throw VectorIndexError.invalidParameters("ef_construction must be at least 1 (got \(efConstruction))")
        }
        guard efSearch >= 1 else {
            throw VectorIndexError.invalidParameters("ef_search must be at least 1 (got \(efSearch))")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case m
        case efConstruction = "ef_construction"
        case efSearch = "ef_search"
        case seed
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = HNSWParameters()
        self.init(
            m: try container.decodeIfPresent(Int.self, forKey: .m) ?? defaults.m,
            efConstruction: try container.decodeIfPresent(Int.self, forKey: .efConstruction)
                ?? defaults.efConstruction,
            efSearch: try container.decodeIfPresent(Int.self, forKey: .efSearch) ?? defaults.efSearch,
            seed: try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? defaults.seed)
        do {
            try validate()
        } catch let error as VectorIndexError {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(m, forKey: .m)
        try container.encode(efConstruction, forKey: .efConstruction)
        try container.encode(efSearch, forKey: .efSearch)
        try container.encode(seed, forKey: .seed)
    }
}
