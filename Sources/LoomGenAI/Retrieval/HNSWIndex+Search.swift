extension HNSWIndex {
    /// The `k` most similar vectors by cosine similarity (score descending,
    /// then id ascending).
    ///
    /// - Parameters:
    ///   - query: A vector of length ``dimension``; it is normalised here.
    ///   - k: Maximum number of hits. When `k` exceeds ``count``, every
    ///     reachable (allowed) vector is returned.
    ///   - ef: Candidate list size (default ``HNSWParameters/efSearch``);
    ///     raised to at least `k`. Larger is slower and more accurate.
    ///   - allow: Optional filter. The search still travels through
    ///     disallowed nodes but only collects allowed ones, so selective
    ///     filters cost more time rather than recall.
    /// - Returns: `[]` if `k <= 0`, the index is empty, or the query has the
    ///   wrong length or non-finite values.
    public func search(
        _ query: [Float], k: Int, ef: Int? = nil, allow: ((Int) -> Bool)? = nil
    ) -> [ScoredHit] {
        guard k > 0, entryPoint >= 0,
              let normalized = try? VectorInput.prepare(query, dimension: dimension)
        else { return [] }
        let width = max(ef ?? parameters.efSearch, k)
        var visited = visitedPool.take()
        let found: [DistanceHeap.Entry] = vectors.withUnsafeBufferPointer { stored in
            normalized.withUnsafeBufferPointer { queryBuffer in
                guard let base = stored.baseAddress, let queryBase = queryBuffer.baseAddress else { return [] }
                var entry = DistanceHeap.Entry(key: 0, node: UInt32(entryPoint))
                entry.key = distance(queryBase, entry.node, base)
                for layer in stride(from: maxLevel, to: 0, by: -1) {
                    entry = greedyClosest(queryBase, from: entry, level: layer, vectors: base)
                }
                return searchLayer(
                    queryBase, entries: [entry], ef: width, level: 0,
                    vectors: base, visited: &visited, allow: allow)
            }
        }
        visitedPool.give(visited)
        return found.prefix(k).map { ScoredHit(id: Int($0.node), score: Double(-$0.key)) }
    }

    /// Greedy descent on one upper level: move to a closer neighbour while one exists.
    func greedyClosest(
        _ query: UnsafePointer<Float>, from start: DistanceHeap.Entry, level: Int, vectors: UnsafePointer<Float>
    ) -> DistanceHeap.Entry {
        var best = start
        var improved = true
        while improved {
            improved = false
            for neighbor in graph.neighbors(Int(best.node), level: level) {
                let candidate = distance(query, neighbor, vectors)
                if candidate < best.key {
                    best = DistanceHeap.Entry(key: candidate, node: neighbor)
                    improved = true
                }
            }
        }
        return best
    }

    /// Best-first search on one level (algorithm 2) keeping the `ef` closest
    /// allowed nodes. Returns them sorted by distance (then id).
    func searchLayer(
        _ query: UnsafePointer<Float>,
        entries: [DistanceHeap.Entry],
        ef: Int,
        level: Int,
        vectors: UnsafePointer<Float>,
        visited: inout VisitedSet,
        allow: ((Int) -> Bool)?
    ) -> [DistanceHeap.Entry] {
        visited.reset(capacity: count)
        var candidates = DistanceHeap(capacity: 64)
        var results = DistanceHeap(capacity: min(ef, count) + 1)  // keys are -distance
        visited.withStamps { stamps, generation in
            graph.withLinks { links in
                for entry in entries where stamps[Int(entry.node)] != generation {
                    stamps[Int(entry.node)] = generation
                    candidates.push(entry.key, entry.node)
                    if allow?(Int(entry.node)) ?? true {
                        results.push(-entry.key, entry.node)
                        if results.count > ef { results.pop() }
                    }
                }
                var bound = results.top.map { -$0.key } ?? .infinity
                while let current = candidates.pop() {
                    if current.key > bound, results.count >= ef { break }
                    let neighbors = links.neighbors(Int(current.node), level: level)
                    for slot in 0..<neighbors.count {
                        let neighbor = neighbors[slot]
                        if stamps[Int(neighbor)] == generation { continue }
                        stamps[Int(neighbor)] = generation
                        let candidate = distance(query, neighbor, vectors)
                        guard results.count < ef || candidate < bound else { continue }
                        candidates.push(candidate, neighbor)
                        if allow?(Int(neighbor)) ?? true {
                            results.push(-candidate, neighbor)
                            if results.count > ef { results.pop() }
                            bound = results.top.map { -$0.key } ?? .infinity
                        }
                    }
                }
            }
        }
        return results.entries
            .map { DistanceHeap.Entry(key: -$0.key, node: $0.node) }
            .sorted { $0.key < $1.key || ($0.key == $1.key && $0.node < $1.node) }
    }
}
