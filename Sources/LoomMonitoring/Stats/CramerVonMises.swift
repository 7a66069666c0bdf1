import Foundation

/// Evidently's "cramer_von_mises" drift test.
///
/// Evidently 0.7.23 (`evidently/legacy/calculations/stattests/cramer_von_mises_stattest.py`)
/// ships its own copy of scipy's two-sample Cramér–von Mises test, `_cvm_2samp(x, y,
/// method="auto")`, and `_cramer_von_mises` reports drift when `pvalue <= threshold`
/// (default 0.1). This is a port of that copy, run under numpy 2.x (the reference
/// environment has numpy 2.4.6 and scipy 1.17.1):
///
/// - Ranks: `scipy.stats.rankdata(concat(sort(x), sort(y)), method="average")` (midranks
///   for ties).
/// - Statistic: `U = nx*sum((rx - arange(1, nx+1))**2) + ny*sum((ry - arange(1, ny+1))**2)`
///   and `T = U/(nx*ny*N) - (4*nx*ny - 1)/(6*N)` (Anderson 1962, eqs. 9–10).
/// - `method="auto"`: exact when `max(nx, ny) <= 20`, else asymptotic.
/// - Asymptotic: the normalised statistic `tn = 1/6 + (T - E[T])/sqrt(45*Var[T])` and
///   `p = max(0, 1 - _cdf_cvm_inf(tn))`, or `p = 1.0` when `tn < 0.003`.
/// - Exact: `_pval_cvm_2samp_exact(U, nx, ny)`, the Xiao–Gordon–Yakovlev dynamic programme
///   over lattice paths. Evidently's copy differs from scipy's: it takes the numpy dtype of
///   its frequency table from `np.min_scalar_type(max(zeta_bound, combinations))` where
///   `combinations` is a Python *float*. See `ExactStorage` for what that does under
///   numpy 2 (float16/float32 rounding, or a `UFuncTypeError`), and how each case is reproduced.
///
/// Samples with fewer than two observations make Evidently raise `ValueError`; here they
/// return `(nan, nan)`.
///
/// One deliberate divergence: for the small sizes whose exact table Evidently stores in an
/// unsigned integer dtype (`ExactStorage.integer`, e.g. 2 vs 2, 5 vs 6, 10 vs 12), Evidently
/// 0.7.23 under numpy 2 raises `UFuncTypeError` and produces no p-value at all. There this
/// returns the exact p-value that the integer arithmetic computes (equal to
/// `scipy.stats.cramervonmises_2samp(a, b, method="exact")`). `exactBranchRaisesInEvidently`
/// tells which sizes these are.
public enum CramerVonMises {
    /// Evidently's Cramér–von Mises two-sample test: statistic and p-value, as its default call computes them.
    ///
    /// `a`, `b`: free of NaN, any order; O(N log N) for the asymptotic branch (sizes above 20).
    public static func twoSample(_ a: [Double], _ b: [Double]) -> (statistic: Double, pValue: Double) {
        let nx = a.count
        let ny = b.count
        guard nx > 1, ny > 1 else { return (.nan, .nan) }
        let (u, u4) = rankStatisticU(sortedX: NumpyMath.sortedAscending(a), sortedY: NumpyMath.sortedAscending(b))
        let k = nx * ny
        let bigN = nx + ny
        // Python: u / (k * N) - (4 * k - 1) / (6 * N); the int k * N is rounded to float64 once.
        let kN = WideUInt(UInt64(k)).times(UInt64(bigN)).doubleValue
        let t = u / kN - Double(4 * k - 1) / Double(6 * bigN)
        if max(nx, ny) > 20 {
            return (t, asymptoticPValue(t: t, nx: nx, ny: ny))
        }
        return (t, exactPValue(u4: u4, m: nx, n: ny))
    }

    // MARK: - Statistic

    /// U of `_cvm_2samp` (eq. 10 of Anderson 1962) as numpy computes it:
    /// `u = nx * np.sum((rx - np.arange(1, nx + 1)) ** 2)`, then
    /// `u += ny * np.sum((ry - np.arange(1, ny + 1)) ** 2)`, with `rx`, `ry` the midranks
    /// (`rankdata(..., method="average")`: `min rank + (count - 1)/2`) of the sorted samples
    /// in the pooled sample. Midranks are half-integers, so every squared difference is exact;
    /// the sums are numpy's pairwise sums. Also returns `4*U` as an integer when it is exactly
    /// representable (always for the sizes that reach the exact branch), else 0.
    static func rankStatisticU(sortedX xs: [Double], sortedY ys: [Double]) -> (u: Double, u4: Int) {
        let nx = xs.count
        let ny = ys.count
        var squaresX = [Double](repeating: 0, count: nx)
        var squaresY = [Double](repeating: 0, count: ny)
        xs.withUnsafeBufferPointer { px in
            ys.withUnsafeBufferPointer { py in
                var i = 0
                var j = 0
                while i < nx || j < ny {
                    let z: Double
                    if i < nx && j < ny {
                        z = px[i] <= py[j] ? px[i] : py[j]
                    } else if i < nx {
                        z = px[i]
                    } else {
                        z = py[j]
                    }
                    var ie = i
                    while ie < nx && px[ie] == z { ie += 1 }
                    var je = j
                    while je < ny && py[je] == z { je += 1 }
                    let count = (ie - i) + (je - j)
                    // rankdata 'average': ordinal rank of the first tied element + (count - 1)/2
                    let rank = Double(i + j + 1) + Double(count - 1) / 2.0
                    for p in i..<ie {
                        let d = rank - Double(p + 1)
                        squaresX[p] = d * d
                    }
                    for q in j..<je {
                        let d = rank - Double(q + 1)
                        squaresY[q] = d * d
                    }
                    i = ie
                    j = je
                }
            }
        }
        let sumX = NumpyMath.sum(squaresX)
        let sumY = NumpyMath.sum(squaresY)
        var u = Double(nx) * sumX
        u += Double(ny) * sumY
        let scaled = u * 4.0
        let u4 = scaled < 0x1p52 && scaled == scaled.rounded() ? Int(scaled) : 0
        return (u, u4)
    }

    // MARK: - Asymptotic p-value

    /// The `method == "asymptotic"` branch of `_cvm_2samp`:
    /// ```
    /// et = (1 + 1 / N) / 6
    /// vt = (N + 1.0) * (4 * k * N - 3 * (nx**2 + ny**2) - 2 * k)
    /// vt = vt / (45 * N**2 * 4 * k)
    /// tn = 1 / 6 + (t - et) / np.sqrt(45 * vt)
    /// p = 1.0 if tn < 0.003 else max(0, 1.0 - _cdf_cvm_inf(tn))
    /// ```
    /// The Python integers are exact (here: 128-bit) and rounded once to float64, as Python does.
    static func asymptoticPValue(t: Double, nx: Int, ny: Int) -> Double {
        let bigN = nx + ny
        let nD = Double(bigN)
        let k = UInt64(nx) * UInt64(ny)
        let et = (1.0 + 1.0 / nD) / 6.0
        // 4*k*N - 3*(nx**2 + ny**2) - 2*k, exactly
        let fourKN = WideUInt(k).times(4).times(UInt64(bigN))
        let squares = UInt64(nx) * UInt64(nx) + UInt64(ny) * UInt64(ny)
        let vtInteger = fourKN.minus(WideUInt(squares).times(3)).minus(WideUInt(k).times(2))
        var vt = (nD + 1.0) * vtInteger.doubleValue
        // 45 * N**2 * 4 * k, exactly
        let divisor = WideUInt(45).times(UInt64(bigN)).times(UInt64(bigN)).times(4).times(k)
        vt = vt / divisor.doubleValue
        let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).squareRoot()
        if tn < 0.003 {
            return 1.0
        }
        let complement = 1.0 - cdfCvmInf(tn)
        return complement > 0 ? complement : 0.0
    }

    /// `pi**1.5` as Python computes it (`0x1.645f7c63f2c6bp+2`).
    static let piToOnePointFive = 0x1.645f7c63f2c6bp+2

    /// Evidently's `_cdf_cvm_inf(x)`: the limiting CDF of the Cramér–von Mises statistic
    /// (Csörgő & Faraway 1996, eq. 1.2–1.3), summing terms
    /// ```
    /// u = exp(gammaln(k + 0.5) - gammaln(k + 1)) / (pi**1.5 * sqrt(x))
    /// y = 4*k + 1;  q = y**2 / (16*x)
    /// term = u * sqrt(y) * exp(-q) * kv(0.25, q)
    /// ```
    /// for k = 0, 1, ... and stopping after the first term with `|term| < 1e-7` (that term
    /// included), as the `while np.any(cond)` loop does. `gammaln` is the C library's `lgamma`
    /// and `kv` is `besselK(order:_:)`, both accurate to a few ulp.
    static func cdfCvmInf(_ x: Double) -> Double {
        var total = 0.0
        var k = 0
        let denominator = piToOnePointFive * x.squareRoot()
        while true {
            let kD = Double(k)
            let u = exp(lgamma(kD + 0.5) - lgamma(kD + 1.0)) / denominator
            let y = 4 * k + 1
            let q = Double(y * y) / (16.0 * x)
            let bessel = besselK(order: 0.25, q)
            let term = u * Double(y).squareRoot() * exp(-q) * bessel
            total = total + term
            if !(abs(term) >= 1e-7) { break }
            k += 1
        }
        return total
    }

    /// The modified Bessel function of the second kind K_nu(x) for x > 0, standing in for
    /// `scipy.special.kv` (AMOS `zbesk`), from `K_nu(x) = ∫_0^∞ exp(-x cosh t) cosh(nu t) dt`:
    /// the trapezoidal rule on the scaled integrand `exp(-x (cosh t - 1)) cosh(nu t)` converges
    /// geometrically; the step shrinks like `1/sqrt(x)` so the peak at t = 0 stays resolved
    /// for large x. Relative accuracy is about 1e-15 for the arguments `_cdf_cvm_inf` uses.
    static func besselK(order nu: Double, _ x: Double) -> Double {
        if x.isNaN || x < 0 { return .nan }
        if x == 0 { return .infinity }
        if x > 745 { return 0 }  // K_nu(x) < exp(-x) underflows
        let h = min(0.0625, 0.25 / x.squareRoot())
        var sum = 0.5  // half weight of f(0) = 1
        var j = 1
        while true {
            let t = Double(j) * h
            let s = sinh(t / 2)
            let exponent = x * 2 * s * s  // x (cosh t - 1) without cancellation
            let f = exp(-exponent) * cosh(nu * t)
            sum += f
            if exponent - nu * t > 46 { break }  // remaining terms below 1e-20 of the peak
            j += 1
        }
        return h * sum * exp(-x)
    }

    // MARK: - Exact p-value

    /// The numpy dtype of the frequency table in Evidently's `_pval_cvm_2samp_exact`:
    /// `np.min_scalar_type(max(zeta_bound, combinations))` with `zeta_bound = lcm**2 * (m + n)`
    /// a NumPy int64 and `combinations = factorial(m+n) / (factorial(m) * factorial(n))` a
    /// Python float.
    enum ExactStorage {
        /// `combinations > zeta_bound` and `combinations < 65000`: float16. Every sum in the
        /// table is rounded to half precision, and so is the p-value (a float16 divided by a
        /// Python float stays float16 under NEP 50).
        case half
        /// `combinations >= 65000`: float32, with the same consequences in single precision.
        case single
        /// `combinations <= zeta_bound`: an unsigned integer dtype. Under numpy 2 (NEP 50)
        /// `tmp[0] += (a*v - b*u)**2` adds an int64 scalar to a uint array and raises
        /// `UFuncTypeError` (casting int64 -> uint under 'same_kind'), so Evidently 0.7.23 has
        /// no p-value for these sizes (e.g. 5 vs 6, 2 vs 2). Under numpy 1.x the integer
        /// arithmetic was exact; this port returns that exact p-value.
        case integer
    }

    /// True when `_cvm_2samp(a, b)` of Evidently 0.7.23 (numpy 2) raises `UFuncTypeError` for
    /// samples of these sizes: the exact branch (`max(m, n) <= 20`) with integer storage.
    static func exactBranchRaisesInEvidently(m: Int, n: Int) -> Bool {
        m > 1 && n > 1 && max(m, n) <= 20 && exactStorage(m: m, n: n) == .integer
    }

    /// Which storage Evidently's exact branch uses for sample sizes `m`, `n` (numpy's
    /// `min_scalar_type` returns float16 for a float in (-65000, 65000), float32 beyond).
    static func exactStorage(m: Int, n: Int) -> ExactStorage {
        let lcm = m / gcd(m, n) * n
        let zetaBound = lcm * lcm * (m + n)
        let combinations = binomial(m + n, m)
        if combinations > Double(zetaBound) {
            return combinations < 65000 ? .half : .single
        }
        return .integer
    }

    /// Evidently's `_pval_cvm_2samp_exact(s, m, n)`, reproducing its numpy arithmetic.
    ///
    /// - `zeta = lcm**2 * (m + n) * (6 * s - mn * (4 * mn - 1)) // (6 * mn**2)`: all operands
    ///   are exact in float64 for m, n <= 20, so the float floor division is the exact floor;
    ///   here it is computed in integers from `4*s` (`u4`), since midranks make `s` a multiple of 1/4.
    /// - The table `gs[v]` is a 2-row array (values, frequencies) per v; for each u in 0...n
    ///   and v in 0...m:
    ///   ```
    ///   vi, i0, i1 = np.intersect1d(tmp[0], g[0], return_indices=True)
    ///   tmp = np.concatenate([np.stack([vi, tmp[1, i0] + g[1, i1]]),
    ///                         np.delete(tmp, i0, 1), np.delete(g, i1, 1)], 1)
    ///   tmp[0] += (a * v - b * u) ** 2
    ///   ```
    ///   The column order (common values ascending, then the rest of `tmp`, then the rest of
    ///   `g`), `intersect1d`'s first-occurrence indices when rounding has made values collide,
    ///   and the dtype's rounding are all kept, because the final float sum depends on them.
    /// - `p = np.float64(np.sum(freq[value >= zeta]) / combinations)`, with the sum and the
    ///   division carried out in the table's dtype (see `ExactStorage`).
    static func exactPValue(u4: Int, m: Int, n: Int) -> Double {
        let lcm = m / gcd(m, n) * n
        let a = lcm / m
        let b = lcm / n
        let mn = m * n
        let numerator = lcm * lcm * (m + n) * (6 * u4 - 4 * mn * (4 * mn - 1))
        let zeta = Double(floorDivide(numerator, 24 * mn * mn))
        let storage = exactStorage(m: m, n: n)
        let combinations = binomial(m + n, m)

        let round: (Double) -> Double
        switch storage {
        case .half: round = roundToHalf
        case .single: round = { Double(Float($0)) }
        case .integer: round = { $0 }
        }

        var gs: [PathTable] = [PathTable(values: [0], freqs: [1], order: [0])]
        for _ in 0..<m { gs.append(PathTable()) }
        for u in 0...n {
            var next: [PathTable] = []
            next.reserveCapacity(m + 1)
            var tmp = PathTable()
            for v in 0...m {
                tmp = merged(tmp, gs[v], round: round)
                let step = a * v - b * u
                tmp.add(Double(step * step), round: round)
                next.append(tmp)
            }
            gs = next
        }
        let last = gs[m]
        var selected: [Double] = []
        for c in last.values.indices where last.values[c] >= zeta {
            selected.append(last.freqs[c])
        }
        switch storage {
        case .integer:
            var total = 0.0
            for f in selected { total += f }  // integers below 2^53: exact
            return total / combinations
        case .single:
            let total = Float(0) + floatPairwiseSum(selected.map { Float($0) })
            return Double(total / Float(combinations))
        case .half:
            // HALF add.reduce accumulates in float32 and stores float16; the float16 scalar
            // divided by a Python float converts both to float, divides, rounds to float16.
            let total = roundToHalf(Double(Float(0) + floatPairwiseSum(selected.map { Float($0) })))
            let quotient = Float(total) / Float(roundToHalf(combinations))
            return roundToHalf(Double(quotient))
        }
    }

    /// One `gs[v]` array of `_pval_cvm_2samp_exact`: row 0 (`values`) and row 1 (`freqs`),
    /// held as float64 numbers already rounded to the table's dtype, plus `order`, the column
    /// indices sorted by (value, column index) — the order of numpy's stable
    /// `argsort(kind='mergesort')` — kept up to date so that no table is ever re-sorted.
    struct PathTable {
        var values: [Double] = []
        var freqs: [Double] = []
        var order: [Int] = []

        /// `tmp[0] += (a*v - b*u)**2`: under numpy 2 a float16/float32 row plus an int64 scalar
        /// is computed in float64 (exact here) and cast back to the row's dtype once (`round`;
        /// the identity for the exact integer table).
        /// Rounding is monotone, so `order` stays sorted by value; where rounding has made
        /// values equal, the run is re-sorted by column index.
        mutating func add(_ increment: Double, round: (Double) -> Double) {
            var collided = false
            var previous = -Double.infinity
            for position in order.indices {
                let c = order[position]
                let value = round(values[c] + increment)
                values[c] = value
                if value == previous { collided = true }
                previous = value
            }
            guard collided else { return }
            var start = 0
            while start < order.count {
                var end = start + 1
                while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
                if end - start > 1 { order[start..<end].sort() }
                start = end
            }
        }
    }

    /// The `intersect1d` / `concatenate` / `delete` step of the dynamic programme (before the
    /// `+= (a*v - b*u)**2`): common values ascending with summed frequencies (rounded to the
    /// dtype), then `tmp`'s other columns in order, then `g`'s other columns in order.
    ///
    /// `np.intersect1d(tmp[0], g[0], return_indices=True)` first applies
    /// `np.unique(..., return_index=True)` (stable mergesort) to each row, so when rounding has
    /// made two columns of one table equal, only the first occurrence takes part and the others
    /// stay in the "rest". The first occurrences are the heads of the equal-value runs of
    /// `order`; a two-pointer walk intersects them, and the new table's `order` is a three-way
    /// merge of the (already sorted) common block, `tmp`'s rest and `g`'s rest. O(size).
    static func merged(_ tmp: PathTable, _ g: PathTable, round: (Double) -> Double) -> PathTable {
        if tmp.values.isEmpty { return g }
        if g.values.isEmpty { return tmp }
        let tmpCount = tmp.values.count
        let gCount = g.values.count
        var usedTmp = [Bool](repeating: false, count: tmpCount)
        var usedG = [Bool](repeating: false, count: gCount)
        var result = PathTable()
        result.values.reserveCapacity(tmpCount + gCount)
        result.freqs.reserveCapacity(tmpCount + gCount)
        // intersect the first occurrences, ascending by value
        var p = 0
        var q = 0
        while p < tmpCount && q < gCount {
            let i0 = tmp.order[p]
            let i1 = g.order[q]
            let x = tmp.values[i0]
            let y = g.values[i1]
            if x < y {
                p += 1
                while p < tmpCount && tmp.values[tmp.order[p]] == x { p += 1 }
            } else if y < x {
                q += 1
                while q < gCount && g.values[g.order[q]] == y { q += 1 }
            } else {
                result.values.append(x)
                result.freqs.append(round(tmp.freqs[i0] + g.freqs[i1]))
                usedTmp[i0] = true
                usedG[i1] = true
                p += 1
                while p < tmpCount && tmp.values[tmp.order[p]] == x { p += 1 }
                q += 1
                while q < gCount && g.values[g.order[q]] == y { q += 1 }
            }
        }
        let commonCount = result.values.count
        // the rest of tmp, then the rest of g, in column order
        var newIndexTmp = [Int](repeating: -1, count: tmpCount)
        for c in 0..<tmpCount where !usedTmp[c] {
            newIndexTmp[c] = result.values.count
            result.values.append(tmp.values[c])
            result.freqs.append(tmp.freqs[c])
        }
        var newIndexG = [Int](repeating: -1, count: gCount)
        for c in 0..<gCount where !usedG[c] {
            newIndexG[c] = result.values.count
            result.values.append(g.values[c])
            result.freqs.append(g.freqs[c])
        }
        // sorted order: merge of three sequences, each sorted by (value, new index)
        var restTmp: [Int] = []
        restTmp.reserveCapacity(tmpCount - commonCount)
        for c in tmp.order where !usedTmp[c] { restTmp.append(newIndexTmp[c]) }
        var restG: [Int] = []
        restG.reserveCapacity(gCount - commonCount)
        for c in g.order where !usedG[c] { restG.append(newIndexG[c]) }
        let values = result.values
        func precedes(_ x: Int, _ y: Int) -> Bool {
            values[x] < values[y] || (values[x] == values[y] && x < y)
        }
        var order: [Int] = []
        order.reserveCapacity(values.count)
        var ia = 0
        var ib = 0
        var ic = 0
        while ia < commonCount || ib < restTmp.count || ic < restG.count {
            var best = -1
            var source = 0
            if ia < commonCount { best = ia; source = 0 }
            if ib < restTmp.count && (best < 0 || precedes(restTmp[ib], best)) { best = restTmp[ib]; source = 1 }
            if ic < restG.count && (best < 0 || precedes(restG[ic], best)) { best = restG[ic]; source = 2 }
            order.append(best)
            switch source {
            case 0: ia += 1
            case 1: ib += 1
            default: ic += 1
            }
        }
        result.order = order
        return result
    }

    /// Rounds a float64 to the nearest IEEE binary16 value (ties to even, overflow to
    /// infinity at 65520), returned as float64 — numpy's `npy_double_to_half` /
    /// `npy_float_to_half`. (Written out because `Float16` is not available on every platform.)
    static func roundToHalf(_ x: Double) -> Double {
        if !x.isFinite { return x }
        let magnitude = abs(x)
        if magnitude >= 65520 { return x < 0 ? -.infinity : .infinity }
        if magnitude == 0 { return x }
        let quantum = magnitude < 0x1p-14 ? 0x1p-24 : Double(sign: .plus, exponent: magnitude.exponent - 10, significand: 1)
        return (x / quantum).rounded(.toNearestOrEven) * quantum
    }

    /// The binomial coefficient C(n, k) as the Python float
    /// `math.factorial(n) / (math.factorial(k) * math.factorial(n - k))` (the correctly rounded
    /// quotient; exact for the n <= 40 used here).
    static func binomial(_ n: Int, _ k: Int) -> Double {
        let r = min(k, n - k)
        var c: UInt64 = 1
        for i in 0..<r {
            let (product, overflow) = c.multipliedReportingOverflow(by: UInt64(n - i))
            if overflow {
                return exp(lgamma(Double(n) + 1) - lgamma(Double(k) + 1) - lgamma(Double(n - k) + 1))
            }
            c = product / UInt64(i + 1)
        }
        return Double(c)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var x = a
        var y = b
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }

    /// Python's `//` on integers (rounds toward negative infinity).
    static func floorDivide(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// numpy's `FLOAT_pairwise_sum` (same blocking, float32 accumulators), used by `np.sum`
    /// on float32 arrays and, with float32 accumulators too, on float16 arrays.
    static func floatPairwiseSum(_ values: [Float]) -> Float {
        func sum(_ x: UnsafeBufferPointer<Float>, _ lo: Int, _ n: Int) -> Float {
            if n < 8 {
                var res: Float = -0.0
                for i in 0..<n { res += x[lo + i] }
                return res
            } else if n <= 128 {
                var r = [Float](repeating: 0, count: 8)
                for c in 0..<8 { r[c] = x[lo + c] }
                var i = 8
                let end = n - n % 8
                while i < end {
                    for c in 0..<8 { r[c] += x[lo + i + c] }
                    i += 8
                }
                var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
                while i < n {
                    res += x[lo + i]
                    i += 1
                }
                return res
            } else {
                var n2 = n / 2
                n2 -= n2 % 8
                return sum(x, lo, n2) + sum(x, lo + n2, n - n2)
            }
        }
        return values.withUnsafeBufferPointer { sum($0, 0, $0.count) }
    }

    // MARK: - Exact big integers

    /// A non-negative integer below 2^128, enough for the Python integers of the asymptotic
    /// branch (`45 * N**2 * 4 * k` exceeds 2^64 at 10^6 vs 10^6).
    struct WideUInt {
        var high: UInt64
        var low: UInt64

        init(_ value: UInt64) {
            high = 0
            low = value
        }

        init(high: UInt64, low: UInt64) {
            self.high = high
            self.low = low
        }

        func times(_ factor: UInt64) -> WideUInt {
            let lowProduct = low.multipliedFullWidth(by: factor)
            let highProduct = high.multipliedReportingOverflow(by: factor).partialValue
            return WideUInt(high: highProduct &+ lowProduct.high, low: lowProduct.low)
        }

        func minus(_ other: WideUInt) -> WideUInt {
            let (lowDifference, borrow) = low.subtractingReportingOverflow(other.low)
            return WideUInt(high: high &- other.high &- (borrow ? 1 : 0), low: lowDifference)
        }

        /// The correctly rounded float64 (round half to even), as Python's int -> float.
        var doubleValue: Double {
            if high == 0 { return Double(low) }
            let shift = 64 - high.leadingZeroBitCount  // bits of `low` dropped below the top 64
            let top = (high << (64 - shift)) | (low >> shift)
            let sticky: UInt64 = (low << (64 - shift)) != 0 ? 1 : 0
            // 64 significant bits with a sticky bit: one correctly rounded conversion.
            return Double(top | sticky) * Double(sign: .plus, exponent: shift, significand: 1)
        }
    }
}
