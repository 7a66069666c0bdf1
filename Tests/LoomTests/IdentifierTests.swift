import Testing

@testable import LoomCore

/// Identifiers come from kernel randomness fetched in bulk (`RandomPool`): they must stay
/// well-formed, distinct across many refills and threads, and look random bit by bit.
@Suite("Random identifiers")
struct IdentifierTests {
    @Test func hexIDsAreWellFormedAndDistinctAcrossRefillsAndThreads() async {
        let perTask = RandomPool.words * 3  // each task crosses several refills of the pool
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<perTask).map { _ in Identifiers.newHexID() } }
            }
            var all: [String] = []
            for await part in group { all += part }
            return all
        }
        #expect(ids.count == 8 * perTask)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { id in id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } })
        // Every one of the 128 bits is set in about half of the identifiers (a pool handing out
        // zeros, or the same words twice, fails this or the distinctness above).
        var ones = [Int](repeating: 0, count: 128)
        for id in ids {
            for (i, c) in id.utf8.enumerated() {
                let v = c <= 57 ? Int(c - 48) : Int(c - 87)
                for bit in 0..<4 where v & (1 << bit) != 0 { ones[i * 4 + bit] += 1 }
            }
        }
        let n = Double(ids.count)
        #expect(ones.allSatisfy { abs(Double($0) / n - 0.5) < 0.05 })
    }

    @Test func timeOrderedIDsSortByTimeAndKeepEightyRandomBits() {
        let times: [Int64] = [1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 4_000_000_000_000]
        let ids = times.flatMap { t in (0..<500).map { _ in (t, Identifiers.newTimeOrderedHexID(millis: t)) } }
        #expect(Set(ids.map(\.1)).count == ids.count)
        #expect(ids.allSatisfy { $0.1.utf8.count == 32 && $0.1.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } })
        // The first 12 digits are the time; a later time sorts after every id of an earlier one.
        #expect(ids.allSatisfy { UInt64($0.1.prefix(12), radix: 16) == UInt64($0.0) })
        for (earlier, later) in zip(times, times.dropFirst()) {
            let last = ids.filter { $0.0 == earlier }.map(\.1).max()!
            let first = ids.filter { $0.0 == later }.map(\.1).min()!
            #expect(last < first)
        }
        // The rest is random: each of the 80 bits after the time is set in about half of them.
        var ones = [Int](repeating: 0, count: 80)
        for (_, id) in ids {
            for (i, c) in id.utf8.dropFirst(12).enumerated() {
                let v = c <= 57 ? Int(c - 48) : Int(c - 87)
                for bit in 0..<4 where v & (1 << bit) != 0 { ones[i * 4 + bit] += 1 }
            }
        }
        #expect(ones.allSatisfy { abs(Double($0) / Double(ids.count) - 0.5) < 0.08 })
    }

    @Test func theKernelFillsWholeFetches() {
        let words = RandomPool.fetch(RandomPool.words)
        #expect(words.count == RandomPool.words)
        #expect(Set(words).count == words.count)
    }
}
