/// Keeps the best `k` hits seen so far (higher score, then lower id) in a
/// bounded binary heap whose root is the worst kept hit.
struct TopKHits {
    let k: Int
    private var heap: [ScoredHit] = []

    init(k: Int) {
        self.k = max(0, k)
        heap.reserveCapacity(min(self.k, 4096))
    }

    /// The number of hits kept.
    var count: Int { heap.count }

    /// The worst kept hit, once `k` hits are kept.
    var worstWhenFull: ScoredHit? { heap.count == k ? heap.first : nil }

    /// Offers a hit; it is kept if fewer than `k` hits are kept or it ranks
    /// before the worst kept one.
    mutating func insert(_ hit: ScoredHit) {
        guard k > 0 else { return }
        if heap.count < k {
            heap.append(hit)
            siftUp(heap.count - 1)
        } else if hit.ranksBefore(heap[0]) {
            heap[0] = hit
            siftDown(0)
        }
    }

    /// The kept hits, best first.
    func sorted() -> [ScoredHit] {
        heap.sorted { $0.ranksBefore($1) }
    }

    /// `true` if `a` is worse than `b` (belongs nearer the root).
    @inline(__always)
    private func isWorse(_ a: ScoredHit, _ b: ScoredHit) -> Bool {
        b.ranksBefore(a)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard isWorse(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var worst = left
            let right = left + 1
            if right < heap.count, isWorse(heap[right], heap[left]) { worst = right }
            guard isWorse(heap[worst], heap[parent]) else { return }
            heap.swapAt(worst, parent)
            parent = worst
        }
    }
}
