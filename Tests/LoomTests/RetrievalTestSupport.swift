import Foundation

/// Deterministic generator for test data (SplitMix64).
struct TestRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

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
