/// Basic vector operations over `[Float]`.
///
/// Functions taking two vectors use the common prefix when their lengths
/// differ. Inner loops run over unsafe buffers with 8-wide SIMD accumulators.
public enum VectorMath: Sendable {
    /// The dot product `Σ a[i]·b[i]`.
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { left in
            b.withUnsafeBufferPointer { right in
                guard let x = left.baseAddress, let y = right.baseAddress else { return 0 }
                return dot(x, y, count: min(left.count, right.count))
            }
        }
    }

    /// The Euclidean (L2) norm.
    public static func norm(_ vector: [Float]) -> Float {
        dot(vector, vector).squareRoot()
    }

    /// `vector` scaled to unit length. A zero vector (or one whose norm is
    /// not finite) is returned unchanged.
    public static func normalized(_ vector: [Float]) -> [Float] {
        var copy = vector
        normalize(&copy)
        return copy
    }

    /// Scales `vector` to unit length in place (zero vectors are left as is).
    public static func normalize(_ vector: inout [Float]) {
        let length = norm(vector)
        guard length > 0, length.isFinite else { return }
        let scale = 1 / length
        vector.withUnsafeMutableBufferPointer { buffer in
            for index in buffer.indices { buffer[index] *= scale }
        }
    }

    /// Cosine similarity in [-1, 1]; 0 if either vector has zero length.
    public static func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { left in
            b.withUnsafeBufferPointer { right in
                guard let x = left.baseAddress, let y = right.baseAddress else { return 0 }
                let count = min(left.count, right.count)
                let xx = dot(x, x, count: count)
                let yy = dot(y, y, count: count)
                guard xx > 0, yy > 0 else { return 0 }
                let cosine = dot(x, y, count: count) / (xx.squareRoot() * yy.squareRoot())
                return min(1, max(-1, cosine))
            }
        }
    }

    /// Dot product of `count` floats at `a` and `b` (the index hot path).
    ///
    /// Optimised builds use two 8-wide SIMD accumulators. Unoptimised
    /// (`DEBUG`) builds use four scalar accumulators instead, because generic
    /// SIMD code is over ten times slower than scalar code at `-Onone`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        #if DEBUG
        return scalarDot(a, b, count: count)
        #else
        return simdDot(a, b, count: count)
        #endif
    }

    @inline(__always)
    static func simdDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var index = 0
        var sum0 = SIMD8<Float>()
        var sum1 = SIMD8<Float>()
        let rawA = UnsafeRawPointer(a)
        let rawB = UnsafeRawPointer(b)
        let stride = MemoryLayout<Float>.stride
        while index + 16 <= count {
            let offset = index * stride
            sum0 += rawA.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                * rawB.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            sum1 += rawA.loadUnaligned(fromByteOffset: offset + 8 * stride, as: SIMD8<Float>.self)
                * rawB.loadUnaligned(fromByteOffset: offset + 8 * stride, as: SIMD8<Float>.self)
            index += 16
        }
        if index + 8 <= count {
            let offset = index * stride
            sum0 += rawA.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                * rawB.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            index += 8
        }
        var total = (sum0 + sum1).sum()
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }

    @inline(__always)
    static func scalarDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var sum0: Float = 0
        var sum1: Float = 0
        var sum2: Float = 0
        var sum3: Float = 0
        var index = 0
        while index + 4 <= count {
            sum0 += a[index] * b[index]
            sum1 += a[index + 1] * b[index + 1]
            sum2 += a[index + 2] * b[index + 2]
            sum3 += a[index + 3] * b[index + 3]
            index += 4
        }
        var total = (sum0 + sum1) + (sum2 + sum3)
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }
}

/// Validation and normalisation of vectors entering an index.
enum VectorInput {
    /// Checks the dimension and finiteness, then L2-normalises.
    static func prepare(_ vector: [Float], dimension: Int) throws -> [Float] {
        guard vector.count == dimension else {
            throw VectorIndexError.dimensionMismatch(expected: dimension, actual: vector.count)
        }
        guard vector.allSatisfy(\.isFinite) else { throw VectorIndexError.nonFiniteComponent }
        return VectorMath.normalized(vector)
    }
}
