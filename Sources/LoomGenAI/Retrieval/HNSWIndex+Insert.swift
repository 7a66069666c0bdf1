extension HNSWIndex {
    /// Links a freshly appended `node` into every level up to `level`
    /// (Malkov & Yashunin, algorithm 1).
    mutating func connect(
        _ node: Int, level: Int, vectors: UnsafePointer<Float>, visited: inout VisitedSet
    ) {
        let query = vectors + node * dimension
        var entry = DistanceHeap.Entry(key: 0, node: UInt32(entryPoint))
        entry.key = distance(query, entry.node, vectors)
        if maxLevel > level {
            for layer in stride(from: maxLevel, to: level, by: -1) {
                entry = greedyClosest(query, from: entry, level: layer, vectors: vectors)
            }
        }
        var entries = [entry]
        for layer in stride(from: min(level, maxLevel), through: 0, by: -1) {
            let candidates = searchLayer(
                query, entries: entries, ef: parameters.efConstruction, level: layer,
                vectors: vectors, visited: &visited, allow: nil)
            let selected = selectNeighbors(candidates, limit: graph.capacity(level: layer), vectors: vectors)
            graph.setNeighbors(node, level: layer, selected.map(\.node))
            for neighbor in selected {
                link(Int(neighbor.node), to: UInt32(node), level: layer, vectors: vectors)
            }
            entries = candidates
        }
    }

    /// Adds `target` to `node`'s neighbours on `level`; when the list is
    /// full, re-selects the best set with the heuristic.
    private mutating func link(_ node: Int, to target: UInt32, level: Int, vectors: UnsafePointer<Float>) {
        if graph.appendNeighbor(node, level: level, target) { return }
        let base = vectors + node * dimension
        var candidates = graph.neighbors(node, level: level).map {
            DistanceHeap.Entry(key: distance(base, $0, vectors), node: $0)
        }
        candidates.append(DistanceHeap.Entry(key: distance(base, target, vectors), node: target))
        candidates.sort { $0.key < $1.key || ($0.key == $1.key && $0.node < $1.node) }
        let selected = selectNeighbors(candidates, limit: graph.capacity(level: level), vectors: vectors)
        graph.setNeighbors(node, level: level, selected.map(\.node))
    }

    /// The neighbour-selection heuristic (algorithm 4): walking candidates
    /// from closest to farthest, keep one only if it is closer to the base
    /// than to every neighbour kept so far. Fewer than `limit` candidates
    /// are all kept. `candidates` must be sorted by distance to the base.
    func selectNeighbors(
        _ candidates: [DistanceHeap.Entry], limit: Int, vectors: UnsafePointer<Float>
    ) -> [DistanceHeap.Entry] {
        guard candidates.count >= limit else { return candidates }
        var selected: [DistanceHeap.Entry] = []
        selected.reserveCapacity(limit)
        for candidate in candidates {
            if selected.count >= limit { break }
            let point = vectors + Int(candidate.node) * dimension
            var keep = true
            for chosen in selected where distance(point, chosen.node, vectors) < candidate.key {
                keep = false
                break
            }
            if keep { selected.append(candidate) }
        }
        return selected
    }
}
