import Foundation
import LoomCore

/// Coefficients of a linear model, on the features as given (not standardised): one row per
/// output (one for regression and binary classification, one per class for multinomial).
public struct LinearParameters: Codable, Sendable, Hashable {
    public var coefficients: [[Double]]
    public var intercepts: [Double]
    /// Optimiser iterations (logistic) and whether it converged.
    public var iterations: Int?
    public var converged: Bool?
}

/// Means and standard deviations of the features, for fitting on a well-conditioned scale.
struct Standardizer {
    var mean: [Double]
    var scale: [Double]
    /// Whether the feature varies at all.
    var varies: [Bool]

    init(_ x: FeatureMatrix) {
        let d = x.width
        let sums = Parallel.map(x.count) { range -> [Double] in
            var local = [Double](repeating: 0, count: d)
            x.values.withUnsafeBufferPointer { v in
                for i in range {
                    let row = i * d
                    for j in 0..<d { local[j] += v[row + j] }
                }
            }
            return local
        }
        let n = Double(max(x.count, 1))
        var mean = [Double](repeating: 0, count: d)
        for p in sums { for j in 0..<d { mean[j] += p[j] } }
        for j in 0..<d { mean[j] /= n }
        // Second pass about the mean (two-pass variance).
        let squares = Parallel.map(x.count) { range -> [Double] in
            var local = [Double](repeating: 0, count: d)
            x.values.withUnsafeBufferPointer { v in
                for i in range {
                    let row = i * d
                    for j in 0..<d {
                        let e = v[row + j] - mean[j]
                        local[j] += e * e
                    }
                }
            }
            return local
        }
        var scale = [Double](repeating: 0, count: d)
        for p in squares { for j in 0..<d { scale[j] += p[j] } }
        varies = scale.map { $0 > 0 }
        self.scale = scale.map { $0 > 0 ? sqrt($0 / n) : 1 }
        self.mean = mean
    }

    func apply(_ x: FeatureMatrix) -> FeatureMatrix {
        var out = x
        let d = x.width
        out.values.withUnsafeMutableBufferPointer { v in
            let base = v.baseAddress!
            Parallel.ranges(x.count) { range, _ in
                for i in range {
                    for j in 0..<d { base[i * d + j] = (base[i * d + j] - mean[j]) / scale[j] }
                }
            }
        }
        return out
    }
}

/// Least squares with an L2 penalty: minimises Σ (y − b − x·w)² + l2·‖w‖² (scikit-learn's
/// `Ridge(alpha=l2)`; `l2 = 0` is ordinary least squares). The intercept is not penalised.
public enum RidgeRegression {
    public static func fit(_ x: FeatureMatrix, _ y: [Double], l2: Double) throws(LoomError) -> LinearParameters {
        let d = x.width
        let n = x.count
        guard n > 0 else { throw LoomError.invalidParameter("no rows to train on") }
        let st = Standardizer(x)
        let z = st.apply(x)
        let yMean = y.reduce(0, +) / Double(n)
        // Z'Z and Z'(y − ȳ), per worker then summed.
        let parts = Parallel.map(n) { range -> [Double] in
            var local = [Double](repeating: 0, count: d * d + d)
            z.values.withUnsafeBufferPointer { v in
                for i in range {
                    let row = i * d
                    let r = y[i] - yMean
                    for a in 0..<d {
                        let za = v[row + a]
                        if za == 0 { continue }
                        local[d * d + a] += za * r
                        for b in a..<d { local[a * d + b] += za * v[row + b] }
                    }
                }
            }
            return local
        }
        var gram = [Double](repeating: 0, count: d * d)
        var rhs = [Double](repeating: 0, count: d)
        for p in parts {
            for k in 0..<(d * d) { gram[k] += p[k] }
            for a in 0..<d { rhs[a] += p[d * d + a] }
        }
        for a in 0..<d { for b in 0..<a { gram[a * d + b] = gram[b * d + a] } }
        for j in 0..<d {
            // The penalty on the unscaled coefficient w = v / scale; a constant feature gets
            // coefficient 0.
            gram[j * d + j] += st.varies[j] ? l2 / (st.scale[j] * st.scale[j]) : 1
        }
        let v = try solveSymmetric(gram, rhs, size: d)
        var w = [Double](repeating: 0, count: d)
        var b = yMean
        for j in 0..<d {
            w[j] = st.varies[j] ? v[j] / st.scale[j] : 0
            b -= w[j] * st.mean[j]
        }
        return LinearParameters(coefficients: [w], intercepts: [b])
    }

    /// Solves A v = r for symmetric positive (semi)definite A by Cholesky; a singular A (collinear
    /// features without a penalty) gets the smallest ridge that makes it solvable.
    static func solveSymmetric(_ a: [Double], _ r: [Double], size d: Int) throws(LoomError) -> [Double] {
        let trace = (0..<d).reduce(0.0) { $0 + a[$1 * d + $1] }
        var jitter = 0.0
        for _ in 0..<12 {
            var l = a
            for j in 0..<d { l[j * d + j] += jitter }
            if let solution = cholesky(&l, r, d) { return solution }
            jitter = jitter == 0 ? max(trace / Double(max(d, 1)), 1) * 1e-10 : jitter * 10
        }
        throw LoomError.invalidParameter("the features are degenerate: the least-squares system cannot be solved; add an L2 penalty")
    }

    static func cholesky(_ l: inout [Double], _ r: [Double], _ d: Int) -> [Double]? {
        for j in 0..<d {
            var s = l[j * d + j]
            for k in 0..<j { s -= l[j * d + k] * l[j * d + k] }
            guard s > 0, s.isFinite else { return nil }
            let diag = sqrt(s)
            l[j * d + j] = diag
            for i in (j + 1)..<max(j + 1, d) {
                var t = l[i * d + j]
                for k in 0..<j { t -= l[i * d + k] * l[j * d + k] }
                l[i * d + j] = t / diag
            }
        }
        var y = r
        for i in 0..<d {
            for k in 0..<i { y[i] -= l[i * d + k] * y[k] }
            y[i] /= l[i * d + i]
        }
        for i in stride(from: d - 1, through: 0, by: -1) {
            for k in (i + 1)..<max(i + 1, d) { y[i] -= l[k * d + i] * y[k] }
            y[i] /= l[i * d + i]
        }
        return y
    }
}

/// Logistic regression with an L2 penalty: minimises Σ log-loss + (l2 / 2)·‖W‖², binary (one
/// coefficient vector, for the second class) or multinomial (one per class, softmax). This is
/// scikit-learn's `LogisticRegression(C=1/l2)` objective. Fitted by L-BFGS on standardised
/// features with the penalty carried over, so the optimum is that of the raw features.
public enum LogisticRegression {
    /// `labels`: class index per row, `classes` of them.
    public static func fit(
        _ x: FeatureMatrix, labels: [Int32], classes: Int, l2: Double, maxIterations: Int = 1000, tolerance: Double = 1e-9
    ) throws(LoomError) -> LinearParameters {
        let n = x.count
        let d = x.width
        guard n > 0 else { throw LoomError.invalidParameter("no rows to train on") }
        guard classes >= 2 else { throw LoomError.invalidParameter("classification needs at least two classes") }
        let st = Standardizer(x)
        let z = st.apply(x)
        let k = classes == 2 ? 1 : classes
        let stride = d + 1
        // Penalty weight per standardised coefficient: the raw coefficient is v / scale.
        let penalty = (0..<d).map { st.varies[$0] ? l2 / (st.scale[$0] * st.scale[$0]) : 1 }
        let invN = 1 / Double(n)
        func objective(_ params: [Double], _ gradient: inout [Double]) -> Double {
            let parts = Parallel.map(n, minimum: 4096) { range -> (Double, [Double]) in
                var loss = 0.0
                let grad = UnsafeMutablePointer<Double>.allocate(capacity: k * stride)
                grad.initialize(repeating: 0, count: k * stride)
                let scores = UnsafeMutablePointer<Double>.allocate(capacity: k)
                defer { grad.deallocate(); scores.deallocate() }
                z.values.withUnsafeBufferPointer { vb in
                    params.withUnsafeBufferPointer { wb in
                        let v = vb.baseAddress!
                        let w = wb.baseAddress!
                        for i in range {
                            let x = v + i * d
                            for c in 0..<k { scores[c] = w[c * stride + d] + Self.dot(w + c * stride, x, d) }
                            let label = Int(labels[i])
                            if k == 1 {
                                let s = scores[0]
                                let yv = label == 1 ? 1.0 : 0.0
                                // One exp for both the loss and the probability.
                                let e = exp(-abs(s))
                                loss += max(s, 0) + log1p(e) - yv * s
                                let r = (s >= 0 ? 1 / (1 + e) : e / (1 + e)) - yv
                                Self.addScaled(grad, x, r, d)
                                grad[d] += r
                            } else {
                                var top = -Double.infinity
                                for c in 0..<k { top = max(top, scores[c]) }
                                let labelScore = scores[label]
                                var total = 0.0
                                for c in 0..<k {
                                    scores[c] = exp(scores[c] - top)
                                    total += scores[c]
                                }
                                loss += log(total) + top - labelScore
                                for c in 0..<k {
                                    let r = scores[c] / total - (c == label ? 1 : 0)
                                    Self.addScaled(grad + c * stride, x, r, d)
                                    grad[c * stride + d] += r
                                }
                            }
                        }
                    }
                }
                return (loss, Array(UnsafeBufferPointer(start: grad, count: k * stride)))
            }
            var loss = parts.reduce(0) { $0 + $1.0 }
            for i in 0..<gradient.count { gradient[i] = 0 }
            for (_, part) in parts {
                for i in 0..<part.count { gradient[i] += part[i] }
            }
            for c in 0..<k {
                for j in 0..<d {
                    let wj = params[c * stride + j]
                    loss += 0.5 * penalty[j] * wj * wj
                    gradient[c * stride + j] += penalty[j] * wj
                }
            }
            for i in 0..<gradient.count { gradient[i] *= invN }
            return loss * invN
        }
        let solver = LBFGS(maxIterations: maxIterations, gradientTolerance: tolerance)
        let result = solver.minimize(from: [Double](repeating: 0, count: k * stride), objective)
        var coefficients: [[Double]] = []
        var intercepts: [Double] = []
        for c in 0..<k {
            var w = [Double](repeating: 0, count: d)
            var b = result.x[c * stride + d]
            for j in 0..<d {
                w[j] = st.varies[j] ? result.x[c * stride + j] / st.scale[j] : 0
                b -= w[j] * st.mean[j]
            }
            coefficients.append(w)
            intercepts.append(b)
        }
        return LinearParameters(coefficients: coefficients, intercepts: intercepts, iterations: result.iterations, converged: result.converged)
    }
}

extension LogisticRegression {
    /// Σ a[j]·b[j] with four running sums (lets the compiler use vector registers).
    @inline(__always) static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var j = 0
        while j + 4 <= n {
            s0 += a[j] * b[j]
            s1 += a[j + 1] * b[j + 1]
            s2 += a[j + 2] * b[j + 2]
            s3 += a[j + 3] * b[j + 3]
            j += 4
        }
        while j < n {
            s0 += a[j] * b[j]
            j += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// out[j] += r·x[j].
    @inline(__always) static func addScaled(_ out: UnsafeMutablePointer<Double>, _ x: UnsafePointer<Double>, _ r: Double, _ n: Int) {
        for j in 0..<n { out[j] += r * x[j] }
    }
}

extension LinearParameters {
    /// Scores straight from the frame's columns, without building the feature matrix: each
    /// column adds its share to every row's scores (`count × outputs`).
    func scores(_ sources: [FeatureEncoding.Source], rows n: Int) -> [Double] {
        let k = intercepts.count
        var out = [Double](repeating: 0, count: n * k)
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            Parallel.ranges(n, minimum: 16384) { range, _ in
                for c in 0..<k {
                    let w = coefficients[c]
                    let intercept = intercepts[c]
                    for i in range { base[i * k + c] = intercept }
                    for source in sources {
                        if let numbers = source.numbers {
                            let wj = w[source.offset]
                            numbers.withUnsafeBufferPointer { v in
                                for i in range {
                                    let x = v[i]
                                    base[i * k + c] += wj * (x.isNaN ? source.fill : x)
                                }
                            }
                        } else if let codes = source.codes {
                            // The weight of each category code (0 for unknown ones).
                            let weights = source.map.map { $0 >= 0 ? w[source.offset + $0] : 0 }
                            codes.withUnsafeBufferPointer { codes in
                                for i in range where codes[i] >= 0 { base[i * k + c] += weights[Int(codes[i])] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Scores (x·w + b) per row and output: `count × outputs`.
    func scores(_ x: FeatureMatrix) -> [Double] {
        let k = intercepts.count
        let d = x.width
        var out = [Double](repeating: 0, count: x.count * k)
        let flat = coefficients.flatMap { $0 }
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            x.values.withUnsafeBufferPointer { v in
                Parallel.ranges(x.count) { range, _ in
                    flat.withUnsafeBufferPointer { w in
                        for i in range {
                            for c in 0..<k {
                                base[i * k + c] = intercepts[c] + LogisticRegression.dot(w.baseAddress! + c * d, v.baseAddress! + i * d, d)
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
