import Foundation

/// Work shared out over the machine's cores. The bodies run at once on several threads: each
/// call of a body must touch only memory that no other call touches (its own range or its own
/// output), which is what lets them skip `Sendable` checking.
enum Parallel {
    /// A value handed to `concurrentPerform`'s workers unchecked (see above).
    struct Unchecked<T>: @unchecked Sendable {
        let value: T
    }

    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Cuts `0..<n` into one contiguous range per worker (fewer for small `n`) and runs `body`
    /// on each at once; `body` gets the range and the worker's number.
    static func ranges(_ n: Int, minimum: Int = 8192, _ body: (Range<Int>, Int) -> Void) {
        let parts = max(1, min(cores, n / max(1, minimum)))
        if parts == 1 { return body(0..<n, 0) }
        withoutActuallyEscaping(body) { body in
            let work = Unchecked(value: body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                work.value((n * p / parts)..<(n * (p + 1) / parts), p)
            }
        }
    }

    /// Cuts `0..<n` as `ranges` does and returns what `body` makes of each range, in order.
    static func map<T>(_ n: Int, minimum: Int = 8192, _ body: (Range<Int>) -> T) -> [T] {
        let parts = max(1, min(cores, n / max(1, minimum)))
        if parts == 1 { return [body(0..<n)] }
        let out = UnsafeMutableBufferPointer<T>.allocate(capacity: parts)
        defer { out.deallocate() }
        withoutActuallyEscaping(body) { body in
            let work = Unchecked(value: (body, out))
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                (work.value.1.baseAddress! + p).initialize(to: work.value.0((n * p / parts)..<(n * (p + 1) / parts)))
            }
        }
        let result = Array(out)
        _ = out.deinitialize()
        return result
    }

    /// Runs `body(i)` for every `i` in `0..<n`, at once on the cores.
    static func each(_ n: Int, _ body: (Int) -> Void) {
        if n == 1 || cores == 1 {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let work = Unchecked(value: body)
            DispatchQueue.concurrentPerform(iterations: n) { work.value($0) }
        }
    }
}

/// Limited-memory BFGS over a smooth function, with a backtracking (Armijo) line search.
struct LBFGS {
    var memory = 10
    var maxIterations = 1000
    /// Stop when the largest gradient component is this small.
    var gradientTolerance = 1e-9
    /// Or when an iteration lowers the value by less than this, relative.
    var valueTolerance = 1e-14

    struct Result {
        var x: [Double]
        var value: Double
        var iterations: Int
        var converged: Bool
    }

    /// `f(x, &gradient)` returns the value and fills the gradient.
    func minimize(from start: [Double], _ f: ([Double], inout [Double]) -> Double) -> Result {
        let n = start.count
        var x = start
        var g = [Double](repeating: 0, count: n)
        var fx = f(x, &g)
        var s: [[Double]] = []
        var y: [[Double]] = []
        var rho: [Double] = []
        var newX = x
        var newG = g
        var stalls = 0
        for iteration in 0..<maxIterations {
            if g.reduce(0, { max($0, abs($1)) }) <= gradientTolerance {
                return Result(x: x, value: fx, iterations: iteration, converged: true)
            }
            // Two-loop recursion: direction = -H g.
            var q = g
            var alpha = [Double](repeating: 0, count: s.count)
            for k in stride(from: s.count - 1, through: 0, by: -1) {
                alpha[k] = rho[k] * dot(s[k], q)
                for i in 0..<n { q[i] -= alpha[k] * y[k][i] }
            }
            if let last = s.indices.last {
                let gamma = dot(s[last], y[last]) / dot(y[last], y[last])
                for i in 0..<n { q[i] *= gamma }
            } else {
                let norm = sqrt(dot(g, g))
                for i in 0..<n { q[i] /= max(norm, 1) }
            }
            for k in 0..<s.count {
                let beta = rho[k] * dot(y[k], q)
                for i in 0..<n { q[i] += s[k][i] * (alpha[k] - beta) }
            }
            var slope = -dot(g, q)
            if slope >= 0 {
                // Not a descent direction: restart from the gradient.
                s.removeAll(); y.removeAll(); rho.removeAll()
                q = g
                slope = -dot(g, g)
            }
            var step = 1.0
            var fNew = 0.0
            var accepted = false
            for _ in 0..<40 {
                for i in 0..<n { newX[i] = x[i] - step * q[i] }
                fNew = f(newX, &newG)
                if fNew.isFinite, fNew <= fx + 1e-4 * step * slope {
                    accepted = true
                    break
                }
                step *= 0.5
            }
            if !accepted { return Result(x: x, value: fx, iterations: iteration, converged: false) }
            var sk = [Double](repeating: 0, count: n)
            var yk = [Double](repeating: 0, count: n)
            for i in 0..<n {
                sk[i] = newX[i] - x[i]
                yk[i] = newG[i] - g[i]
            }
            let sy = dot(sk, yk)
            if sy > 1e-12 * dot(yk, yk) {
                if s.count == memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
                s.append(sk); y.append(yk); rho.append(1 / sy)
            }
            let decrease = fx - fNew
            swap(&x, &newX)
            swap(&g, &newG)
            fx = fNew
            if decrease <= valueTolerance * max(abs(fx), 1) {
                stalls += 1
                if stalls >= 3 { return Result(x: x, value: fx, iterations: iteration + 1, converged: true) }
            } else {
                stalls = 0
            }
        }
        return Result(x: x, value: fx, iterations: maxIterations, converged: false)
    }

    @inline(__always) func dot(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for i in 0..<a.count { sum += a[i] * b[i] }
        return sum
    }
}
