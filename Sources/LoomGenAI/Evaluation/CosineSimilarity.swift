/// Cosine similarity between two embedding vectors.
public enum CosineSimilarity: Sendable {
    /// Why the similarity is undefined.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case lengthMismatch(Int, Int)
        case nonFinite
        case zeroVector

        public var description: String {
            switch self {
            case .empty: "embedding is empty"
            case .lengthMismatch(let a, let b): "embedding lengths differ (\(a) vs \(b))"
            case .nonFinite: "embedding contains NaN or infinity"
            case .zeroVector: "embedding is a zero vector"
            }
        }
    }

    /// cos(a, b) = a·b / (‖a‖ ‖b‖), accumulated in `Double` and clamped to
    /// [-1, 1]. Each vector is first scaled by its largest magnitude so huge or
    /// tiny components cannot overflow or underflow. Works for `[Float]`,
    /// `[Double]` and any other `BinaryFloatingPoint` element.
    public static func compute<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) throws(Failure) -> Double {
        guard !a.isEmpty, !b.isEmpty else { throw .empty }
        guard a.count == b.count else { throw .lengthMismatch(a.count, b.count) }
        let x = a.map { Double($0) }
        let y = b.map { Double($0) }
        guard x.allSatisfy(\.isFinite), y.allSatisfy(\.isFinite) else { throw .nonFinite }
        let scaleX = x.reduce(0.0) { max($0, abs($1)) }
        let scaleY = y.reduce(0.0) { max($0, abs($1)) }
        guard scaleX > 0, scaleY > 0 else { throw .zeroVector }
        var dot = 0.0
        var normX = 0.0
        var normY = 0.0
        for index in x.indices {
            let u = x[index] / scaleX
            let v = y[index] / scaleY
            dot += u * v
            normX += u * u
            normY += v * v
        }
        let cosine = dot / (normX.squareRoot() * normY.squareRoot())
        return min(1, max(-1, cosine))
    }
}
