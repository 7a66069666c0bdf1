extension HNSWIndex {
    static let magic: [UInt8] = Array("HNSW".utf8)
    static let formatVersion: UInt32 = 1

    /// A versioned little-endian binary encoding of the index (parameters,
    /// vectors, graph and generator state, so adding can continue after
    /// loading), ending with a checksum. Load it with ``init(serialized:)``.
    public func serialized() -> [UInt8] {
        var writer = BinaryWriter(magic: Self.magic, version: Self.formatVersion)
        writer.write(dimension)
        writer.write(parameters.m)
        writer.write(parameters.efConstruction)
        writer.write(parameters.efSearch)
        writer.write(parameters.seed)
        writer.write(count)
        writer.write(entryPoint)
        writer.write(maxLevel)
        writer.write(random.state)
        writer.write(graph.upperCounts.count)
        writer.writeElements(vectors)
        writer.writeElements(graph.levels)
        writer.writeElements(graph.level0Counts)
        writer.writeElements(graph.level0Links)
        writer.writeElements(graph.upperStart)
        writer.writeElements(graph.upperCounts)
        writer.writeElements(graph.upperLinks)
        return writer.finish()
    }

    /// Loads an index written by ``serialized()``.
    ///
    /// Magic, version, checksum and structure (sizes, link counts and
    /// targets, levels, entry point, finite vectors) are validated; invalid
    /// input throws a ``SerializationError`` and never crashes.
    public init(serialized bytes: [UInt8]) throws {
        var reader = try BinaryReader(bytes, magic: Self.magic, kind: "HNSW index", version: Self.formatVersion)
        let dimension = try reader.readInt(in: 1...Int(Int32.max), "dimension")
        let parameters = HNSWParameters(
            m: try reader.readInt(in: 2...HNSWParameters.maximumM, "m"),
            efConstruction: try reader.readInt(in: 1...Int.max, "ef_construction"),
            efSearch: try reader.readInt(in: 1...Int.max, "ef_search"),
            seed: try reader.read(UInt64.self))
        let count = try reader.readInt(in: 0...(Int(UInt32.max) - 2), "count")
        let entryPoint = try reader.readInt(in: -1...max(-1, count - 1), "entry point")
        let maxLevel = try reader.readInt(in: 0...Self.levelCap, "max level")
        let randomState = try reader.read(UInt64.self)
        let blockCount = try reader.readInt(in: 0...(count * Self.levelCap), "upper block count")
        let m = parameters.m
        guard count <= reader.remaining / max(1, dimension * 4) else { throw SerializationError.truncated }
        var graph = HNSWGraph(m: m)
        let vectors = try reader.readFloats(count: count * dimension)
        graph.levels = try reader.readElements(UInt8.self, count: count)
        graph.level0Counts = try reader.readElements(UInt16.self, count: count)
        guard count <= reader.remaining / (2 * m * 4) else { throw SerializationError.truncated }
        graph.level0Links = try reader.readElements(UInt32.self, count: count * 2 * m)
        graph.upperStart = try reader.readElements(UInt32.self, count: count)
        graph.upperCounts = try reader.readElements(UInt16.self, count: blockCount)
        guard blockCount <= reader.remaining / (m * 4) else { throw SerializationError.truncated }
        graph.upperLinks = try reader.readElements(UInt32.self, count: blockCount * m)
        try reader.expectEnd()

        guard vectors.allSatisfy(\.isFinite) else { throw SerializationError.corrupt("non-finite vector component") }
        try Self.validate(graph, count: count, blockCount: blockCount, entryPoint: entryPoint, maxLevel: maxLevel)

        self.dimension = dimension
        self.parameters = parameters
        self.count = count
        self.vectors = vectors
        self.graph = graph
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        self.random = SplitMix64(seed: randomState)
    }

    /// Structural checks: block layout, link counts and targets, entry point.
    private static func validate(
        _ graph: HNSWGraph, count: Int, blockCount: Int, entryPoint: Int, maxLevel: Int
    ) throws {
        var nextBlock = 0
        var highest = 0
        for node in 0..<count {
            let level = Int(graph.levels[node])
            guard level <= levelCap else { throw SerializationError.corrupt("node level out of range") }
            highest = max(highest, level)
            if level == 0 {
                guard graph.upperStart[node] == HNSWGraph.noBlock else {
                    throw SerializationError.corrupt("level-0 node with upper links")
                }
            } else {
                guard Int(graph.upperStart[node]) == nextBlock else {
                    throw SerializationError.corrupt("upper link blocks out of order")
                }
                nextBlock += level
            }
            guard nextBlock <= blockCount else { throw SerializationError.corrupt("upper link blocks overflow") }
            for layer in 0...level {
                let capacity = graph.capacity(level: layer)
                let used = layer == 0
                    ? Int(graph.level0Counts[node])
                    : Int(graph.upperCounts[Int(graph.upperStart[node]) + layer - 1])
                guard used <= capacity else { throw SerializationError.corrupt("too many links") }
                for neighbor in graph.neighbors(node, level: layer) {
                    let target = Int(neighbor)
                    guard target < count, target != node, Int(graph.levels[target]) >= layer else {
                        throw SerializationError.corrupt("invalid link target")
                    }
                }
            }
        }
        guard nextBlock == blockCount else { throw SerializationError.corrupt("unused upper link blocks") }
        if count == 0 {
            guard entryPoint == -1, maxLevel == 0 else { throw SerializationError.corrupt("entry point in empty index") }
        } else {
            guard entryPoint >= 0, Int(graph.levels[entryPoint]) == maxLevel, maxLevel == highest else {
                throw SerializationError.corrupt("inconsistent entry point")
            }
        }
    }
}
