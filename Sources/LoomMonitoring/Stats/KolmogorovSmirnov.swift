import Foundation

/// scipy.stats.ks_2samp(a, b) two-sided, method="auto".
///
/// A port of scipy 1.17.1's `ks_2samp` (`scipy/stats/_stats_py.py`) with the default
/// `alternative='two-sided'` and `method='auto'`, including every routine it reaches:
///
/// - the statistic, computed as in `ks_2samp` from `searchsorted(..., side='right')` ECDFs
///   (ties handled the same way), in one linear merge of the two sorted samples;
/// - the exact p-value (`_attempt_exact_2kssamp`), used when `max(n1, n2) <= 10000`:
///   `_compute_prob_outside_square` for `n1 == n2`, otherwise the pythran-compiled
///   `_compute_outer_prob_inside_method` (`scipy/stats/_stats_pythran.py`), with the
///   statistic snapped to `round(D * lcm) / lcm` and the fall back to the asymptotic
///   p-value when the exact result is not a probability;
/// - the asymptotic p-value `kstwo.sf(D, round(n1*n2/(n1+n2)))`
///   (`scipy/stats/_continuous_distns.py` and `scipy/stats/_ksstats.py`): the
///   Simard–L'Ecuyer choice in `_kolmogn` between Ruben–Gambino closed forms, the Durbin
///   matrix (Marsaglia–Tsang–Wang), Pomeranz's recursion, Pelz–Good and
///   `2 * scipy.special.smirnov` (xsf `cephes/kolmogorov.h`, in double-double arithmetic);
/// - the final clip of the p-value to [0, 1].
public enum KolmogorovSmirnov {
    /// The statistic D and its two-sided p-value. `a` and `b` must be sorted ascending and free of NaN; either may be large (10^6).
    ///
    /// scipy raises `ValueError` when a sample is empty; here that case returns `(nan, nan)`.
    public static func twoSample(sortedA a: [Double], sortedB b: [Double]) -> (statistic: Double, pValue: Double) {
        let n1 = a.count
        let n2 = b.count
        if n1 == 0 || n2 == 0 {
            return (.nan, .nan)
        }
        var d = statistic(sortedA: a, sortedB: b)
        var prob = -Double.infinity
        var useAsymptotic = max(n1, n2) > maxExactSize
        if !useAsymptotic {
            let attempt = attemptExact(n1: n1, n2: n2, g: gcd(n1, n2), d: d)
            d = attempt.statistic
            prob = attempt.probability
            useAsymptotic = !attempt.success
        }
        if useAsymptotic {
            prob = asymptoticPValue(n1: n1, n2: n2, d: d)
        }
        return (d, clip(prob))
    }

    /// `MAX_AUTO_N` in `ks_2samp`: 'auto' tries the exact p-value when both sizes are at most this.
    static let maxExactSize = 10_000

    // MARK: - Statistic

    /// The two-sided statistic exactly as `ks_2samp` computes it:
    /// `cdf1 = searchsorted(data1, data_all, 'right') / n1`, likewise `cdf2`,
    /// `cddiffs = cdf1 - cdf2`, `minS = clip(-min(cddiffs), 0, 1)`, `maxS = max(cddiffs)`,
    /// and D = `minS` if `minS > maxS` else `maxS`.
    ///
    /// Every element of `data_all` equal to a value v gives the same pair of counts
    /// (#a <= v, #b <= v), so one merge over the distinct values visits the same set of
    /// floating-point differences in O(n1 + n2).
    static func statistic(sortedA a: [Double], sortedB b: [Double]) -> Double {
        let n1 = a.count
        let n2 = b.count
        let dn1 = Double(n1)
        let dn2 = Double(n2)
        var maxS = -Double.infinity
        var minDiff = Double.infinity
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                var i = 0
                var j = 0
                while i < n1 || j < n2 {
                    let v: Double
                    if i < n1 && j < n2 {
                        v = pa[i] <= pb[j] ? pa[i] : pb[j]
                    } else if i < n1 {
                        v = pa[i]
                    } else {
                        v = pb[j]
                    }
                    while i < n1 && pa[i] <= v { i += 1 }
                    while j < n2 && pb[j] <= v { j += 1 }
                    let diff = Double(i) / dn1 - Double(j) / dn2
                    if diff > maxS { maxS = diff }
                    if diff < minDiff { minDiff = diff }
                }
            }
        }
        let minS = Swift.min(Swift.max(-minDiff, 0), 1)
        return minS > maxS ? minS : maxS
    }

    // MARK: - Exact p-value

    /// `_attempt_exact_2kssamp(n1, n2, g, d, 'two-sided')`: snaps D to `h / lcm` with
    /// `h = round(d * lcm)` (half to even, as `np.round`) and computes the exact probability.
    /// Success requires the result to lie in [0, 1]; otherwise `ks_2samp` switches to 'asymp'
    /// keeping the snapped D.
    static func attemptExact(n1: Int, n2: Int, g: Int, d: Double) -> (success: Bool, statistic: Double, probability: Double) {
        let lcm = (n1 / g) * n2
        let h = Int((d * Double(lcm)).rounded(.toNearestOrEven))
        let snapped = Double(h) * 1.0 / Double(lcm)
        if h == 0 {
            return (true, snapped, 1.0)
        }
        let prob: Double
        if n1 == n2 {
            prob = probabilityOutsideSquare(n: n1, h: h)
        } else {
            prob = outerProbabilityInsideMethod(m: n1, n: n2, g: g, h: h)
        }
        if !(0 <= prob && prob <= 1) {
            return (false, snapped, prob)
        }
        return (true, snapped, prob)
    }

    /// `_compute_prob_outside_square(n, h)`: Pr(D_{n,n} >= h/n) as
    /// `2 * A0 * (1 - A1 * (1 - A2 * (...)))`, each A_k a product of h ratios.
    static func probabilityOutsideSquare(n: Int, h: Int) -> Double {
        var p = 0.0
        var k = Int((Double(n) / Double(h)).rounded(.down))
        while k >= 0 {
            var p1 = 1.0
            for j in 0..<h {
                p1 = Double(n - k * h - j) * p1 / Double(n + k * h + j + 1)
            }
            p = p1 * (1.0 - p)
            k -= 1
        }
        return 2 * p
    }

    /// `_compute_outer_prob_inside_method(m, n, g, h)` (pythran, `_stats_pythran.py`):
    /// the proportion of lattice paths from (0, 0) to (m, n) that leave the band
    /// |x/m - y/n| < h/lcm(m, n), computed directly as 1 - p with Viehmann's recursion over a
    /// sliding window of one column. O(m * window) time, O(window) memory.
    static func outerProbabilityInsideMethod(m mIn: Int, n nIn: Int, g: Int, h: Int) -> Double {
        let m = Swift.max(mIn, nIn)
        let n = Swift.min(mIn, nIn)
        let mg = m / g
        let ng = n / g
        let dmg = Double(mg)
        var minj = 0
        var maxj = Swift.min(Int((Double(h) / dmg).rounded(.up)), n + 1)
        var curlen = maxj - minj
        let lenA = Swift.min(2 * maxj + 2, n + 1)
        var column = [Double](repeating: 1.0, count: lenA)
        return column.withUnsafeMutableBufferPointer { A -> Double in
            for index in minj..<Swift.min(maxj, lenA) { A[index] = 0.0 }
            for i in 1...m {
                let lastminj = minj
                let lastlen = curlen
                minj = Swift.max(Int((Double(ng * i - h) / dmg).rounded(.down)) + 1, 0)
                minj = Swift.min(minj, n)
                maxj = Swift.min(Int((Double(ng * i + h) / dmg).rounded(.up)), n + 1)
                if maxj <= minj {
                    return 1.0
                }
                var val = minj == 0 ? 0.0 : 1.0
                let di = Double(i)
                let shift = minj - lastminj
                for jj in 0..<(maxj - minj) {
                    let j = jj + minj
                    val = (A[jj + shift] * di + val * Double(j)) / Double(i + j)
                    A[jj] = val
                }
                curlen = maxj - minj
                if lastlen > curlen {
                    // Carried-over entries become 1 (numpy slice assignment clips at the end).
                    let upper = Swift.min(curlen + (lastlen - curlen), lenA)
                    if curlen < upper {
                        for index in curlen..<upper { A[index] = 1.0 }
                    }
                }
            }
            return A[maxj - minj - 1]
        }
    }

    // MARK: - Asymptotic p-value

    /// The 'asymp' branch of `ks_2samp` for 'two-sided':
    /// `m, n = sorted([float(n1), float(n2)], reverse=True)`, `en = m*n/(m+n)`,
    /// `kstwo.sf(d, np.round(en))`.
    static func asymptoticPValue(n1: Int, n2: Int, d: Double) -> Double {
        let m = Double(Swift.max(n1, n2))
        let n = Double(Swift.min(n1, n2))
        let en = m * n / (m + n)
        return kstwoSF(d, n: en.rounded(.toNearestOrEven))
    }

    /// `scipy.stats.kstwo.sf(x, n)` through `rv_continuous.sf`: NaN for an invalid shape
    /// (n < 1 or non-integral), 1 for x <= 0.5/n (the lower support end), 0 for x >= 1,
    /// otherwise `kolmogn(n, x, cdf=False)`.
    static func kstwoSF(_ x: Double, n: Double) -> Double {
        if !(n >= 1 && n == n.rounded(.toNearestOrEven)) || x.isNaN {
            return .nan
        }
        if x <= 0.5 / n {
            return 1.0
        }
        if !(x < 1.0) {
            return 0.0
        }
        return Kolmogorov.survival(n: Int(n), x: x)
    }

    // MARK: - Helpers

    /// `np.clip(p, 0, 1)` (NaN passes through).
    static func clip(_ p: Double) -> Double {
        if p.isNaN { return p }
        return Swift.min(Swift.max(p, 0.0), 1.0)
    }

    /// C `ldexp(x, e)` = x * 2^e with a single rounding (musl's `scalbn`). The Foundation
    /// overlay's `scalbn` can round twice when the result is subnormal.
    static func ldexp(_ x: Double, _ e: Int) -> Double {
        var y = x
        var n = e
        if n > 1023 {
            y *= 0x1p1023
            n -= 1023
            if n > 1023 {
                y *= 0x1p1023
                n -= 1023
                if n > 1023 { n = 1023 }
            }
        } else if n < -1022 {
            // Keep the final n below -53 so the subnormal result is rounded once.
            y *= 0x1p-1022 * 0x1p53
            n += 1022 - 53
            if n < -1022 {
                y *= 0x1p-1022 * 0x1p53
                n += 1022 - 53
                if n < -1022 { n = -1022 }
            }
        }
        return y * Double(bitPattern: UInt64(0x3ff + n) << 52)
    }

    /// `math.gcd` for positive sizes.
    static func gcd(_ a: Int, _ b: Int) -> Int {
        var x = a
        var y = b
        while y != 0 {
            (x, y) = (y, x % y)
        }
        return x
    }
}

// MARK: - kolmogn (scipy/stats/_ksstats.py)

extension KolmogorovSmirnov {
    /// The two-sided one-sample Kolmogorov–Smirnov distribution of D_n, as computed by
    /// `scipy/stats/_ksstats.py` (`_kolmogn` and the algorithms it selects).
    enum Kolmogorov {
        /// 2^128 and 2^-128: `_EP128`, `_EM128` (intermediate rescaling).
        static let scaleUp = 0x1p128
        static let scaleDown = 0x1p-128
        static let scaleExponent = 128
        static let sqrt2Pi = (2 * Double.pi).squareRoot()
        static let log2Pi = Foundation.log(2 * Double.pi)
        static let minLog = -708.0
        static let sqrt3 = Double(3).squareRoot()
        static let piSquared = Foundation.pow(Double.pi, 2)
        static let piFour = Foundation.pow(Double.pi, 4)
        static let piSix = Foundation.pow(Double.pi, 6)
        /// `_STIRLING_COEFFS`: B_{2j}/(2j)/(2j-1) for j = 8, ..., 1.
        static let stirlingCoefficients: [Double] = [
            -2.955065359477124183e-2, 6.4102564102564102564e-3,
            -1.9175269175269175269e-3, 8.4175084175084175084e-4,
            -5.952380952380952381e-4, 7.9365079365079365079e-4,
            -2.7777777777777777778e-3, 8.3333333333333333333e-2,
        ]

        /// `_kolmogn(n, x, cdf=False)`: Pr(D_n > x) with Simard and L'Ecuyer's choice of method.
        static func survival(n: Int, x: Double) -> Double {
            if n <= 0 || x.isNaN { return .nan }
            if x >= 1.0 { return 0.0 }
            if x <= 0.0 { return 1.0 }
            let dn = Double(n)
            let t = dn * x
            if t <= 1.0 {
                // Ruben–Gambino: 1/2n <= x <= 1/n.
                if t <= 0.5 { return 1.0 }
                let prob: Double
                if n <= 140 {
                    let rn = 1.0 / dn
                    let base = 2 * t - 1
                    var product = 1.0
                    for i in 1...n {
                        product *= Double(i) * rn * base
                    }
                    prob = product
                } else {
                    prob = Foundation.exp(logFactorialOverPower(n) + dn * Foundation.log(2 * t - 1))
                }
                return KolmogorovSmirnov.clip(1.0 - prob)
            }
            if t >= dn - 1 {
                // Ruben–Gambino: upper end.
                return KolmogorovSmirnov.clip(2 * Foundation.pow(1.0 - x, dn))
            }
            if x >= 0.5 {
                // Exact: 2 * smirnov.
                return KolmogorovSmirnov.clip(2 * Smirnov.survival(n: n, x: x))
            }
            let nxSquared = t * x
            if n <= 140 {
                if nxSquared <= 0.754693 {
                    return KolmogorovSmirnov.clip(1.0 - durbinMatrixCDF(n: n, d: x))
                }
                if nxSquared <= 4 {
                    return KolmogorovSmirnov.clip(1.0 - pomeranzCDF(n: n, x: x))
                }
                // Miller approximation: 2 * smirnov.
                return KolmogorovSmirnov.clip(2 * Smirnov.survival(n: n, x: x))
            }
            // Survival function cut-offs (the CDF ones differ).
            if nxSquared >= 370.0 { return 0.0 }
            if nxSquared >= 2.2 {
                return KolmogorovSmirnov.clip(2 * Smirnov.survival(n: n, x: x))
            }
            let cdf: Double
            if nxSquared >= 18.0 {
                cdf = 1.0
            } else if n <= 100_000 && dn * Foundation.pow(x, 1.5) <= 1.4 {
                cdf = durbinMatrixCDF(n: n, d: x)
            } else {
                cdf = pelzGoodCDF(n: n, x: x)
            }
            return KolmogorovSmirnov.clip(1.0 - cdf)
        }

        /// `_log_nfactorial_div_n_pow_n(n)`: log(n!/n^n) by Stirling's series with n log n
        /// removed up front.
        static func logFactorialOverPower(_ n: Int) -> Double {
            let dn = Double(n)
            let rn = 1.0 / dn
            // np.polyval (Horner) at rn/n.
            let z = rn / dn
            var poly = 0.0
            for c in stirlingCoefficients {
                poly = poly * z + c
            }
            return Foundation.log(dn) / 2 - dn + log2Pi / 2 + rn * poly
        }

        /// `_kolmogn_DMTW(n, d)`: Pr(D_n <= d) by Durbin's matrix algorithm in the
        /// Marsaglia–Tsang–Wang form: the k-th diagonal entry of (n!/n^n) H^n, H of size
        /// 2k-1 with k = ceil(n d), rescaling by 2^±128 as scipy does.
        static func durbinMatrixCDF(n: Int, d: Double) -> Double {
            if d >= 1.0 { return 1.0 }
            let dn = Double(n)
            let nd = dn * d
            if nd <= 0.5 { return 0.0 }
            let k = Int(nd.rounded(.up))
            let h = Double(k) - nd
            let m = 2 * k - 1

            // v[j-1] = (1 - h^j) / j!, w[j-1] = 1/(j-1)!
            var v = [Double](repeating: 0, count: m)
            var w = [Double](repeating: 0, count: m)
            var fac = 1.0
            for j in 1...m {
                v[j - 1] = 1.0 - Foundation.pow(h, Double(j))
                w[j - 1] = fac
                fac /= Double(j)
                v[j - 1] *= fac
            }
            let lower = 2 * h - 1.0
            let tt = (lower > 0 ? Foundation.pow(lower, Double(m)) : 0.0) - 2 * Foundation.pow(h, Double(m))
            v[m - 1] = (1.0 + tt) * fac

            var H = [Double](repeating: 0, count: m * m)
            for i in 1..<m {
                // H[i-1:, i] = w[:m-i+1]
                for r in (i - 1)..<m {
                    H[r * m + i] = w[r - i + 1]
                }
            }
            for r in 0..<m {
                H[r * m] = v[r]
            }
            for c in 0..<m {
                H[(m - 1) * m + c] = v[m - 1 - c]
            }

            var Hpwr = [Double](repeating: 0, count: m * m)
            for i in 0..<m { Hpwr[i * m + i] = 1.0 }
            var nn = n
            var expnt = 0
            var hExpnt = 0
            let diag = (k - 1) * m + (k - 1)
            while nn > 0 {
                if nn % 2 != 0 {
                    Hpwr = matrixProduct(Hpwr, H, size: m)
                    expnt += hExpnt
                }
                H = matrixProduct(H, H, size: m)
                hExpnt *= 2
                if Swift.abs(H[diag]) > scaleUp {
                    for index in 0..<(m * m) { H[index] /= scaleUp }
                    hExpnt += scaleExponent
                }
                nn /= 2
            }

            var p = Hpwr[diag]
            // Multiply by n!/n^n.
            for i in 1...n {
                p = Double(i) * p / dn
                if Swift.abs(p) < scaleDown {
                    p *= scaleUp
                    expnt -= scaleExponent
                }
            }
            if expnt != 0 {
                p = KolmogorovSmirnov.ldexp(p, expnt)
            }
            return KolmogorovSmirnov.clip(p)
        }

        /// Square matrix product (row-major), `np.matmul` for the Durbin matrix powers.
        static func matrixProduct(_ x: [Double], _ y: [Double], size m: Int) -> [Double] {
            var result = [Double](repeating: 0, count: m * m)
            x.withUnsafeBufferPointer { px in
                y.withUnsafeBufferPointer { py in
                    result.withUnsafeMutableBufferPointer { pr in
                        for i in 0..<m {
                            let rowX = i * m
                            for l in 0..<m {
                                let a = px[rowX + l]
                                if a == 0 { continue }
                                let rowY = l * m
                                for j in 0..<m {
                                    pr[rowX + j] += a * py[rowY + j]
                                }
                            }
                        }
                    }
                }
            }
            return result
        }

        /// `_pomeranz_compute_j1j2(i, n, ll, ceilf, roundf)`: the window of possibly non-zero
        /// entries of row i.
        static func pomeranzWindow(_ i: Int, n: Int, ll: Int, ceilf: Int, roundf: Int) -> (Int, Int) {
            var j1: Int
            var j2: Int
            if i == 0 {
                j1 = -ll - ceilf - 1
                j2 = ll + ceilf - 1
            } else {
                let ip1div2 = (i + 1) / 2
                let ip1mod2 = (i + 1) % 2
                if ip1mod2 == 0 {
                    if ip1div2 == n + 1 {
                        j1 = n - ll - ceilf - 1
                        j2 = n + ll + ceilf - 1
                    } else {
                        j1 = ip1div2 - 1 - ll - roundf - 1
                        j2 = ip1div2 + ll - 1 + ceilf - 1
                    }
                } else {
                    j1 = ip1div2 - 1 - ll - 1
                    j2 = ip1div2 + ll + roundf - 1
                }
            }
            return (Swift.max(j1 + 2, 0), Swift.min(j2, n))
        }

        /// `_kolmogn_Pomeranz(n, x)`: Pr(D_n <= x) by Pomeranz's recursion (two rows, each the
        /// convolution of the previous with Poisson-like weights), rescaled by 2^±128 and
        /// multiplied by n! at the end.
        static func pomeranzCDF(n: Int, x: Double) -> Double {
            let dn = Double(n)
            let t = dn * x
            let ll = Int(t.rounded(.down))
            let f = 1.0 * (t - Double(ll))
            let g = Swift.min(f, 1.0 - f)
            let ceilf = f > 0 ? 1 : 0
            let roundf = f > 0.5 ? 1 : 0
            let npwrs = 2 * (ll + 1)
            var gpower = [Double](repeating: 0, count: npwrs)
            var twogpower = [Double](repeating: 0, count: npwrs)
            var onem2gpower = [Double](repeating: 0, count: npwrs)
            gpower[0] = 1.0
            twogpower[0] = 1.0
            onem2gpower[0] = 1.0
            var expnt = 0
            let gOverN = g / dn
            let twoGOverN = 2 * g / dn
            let oneMinusTwoGOverN = (1 - 2 * g) / dn
            for m in 1..<npwrs {
                gpower[m] = gpower[m - 1] * gOverN / Double(m)
                twogpower[m] = twogpower[m - 1] * twoGOverN / Double(m)
                onem2gpower[m] = onem2gpower[m - 1] * oneMinusTwoGOverN / Double(m)
            }

            var V0 = [Double](repeating: 0, count: npwrs)
            var V1 = [Double](repeating: 0, count: npwrs)
            V1[0] = 1
            var V0s = 0
            var V1s = 0

            var (j1, j2) = pomeranzWindow(0, n: n, ll: ll, ceilf: ceilf, roundf: roundf)
            for i in 1..<(2 * n + 2) {
                let k1 = j1
                swap(&V0, &V1)
                swap(&V0s, &V1s)
                for index in 0..<npwrs { V1[index] = 0.0 }
                (j1, j2) = pomeranzWindow(i, n: n, ll: ll, ceilf: ceilf, roundf: roundf)
                let useG = i == 1 || i == 2 * n + 1
                let ln2 = j2 - k1 + 1
                if ln2 > 0 {
                    // conv = np.convolve(V0[k1-V0s : k1-V0s+ln2], pwrs[:ln2]);
                    // V1[:convLen] = conv[convStart : convStart+convLen]
                    let aStart = k1 - V0s
                    let aLength = Swift.max(0, Swift.min(ln2, npwrs - aStart))
                    let convStart = j1 - k1
                    let convLen = j2 - j1 + 1
                    for out in 0..<Swift.max(convLen, 0) {
                        let kk = convStart + out
                        var s = 0.0
                        let lo = Swift.max(0, kk - ln2 + 1)
                        let hi = Swift.min(kk, aLength - 1)
                        if lo <= hi {
                            for ia in lo...hi {
                                let weight: Double
                                if useG {
                                    weight = gpower[kk - ia]
                                } else if i % 2 == 1 {
                                    weight = twogpower[kk - ia]
                                } else {
                                    weight = onem2gpower[kk - ia]
                                }
                                s += V0[aStart + ia] * weight
                            }
                        }
                        V1[out] = s
                    }
                    var largest = -Double.infinity
                    for value in V1 where value > largest { largest = value }
                    if 0 < largest && largest < scaleDown {
                        for index in 0..<npwrs { V1[index] *= scaleUp }
                        expnt -= scaleExponent
                    }
                    V1s = V0s + j1 - k1
                }
            }

            // Multiply by n!
            var ans = V1[n - V1s]
            for m in 1...n {
                if Swift.abs(ans) > scaleUp {
                    ans *= scaleDown
                    expnt += scaleExponent
                }
                ans *= Double(m)
            }
            if expnt != 0 {
                ans = KolmogorovSmirnov.ldexp(ans, expnt)
            }
            return KolmogorovSmirnov.clip(ans)
        }

        /// `_kolmogn_PelzGood(n, x)`: the Pelz–Good approximation to Pr(D_n <= x), the
        /// Li-Chien/Korolyuk expansion K0 + K1/√n + K2/n + K3/n^1.5 transformed with Jacobi
        /// theta functions for small z = x√n.
        static func pelzGoodCDF(n: Int, x: Double) -> Double {
            if x <= 0.0 { return 0.0 }
            if x >= 1.0 { return 1.0 }
            let dn = Double(n)
            let z = dn.squareRoot() * x
            let zsquared = z * z
            let zthree = Foundation.pow(z, 3)
            let zfour = Foundation.pow(z, 4)
            let zsix = Foundation.pow(z, 6)

            let qlog = -piSquared / 8 / zsquared
            if qlog < minLog { return 0.0 }
            var q = Foundation.exp(qlog)

            let k1a = -zsquared
            let k1b = piSquared / 4

            let k2a = 6 * zsix + 2 * zfour
            let k2b = (2 * zfour - 5 * zsquared) * piSquared / 4
            let k2c = piFour * (1 - 2 * zsquared) / 16

            let k3d = piSix * (5 - 30 * zsquared) / 64
            let k3c = piFour * (-60 * zsquared + 212 * zfour) / 16
            let k3b = piSquared * (135 * zfour - 96 * zsix) / 4
            let k3a = -30 * zsix - 90 * Foundation.pow(z, 8)

            var K0 = 0.0, K1 = 0.0, K2 = 0.0, K3 = 0.0
            // Horner scheme for sum c_i q^(i^2) over odd integers.
            let maxk = Int((16 * z / Double.pi).rounded(.up))
            if maxk >= 1 {
                for k in stride(from: maxk, through: 1, by: -1) {
                    let m = 2 * k - 1
                    let msquared = Double(m * m)
                    let mfour = Double(m * m * m * m)
                    let msix = Double(m * m * m * m * m * m)
                    let qpower = Foundation.pow(q, Double(8 * k))
                    K0 = K0 * qpower + 1.0
                    K1 = K1 * qpower + (k1a + k1b * msquared)
                    K2 = K2 * qpower + (k2a + k2b * msquared + k2c * mfour)
                    K3 = K3 * qpower + (k3a + k3b * msquared + k3c * mfour + k3d * msix)
                }
            }
            K0 *= q; K1 *= q; K2 *= q; K3 *= q
            K0 *= sqrt2Pi; K1 *= sqrt2Pi; K2 *= sqrt2Pi; K3 *= sqrt2Pi
            K0 /= z
            K1 /= 6 * zfour
            K2 /= 72 * Foundation.pow(z, 7)
            K3 /= 6480 * Foundation.pow(z, 10)

            // The other sums, over all integers k.
            q = Foundation.exp(-piSquared / 2 / zsquared)
            let sqrt3z = sqrt3 * z
            var k2extra = 0.0
            var k3extra = 0.0
            if maxk >= 1 {
                for k in stride(from: maxk, through: 1, by: -1) {
                    let ksquared = Double(k * k)
                    let qpwer = Foundation.pow(q, ksquared)
                    let kspi = Double.pi * Double(k)
                    k2extra += ksquared * qpwer
                    k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwer
                }
            }
            k2extra *= piSquared * sqrt2Pi / (-36 * zthree)
            K2 += k2extra
            k3extra *= piSquared * sqrt2Pi / (216 * zsix)
            K3 += k3extra

            K1 /= Foundation.pow(dn, 0.5)
            K2 /= dn
            K3 /= Foundation.pow(dn, 1.5)
            return 0 + K0 + K1 + K2 + K3
        }
    }
}

// MARK: - smirnov (xsf cephes/kolmogorov.h)

extension KolmogorovSmirnov {
    /// `scipy.special.smirnov(n, x)`: the one-sided Kolmogorov–Smirnov survival function
    /// Pr(D_n^+ >= x), from xsf's `cephes/kolmogorov.h` (`_smirnov`), with the
    /// Birnbaum–Tingey sum evaluated in double-double arithmetic as there.
    enum Smirnov {
        /// `SMIRNOV_MAX_COMPUTE_N`: larger n use an approximation.
        static let maxComputeN = 1_000_000
        /// `SM_UPPER_MAX_TERMS`, `SM_UPPERSUM_MIN_N`.
        static let upperMaxTerms = 3
        static let upperSumMinN = 10
        /// `SM_MAX_EXPONENT`.
        static let maxExponent = 960
        /// cephes `MINLOG`.
        static let minLog = -7.451332191019412076235e2
        static let ln2 = 0.693147180559945309417232121458176568

        static func survival(n: Int, x: Double) -> Double {
            if x.isNaN { return .nan }
            if !(n > 0 && x >= 0.0 && x <= 1.0) { return .nan }
            if n == 1 { return 1 - x }
            if x == 0.0 { return 1.0 }
            if x == 1.0 { return 0.0 }

            let (alpha, nxfl, _) = modNX(n: n, x: x)
            var n1mxfl = n - nxfl - (alpha == 0 ? 0 : 1)
            var n1mxceil = n - nxfl
            if alpha == 0 {
                n1mxfl -= 1
                n1mxceil += 1
            }
            // x <= 1/n
            if nxfl == 0 || (nxfl == 1 && alpha == 0) {
                let t = pow2(1, x, n - 1)
                let cdf = x * t
                return 1 - cdf
            }
            // The sf underflows.
            if Double(-2 * n) * x * x < minLog {
                return 0
            }
            // x >= 1 - 1/n
            if nxfl >= n - 1 {
                return pow2(1, -x, n)
            }
            // n too big to sum: p ~ exp(-(6nx+1)^2 / 18n).
            if n > maxComputeN {
                let dn = Double(n)
                let logp = -Foundation.pow(6.0 * dn * x + 1, 2) / 18.0 / dn
                if logp < -ln2 {
                    return Foundation.exp(logp)
                }
                let cdf = -Foundation.expm1(logp)
                return 1 - cdf
            }

            let nUpperTerms = n - n1mxceil + 1
            var useUpperSum = nUpperTerms <= 1 && x < 0.5
            useUpperSum = useUpperSum
                || (n >= upperSumMinN && nUpperTerms <= upperMaxTerms && x <= 0.5 / Double(n).squareRoot())

            var start = 0
            var step = 1
            var nTerms = n1mxfl + 1
            let vmid = n / 2
            var cman = DoubleDouble(1.0)
            var cexpt = 0
            var aj: DoubleDouble
            var ajSum = DoubleDouble(0.0)
            if useUpperSum {
                start = n
                step = -1
                nTerms = n - n1mxceil + 1
                aj = pow4D(1, x, 1, 0, n - 1)
            } else {
                let t2 = pow4D(1, -x, 1, 0, n)
                aj = t2 / x
            }
            ajSum = ajSum + aj
            updateBinomial(&cman, &cexpt, n: n, j: 0)

            var j = 1
            while j < nTerms {
                let v = start + j * step
                aj = computeAv(n: n, x: x, v: v, cman: cman, cexpt: cexpt)
                let ajIsZero = aj.hi == 0 && aj.lo == 0
                if aj.hi.isFinite && !ajIsZero {
                    ajSum = ajSum + aj
                }
                if !ajIsZero {
                    if Double(4 * (nTerms - j)) * Swift.abs(aj.hi) < Double.ulpOfOne * ajSum.hi && j != nTerms - 1 {
                        break
                    }
                } else if j > vmid {
                    break
                }
                updateBinomial(&cman, &cexpt, n: n, j: j)
                j += 1
            }
            let prob = (x * ajSum).hi
            let sf = step < 0 ? 1 - prob : prob
            return Swift.min(Swift.max(sf, 0.0), 1.0)
        }

        /// `modNX`: floor(n x) and the fractional part alpha, computed exactly in double-double.
        static func modNX(n: Int, x: Double) -> (alpha: Double, nxFloor: Int, nx: Double) {
            let nxD = Double(n) * DoubleDouble(x)
            let nxFloorD = nxD.floor()
            let alphaD = nxD - nxFloorD
            var alpha = alphaD.hi
            var nxFloor = Int(nxFloorD.hi)
            if alpha == 1 {
                nxFloor += 1
                alpha = 0
            }
            return (alpha, nxFloor, nxD.hi)
        }

        /// `updateBinomial`: C(n, j+1) from C(n, j), kept as a double-double mantissa and a
        /// separate binary exponent.
        static func updateBinomial(_ cman: inout DoubleDouble, _ cexpt: inout Int, n: Int, j: Int) {
            let rat = DoubleDouble(Double(n - j)) / (Double(j) + 1.0)
            let (man2, expt) = (cman * rat).frexp()
            cexpt += expt
            cman = man2
        }

        /// `pow_D`: a^m for a double-double, from pow() of the high part with a first-order
        /// correction for the low part.
        static func powD(_ a: DoubleDouble, _ m: Int) -> DoubleDouble {
            if m <= 0 {
                if m == 0 { return DoubleDouble(1.0) }
                return 1.0 / powD(a, -m)
            }
            if a.hi == 0 && a.lo == 0 {
                return DoubleDouble(0.0)
            }
            let dm = Double(m)
            let ans = Foundation.pow(a.hi, dm)
            let r = a.lo / a.hi
            var adj = dm * r
            if Swift.abs(adj) > 1e-8 {
                if Swift.abs(adj) < 1e-4 {
                    adj += (dm * r) * (Double(m - 1) / 2.0 * r)
                } else {
                    adj = Foundation.expm1(dm * Foundation.log1p(r))
                }
            }
            return DoubleDouble(ans) + ans * adj
        }

        /// `pow2(a, b, m)`: (a + b)^m.
        static func pow2(_ a: Double, _ b: Double, _ m: Int) -> Double {
            powD(DoubleDouble(a) + b, m).hi
        }

        /// `pow4_D(a, b, c, d, m)`: ((a + b)/(c + d))^m.
        static func pow4D(_ a: Double, _ b: Double, _ c: Double, _ d: Double, _ m: Int) -> DoubleDouble {
            if m <= 0 {
                if m == 0 { return DoubleDouble(1.0) }
                return pow4D(c, d, a, b, -m)
            }
            let A = DoubleDouble(a) + b
            let C = DoubleDouble(c) + d
            if A.hi == 0 && A.lo == 0 {
                return (C.hi == 0 && C.lo == 0) ? DoubleDouble(.nan, .nan) : DoubleDouble(0.0)
            }
            if C.hi == 0 && C.lo == 0 {
                return A.hi < 0 || (A.hi == 0 && A.lo < 0)
                    ? DoubleDouble(-.infinity, -.infinity) : DoubleDouble(.infinity, .infinity)
            }
            return powD(A / C, m)
        }

        /// `nextPowerOf2` as written in xsf.
        static func nextPowerOf2(_ x: Double) -> Double {
            // ldexp(x, 1 - digits) with digits = 53 for double.
            let q = KolmogorovSmirnov.ldexp(x, -52)
            var l = Swift.abs(q + x)
            if l == 0 {
                l = Swift.abs(x)
            } else if l < 2_147_483_648.0 {
                let lInt = Double(Int(l))
                if lInt == l {
                    l = lInt
                }
            }
            return l
        }

        /// `pow2Scaled_D`: a^m as (significand, binary exponent), splitting the power so that
        /// intermediate results stay normalized.
        static func pow2ScaledD(_ a: DoubleDouble, _ m: Int) -> (DoubleDouble, Int) {
            if m <= 0 {
                if m == 0 { return (DoubleDouble(1.0), 0) }
                let (ans1, aE1) = pow2ScaledD(a, -m)
                let (ans, aE2) = (1.0 / ans1).frexp()
                return (ans, -aE1 + aE2)
            }
            let (y, yE) = a.frexp()
            if m == 1 {
                return (y, yE)
            }
            var maxExpt = maxExponent
            if Double(m) * (y.hi - 1) / y.hi < Double(-maxExponent) * ln2 {
                let lg2y = Foundation.log(y.hi) / ln2
                let lgAns = Double(m) * lg2y
                if lgAns <= Double(-maxExponent) {
                    maxExpt = Int(nextPowerOf2(Double(-maxExponent) / lg2y + 1) / 2)
                }
            }
            if m <= maxExpt {
                let ans1 = powD(y, m)
                let (ans, ansE) = ans1.frexp()
                return (ans, ansE + m * yE)
            }
            let q = m / maxExpt
            let r = m % maxExpt
            let (y2r, y2rE) = pow2ScaledD(y, r)
            let (y2m, y2mE) = pow2ScaledD(y, maxExpt)
            let (y2mq, y2mqScaleE) = pow2ScaledD(y2m, q)
            var y2mqE = y2mqScaleE
            var (ans, ansE) = (y2r * y2mq).frexp()
            y2mqE += y2mE * q
            ansE += y2mqE + y2rE
            ansE += m * yE
            return (ans, ansE)
        }

        /// `computeAv`: A_v(n, x) = C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1).
        static func computeAv(n: Int, x: Double, v: Int, cman: DoubleDouble, cexpt: Int) -> DoubleDouble {
            let dn = Double(n)
            let t2x = DoubleDouble(Double(n - v)) / dn - x
            let (t2, t2E) = pow2ScaledD(t2x, n - v)
            let t1x = DoubleDouble(Double(v)) / dn + x
            let (t1, t1E) = pow2ScaledD(t1x, v - 1)
            var ans = t1 * t2
            ans = ans * cman
            let ansE = cexpt + t1E + t2E
            return ans.scaled(by: ansE)
        }
    }

    /// The double-double arithmetic of xsf's `cephes/dd_real.h` (from the qd package): a value
    /// hi + lo with |lo| <= ulp(hi)/2, with the same error-free transformations.
    struct DoubleDouble {
        var hi: Double
        var lo: Double

        init(_ hi: Double, _ lo: Double) {
            self.hi = hi
            self.lo = lo
        }

        init(_ value: Double) {
            self.hi = value
            self.lo = 0.0
        }

        /// fl(a + b) and its error, assuming |a| >= |b|.
        @inline(__always)
        static func quickTwoSum(_ a: Double, _ b: Double) -> (Double, Double) {
            let s = a + b
            let c = s - a
            return (s, b - c)
        }

        /// fl(a + b) and its error.
        @inline(__always)
        static func twoSum(_ a: Double, _ b: Double) -> (Double, Double) {
            let s = a + b
            let c = s - a
            let d = b - c
            let e = s - c
            return (s, (a - e) + d)
        }

        /// fl(a * b) and its error (fused multiply-add).
        @inline(__always)
        static func twoProd(_ a: Double, _ b: Double) -> (Double, Double) {
            let p = a * b
            return (p, (-p).addingProduct(a, b))
        }

        static prefix func - (x: DoubleDouble) -> DoubleDouble {
            DoubleDouble(-x.hi, -x.lo)
        }

        static func + (lhs: DoubleDouble, rhs: DoubleDouble) -> DoubleDouble {
            var (s1, s2) = twoSum(lhs.hi, rhs.hi)
            let (t1, t2) = twoSum(lhs.lo, rhs.lo)
            s2 += t1
            (s1, s2) = quickTwoSum(s1, s2)
            s2 += t2
            (s1, s2) = quickTwoSum(s1, s2)
            return DoubleDouble(s1, s2)
        }

        static func + (lhs: DoubleDouble, rhs: Double) -> DoubleDouble {
            var (s1, s2) = twoSum(lhs.hi, rhs)
            s2 += lhs.lo
            (s1, s2) = quickTwoSum(s1, s2)
            return DoubleDouble(s1, s2)
        }

        static func - (lhs: DoubleDouble, rhs: DoubleDouble) -> DoubleDouble {
            lhs + (-rhs)
        }

        static func - (lhs: DoubleDouble, rhs: Double) -> DoubleDouble {
            var (s1, s2) = twoSum(lhs.hi, -rhs)
            s2 += lhs.lo
            (s1, s2) = quickTwoSum(s1, s2)
            return DoubleDouble(s1, s2)
        }

        static func * (lhs: DoubleDouble, rhs: DoubleDouble) -> DoubleDouble {
            var (p1, p2) = twoProd(lhs.hi, rhs.hi)
            p2 += (lhs.hi * rhs.lo + lhs.lo * rhs.hi)
            (p1, p2) = quickTwoSum(p1, p2)
            return DoubleDouble(p1, p2)
        }

        static func * (lhs: DoubleDouble, rhs: Double) -> DoubleDouble {
            let (p1, e1) = twoProd(lhs.hi, rhs)
            let (p2, e2) = twoProd(lhs.lo, rhs)
            let (s, e) = quickTwoSum(p1, e2 + p2 + e1)
            return DoubleDouble(s, e)
        }

        static func * (lhs: Double, rhs: DoubleDouble) -> DoubleDouble {
            let (p1, e1) = twoProd(lhs, rhs.hi)
            let (p2, e2) = twoProd(lhs, rhs.lo)
            let (s, e) = quickTwoSum(p1, e2 + p2 + e1)
            return DoubleDouble(s, e)
        }

        static func / (lhs: DoubleDouble, rhs: DoubleDouble) -> DoubleDouble {
            var q1 = lhs.hi / rhs.hi
            var r = lhs - rhs * q1
            var q2 = r.hi / rhs.hi
            r = r - rhs * q2
            let q3 = r.hi / rhs.hi
            (q1, q2) = quickTwoSum(q1, q2)
            return DoubleDouble(q1, q2) + q3
        }

        static func / (lhs: DoubleDouble, rhs: Double) -> DoubleDouble {
            lhs / DoubleDouble(rhs)
        }

        static func / (lhs: Double, rhs: DoubleDouble) -> DoubleDouble {
            DoubleDouble(lhs) / rhs
        }

        /// `floor(double_double)`.
        func floor() -> DoubleDouble {
            var h = hi.rounded(.down)
            var l = 0.0
            if h == hi {
                l = lo.rounded(.down)
                (h, l) = DoubleDouble.quickTwoSum(h, l)
            }
            return DoubleDouble(h, l)
        }

        /// `ldexp(double_double, e)`.
        func scaled(by exponent: Int) -> DoubleDouble {
            DoubleDouble(KolmogorovSmirnov.ldexp(hi, exponent), KolmogorovSmirnov.ldexp(lo, exponent))
        }

        /// C `frexp(x)`: x = m * 2^e with 0.5 <= |m| < 1, (x, 0) for zero and non-finite x.
        /// (The Foundation overlay's `frexp` drops the sign of negative x, so it is not used.)
        static func frexp(_ x: Double) -> (Double, Int) {
            if x == 0 || !x.isFinite { return (x, 0) }
            let e = Int(x.exponent) + 1
            return (KolmogorovSmirnov.ldexp(x, -e), e)
        }

        /// `frexp(double_double)`: a significand with 0.5 <= |hi| < 1 (or |hi| == 1 with lo of
        /// opposite sign) and the binary exponent.
        func frexp() -> (DoubleDouble, Int) {
            var (man, exponent) = DoubleDouble.frexp(hi)
            var b1 = KolmogorovSmirnov.ldexp(lo, -exponent)
            if Swift.abs(man) == 0.5 && man * b1 < 0 {
                man *= 2
                b1 *= 2
                exponent -= 1
            }
            return (DoubleDouble(man, b1), exponent)
        }
    }
}
