import Testing
import LoomGenAI

@Suite struct VectorTests {
    @Test func vectorMathBasics() {
        #expect(VectorMath.dot([1, 2, 3], [4, 5, 6]) == 32)
        #expect(VectorMath.norm([3, 4]) == 5)
        #expect(VectorMath.normalized([3, 4]) == [0.6, 0.8])
        #expect(VectorMath.normalized([0, 0]) == [0, 0])
        #expect(abs(VectorMath.cosineSimilarity([1, 0], [1, 1]) - 0.70710677) < 1e-6)
        #expect(VectorMath.cosineSimilarity([1, 0], [0, 0]) == 0)
        #expect(VectorMath.cosineSimilarity([2, 0], [-3, 0]) == -1)
        // Long vectors exercise the SIMD path plus a tail.
        let a = (0..<37).map { Float($0) }
        let b = (0..<37).map { Float(37 - $0) }
        let expected = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        #expect(VectorMath.dot(a, b) == expected)
    }

    @Test func exactIndexRanksByCosine() throws {
        var index = try ExactVectorIndex(dimension: 2)
        #expect(try index.add([1, 0]) == 0)
        #expect(try index.add([0, 5]) == 1)
        #expect(try index.add([1, 1]) == 2)
        #expect(try index.add([-1, 0]) == 3)
        let hits = index.search([2, 0.1], k: 3)
        #expect(hits.map(\.id) == [0, 2, 1])
        #expect(abs(hits[0].score - 0.99875) < 1e-4)
        #expect(index.search([1, 0], k: 10, allow: { $0 != 0 }).map(\.id) == [2, 1, 3])
        #expect(index.search([1, 0, 0], k: 3).isEmpty)
        #expect(throws: VectorIndexError.dimensionMismatch(expected: 2, actual: 1)) { try index.add([1]) }
        #expect(throws: VectorIndexError.nonFiniteComponent) { try index.add([.nan, 1]) }
        #expect(throws: VectorIndexError.invalidDimension(0)) { try ExactVectorIndex(dimension: 0) }
    }
}
