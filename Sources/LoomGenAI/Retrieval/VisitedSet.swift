import Foundation

/// A visited-node set for graph search: a stamp per node, where a node is
/// visited when its stamp equals the current generation. Clearing is O(1)
/// (bump the generation), so one array is reused across searches.
struct VisitedSet {
    private var stamps: [UInt32] = []
    private var generation: UInt32 = 0

    /// Clears the set and makes room for node ids below `capacity`.
    mutating func reset(capacity: Int) {
        if stamps.count < capacity {
            stamps.append(contentsOf: repeatElement(0, count: capacity - stamps.count))
        }
        generation &+= 1
        if generation == 0 {
            for index in stamps.indices { stamps[index] = 0 }
            generation = 1
        }
    }

    /// Marks `node`; returns `true` if it was not visited yet.
    @inline(__always)
    mutating func insert(_ node: UInt32) -> Bool {
        let index = Int(node)
        if stamps[index] == generation { return false }
        stamps[index] = generation
        return true
    }

    /// Runs `body` with direct access to the stamps and the current
    /// generation (for hot loops: a node is visited iff its stamp equals it).
    mutating func withStamps<R>(_ body: (UnsafeMutablePointer<UInt32>, UInt32) -> R) -> R {
        let current = generation
        return stamps.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else {
                var unused: UInt32 = 0
                return body(&unused, current)
            }
            return body(base, current)
        }
    }
}

/// A thread-safe pool of ``VisitedSet``s so concurrent searches on a shared
/// index each reuse a set without allocating.
final class VisitedPool: @unchecked Sendable {
    // Safety: `free` is only touched while holding `lock`.
    private let lock = NSLock()
    private var free: [VisitedSet] = []

    /// Takes a set from the pool (or a new one); callers `reset` it before use.
    func take() -> VisitedSet {
        lock.lock()
        defer { lock.unlock() }
        return free.popLast() ?? VisitedSet()
    }

    /// Returns a set to the pool (at most a few are kept).
    func give(_ set: VisitedSet) {
        lock.lock()
        if free.count < 8 { free.append(set) }
        lock.unlock()
    }
}
