/// The link structure of an HNSW graph in flat arrays.
///
/// Level 0 gives every node a fixed block of `2·m` slots in `level0Links`
/// (with the used count in `level0Counts`). A node whose top level is
/// `L > 0` owns `L` consecutive blocks of `m` slots in `upperLinks`
/// (counts in `upperCounts`), starting at block `upperStart[node]`; blocks
/// are allocated in insertion order.
struct HNSWGraph: Sendable {
    static let noBlock = UInt32.max

    let m: Int
    var levels: [UInt8] = []
    var level0Counts: [UInt16] = []
    var level0Links: [UInt32] = []
    var upperStart: [UInt32] = []
    var upperCounts: [UInt16] = []
    var upperLinks: [UInt32] = []

    init(m: Int) {
        self.m = m
    }

    /// Slots per node on `level`.
    @inline(__always)
    func capacity(level: Int) -> Int {
        level == 0 ? 2 * m : m
    }

    /// Appends a node whose top level is `level`.
    mutating func addNode(level: Int) {
        levels.append(UInt8(level))
        level0Counts.append(0)
        level0Links.append(contentsOf: repeatElement(0, count: 2 * m))
        if level > 0 {
            upperStart.append(UInt32(upperCounts.count))
            upperCounts.append(contentsOf: repeatElement(0, count: level))
            upperLinks.append(contentsOf: repeatElement(0, count: level * m))
        } else {
            upperStart.append(Self.noBlock)
        }
    }

    /// The block index of `node` on upper `level` (`level >= 1`).
    @inline(__always)
    private func block(_ node: Int, level: Int) -> Int {
        Int(upperStart[node]) + level - 1
    }

    /// The neighbours of `node` on `level` (the node must reach that level).
    @inline(__always)
    func neighbors(_ node: Int, level: Int) -> ArraySlice<UInt32> {
        if level == 0 {
            let base = node * 2 * m
            return level0Links[base..<(base + Int(level0Counts[node]))]
        }
        let block = block(node, level: level)
        let base = block * m
        return upperLinks[base..<(base + Int(upperCounts[block]))]
    }

    /// Runs `body` with read access to the link arrays of both tiers, for
    /// hot loops (see ``LinkView``).
    func withLinks<R>(_ body: (LinkView) -> R) -> R {
        level0Links.withUnsafeBufferPointer { level0 in
            level0Counts.withUnsafeBufferPointer { counts0 in
                upperLinks.withUnsafeBufferPointer { upper in
                    upperCounts.withUnsafeBufferPointer { upperCounts in
                        upperStart.withUnsafeBufferPointer { starts in
                            body(LinkView(
                                m: m, level0: level0, level0Counts: counts0, upper: upper,
                                upperCounts: upperCounts, upperStart: starts))
                        }
                    }
                }
            }
        }
    }

    /// Replaces the neighbours of `node` on `level` (at most `capacity(level)`).
    mutating func setNeighbors(_ node: Int, level: Int, _ ids: [UInt32]) {
        let used = min(ids.count, capacity(level: level))
        if level == 0 {
            let base = node * 2 * m
            for index in 0..<used { level0Links[base + index] = ids[index] }
            level0Counts[node] = UInt16(used)
        } else {
            let block = block(node, level: level)
            let base = block * m
            for index in 0..<used { upperLinks[base + index] = ids[index] }
            upperCounts[block] = UInt16(used)
        }
    }

    /// Appends one neighbour if there is a free slot; returns `false` if full.
    mutating func appendNeighbor(_ node: Int, level: Int, _ id: UInt32) -> Bool {
        if level == 0 {
            let used = Int(level0Counts[node])
            guard used < 2 * m else { return false }
            level0Links[node * 2 * m + used] = id
            level0Counts[node] = UInt16(used + 1)
        } else {
            let block = block(node, level: level)
            let used = Int(upperCounts[block])
            guard used < m else { return false }
            upperLinks[block * m + used] = id
            upperCounts[block] = UInt16(used + 1)
        }
        return true
    }
}

/// Unsafe read-only view of an ``HNSWGraph``'s links, valid only inside
/// ``HNSWGraph/withLinks(_:)``.
struct LinkView {
    let m: Int
    let level0: UnsafeBufferPointer<UInt32>
    let level0Counts: UnsafeBufferPointer<UInt16>
    let upper: UnsafeBufferPointer<UInt32>
    let upperCounts: UnsafeBufferPointer<UInt16>
    let upperStart: UnsafeBufferPointer<UInt32>

    /// The neighbours of `node` on `level` (the node must reach that level).
    @inline(__always)
    func neighbors(_ node: Int, level: Int) -> UnsafeBufferPointer<UInt32> {
        if level == 0 {
            return UnsafeBufferPointer(rebasing: level0[(node * 2 * m)..<(node * 2 * m + Int(level0Counts[node]))])
        }
        let block = Int(upperStart[node]) + level - 1
        return UnsafeBufferPointer(rebasing: upper[(block * m)..<(block * m + Int(upperCounts[block]))])
    }
}
