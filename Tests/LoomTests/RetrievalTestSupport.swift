import Foundation
@testable import LoomGenAI

/// Deterministic generator for test data: the library's SplitMix64, with a normal sample.
struct TestRandom: RandomNumberGenerator {
    private var generator: SplitMix64

    init(seed: UInt64) {
        generator = SplitMix64(seed: seed)
    }

    mutating func next() -> UInt64 { generator.next() }

    /// A standard normal sample (Box–Muller).
    mutating func gaussian() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A random unit vector (uniform on the sphere).
    mutating func unitVector(dimension: Int) -> [Float] {
        var vector = (0..<dimension).map { _ in gaussian() }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for index in vector.indices { vector[index] /= norm }
        return vector
    }
}

/// Fraction of `expected` ids found in `actual`.
func recall(_ actual: [Int], _ expected: [Int]) -> Double {
    guard !expected.isEmpty else { return 1 }
    let found = Set(actual)
    return Double(expected.filter(found.contains).count) / Double(expected.count)
}
