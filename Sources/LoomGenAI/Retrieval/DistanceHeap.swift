/// A binary min-heap of (key, node) pairs used by HNSW search. Store
/// `-distance` as the key to get a max-heap. Ties break on the node id so
/// results are deterministic.
struct DistanceHeap {
    struct Entry {
        var key: Float
        var node: UInt32
    }

    private(set) var entries: [Entry] = []

    init(capacity: Int = 0) {
        entries.reserveCapacity(capacity)
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var top: Entry? { entries.first }

    @inline(__always)
    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.key < b.key || (a.key == b.key && a.node < b.node)
    }

    mutating func push(_ key: Float, _ node: UInt32) {
        entries.append(Entry(key: key, node: node))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(entries[child], entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Entry? {
        guard let first = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < entries.count else { break }
                var smallest = left
                if left + 1 < entries.count, Self.less(entries[left + 1], entries[left]) { smallest = left + 1 }
                guard Self.less(entries[smallest], entries[parent]) else { break }
                entries.swapAt(smallest, parent)
                parent = smallest
            }
        }
        return first
    }
}
