import Foundation

/// Evidently's "anderson" drift test: `scipy.stats.anderson_ksamp([reference, current])`.
///
/// Evidently 0.7.23 (`evidently/legacy/calculations/stattests/anderson_darling_stattest.py`)
/// calls `anderson_ksamp([reference_data.values, current_data.values])[2]` with no other
/// argument, and reports drift when that p-value is `< threshold` (default 0.1). This is a
/// port of scipy 1.17.1's `anderson_ksamp` (`scipy/stats/_morestats.py`) for that call:
///
/// - `midrank` and `variant` are left at `_NoValue`, which is truthy, so the variant is
///   `'midrank'`: `_anderson_ksamp_midrank` (equation 7 of Scholz & Stephens 1987, the
///   version for data with ties). The deprecation `UserWarning` it emits has no effect on
///   the numbers.
/// - The statistic is standardised with the exact `sigmasq` expression of `anderson_ksamp`
///   (with `k = 2`, `m = k - 1 = 1`).
/// - Element `[2]` of the result is the significance level: with `m = 1` the critical
///   values `b0 + b1/sqrt(m) + b2/m` are fixed, so `np.polyfit(critical, log(sig), 2)` is a
///   constant quadratic (its coefficients below are the float64 values numpy computes).
///   A statistic below the smallest critical value returns the cap 0.25, one above the
///   largest returns the floor 0.001 (scipy only warns in both cases; the value is not
///   otherwise clipped), anything in between returns `exp(polyval(pf, A2))`.
///
/// Floating-point operations are done in the order numpy does them, and array sums use
/// numpy's pairwise summation, so results agree with scipy to the last bit or nearly so.
public enum AndersonDarling {
    /// scipy.stats.anderson_ksamp([a, b]) as Evidently calls it: the statistic and the p-value Evidently reads (element [2]).
    /// `a`, `b`: free of NaN, any order, sizes up to 10^6 each (must run in O(N log N)).
    ///
    /// Where scipy raises (an empty sample, fewer than two distinct values in the pooled
    /// sample, or a pooled size of 2, where the `hs_cs[-1]` lookup fails), this returns `(nan, nan)`.
    public static func twoSample(_ a: [Double], _ b: [Double]) -> (statistic: Double, pValue: Double) {
        guard !a.isEmpty, !b.isEmpty else { return (.nan, .nan) }
        let sortedA = NumpyMath.sortedAscending(a)
        let sortedB = NumpyMath.sortedAscending(b)
        guard let a2kN = midrankStatistic(sortedA: sortedA, sortedB: sortedB) else {
            return (.nan, .nan)
        }
        let a2 = standardized(a2kN, n1: a.count, n2: b.count)
        return (a2, significanceLevel(a2))
    }

    // MARK: - Statistic

    /// `_anderson_ksamp_midrank(samples, Z, Zstar, k=2, n, N)` of scipy 1.17.1.
    ///
    /// For every distinct pooled value `z_j` (`Zstar`) scipy computes, per sample `i`,
    /// ```
    /// lj   = count of z_j in Z             (the scalar 1. when Z has no ties)
    /// Bj   = searchsorted(Z, z_j, 'left') + lj / 2.
    /// Mij  = searchsorted(s_i, z_j, 'right') - f_ij / 2.   (f_ij = count of z_j in s_i)
    /// inner = lj / float(N) * (N*Mij - Bj*n[i])**2 / (Bj*(N - Bj) - N*lj/4.)
    /// A2akN += inner.sum() / n[i]
    /// ```
    /// and finally `A2akN *= (N - 1.) / N`. The counts come from one merge over the two
    /// sorted samples; `inner.sum()` is numpy's pairwise sum over the distinct values in
    /// ascending order. (With no ties, scalar `lj = 1.` gives the same doubles as `lj = 1`.)
    ///
    /// Returns nil when the pooled sample has fewer than two distinct values (scipy raises).
    static func midrankStatistic(sortedA sa: [Double], sortedB sb: [Double]) -> Double? {
        let na = sa.count
        let nb = sb.count
        let bigN = na + nb
        let nD = Double(bigN)
        let naD = Double(na)
        let nbD = Double(nb)
        var innerA: [Double] = []
        var innerB: [Double] = []
        innerA.reserveCapacity(bigN)
        innerB.reserveCapacity(bigN)
        sa.withUnsafeBufferPointer { pa in
            sb.withUnsafeBufferPointer { pb in
                var i = 0
                var j = 0
                while i < na || j < nb {
                    let z: Double
                    if i < na && j < nb {
                        z = pa[i] <= pb[j] ? pa[i] : pb[j]
                    } else if i < na {
                        z = pa[i]
                    } else {
                        z = pb[j]
                    }
                    let left = i + j  // searchsorted(Z, z, 'left')
                    var ia = i
                    while ia < na && pa[ia] == z { ia += 1 }
                    var jb = j
                    while jb < nb && pb[jb] == z { jb += 1 }
                    let fa = ia - i
                    let fb = jb - j
                    let ljInt = fa + fb
                    let lj = Double(ljInt)
                    let bj = Double(left) + lj / 2.0
                    let weight = lj / nD
                    let denominator = bj * (nD - bj) - Double(bigN * ljInt) / 4.0
                    let mA = Double(ia) - Double(fa) / 2.0
                    let dA = nD * mA - bj * naD
                    innerA.append(weight * (dA * dA) / denominator)
                    let mB = Double(jb) - Double(fb) / 2.0
                    let dB = nD * mB - bj * nbD
                    innerB.append(weight * (dB * dB) / denominator)
                    i = ia
                    j = jb
                }
            }
        }
        guard innerA.count >= 2 else { return nil }
        var a2akN = 0.0
        a2akN += NumpyMath.sum(innerA) / naD
        a2akN += NumpyMath.sum(innerB) / nbD
        a2akN *= (nD - 1.0) / nD
        return a2akN
    }

    /// The standardisation in `anderson_ksamp`, for k = 2 samples of sizes `n1`, `n2`:
    /// ```
    /// H = (1. / n).sum()
    /// hs_cs = (1. / arange(N - 1, 1, -1)).cumsum()
    /// h = hs_cs[-1] + 1
    /// g = (hs_cs / arange(2, N)).sum()
    /// a = (4*g - 6) * (k - 1) + (10 - 6*g)*H
    /// b = (2*g - 4)*k**2 + 8*h*k + (2*g - 14*h - 4)*H - 8*h + 4*g - 6
    /// c = (6*h + 2*g - 2)*k**2 + (4*h - 4*g + 6)*k + (2*h - 6)*H + 4*h
    /// d = (2*h + 6)*k**2 - 4*h*k
    /// sigmasq = (a*N**3 + b*N**2 + c*N + d) / ((N - 1.) * (N - 2.) * (N - 3.))
    /// A2 = (A2kN - m) / math.sqrt(sigmasq)
    /// ```
    /// evaluated left to right as Python does (`cumsum` is sequential, `.sum()` pairwise; the
    /// Python ints `N**3`, `N**2` are converted to float64 with correct rounding).
    /// Where scipy raises (`hs_cs` empty for N = 2, `math.sqrt` of a negative) this returns nan.
    static func standardized(_ a2kN: Double, n1: Int, n2: Int) -> Double {
        let bigN = n1 + n2
        guard bigN >= 3 else { return .nan }
        var hTerms = [Double](repeating: 0, count: bigN - 2)
        var hs = 0.0
        for j in 0..<(bigN - 2) {
            let term = 1.0 / Double(bigN - 1 - j)
            hs = j == 0 ? term : hs + term
            hTerms[j] = hs / Double(j + 2)
        }
        let h = hs + 1.0
        let g = NumpyMath.sum(hTerms)
        let H = ((-0.0 + 1.0 / Double(n1)) + 1.0 / Double(n2)) + 0.0
        let k = 2.0
        let kk = 4.0
        let a = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * H
        var b = (2.0 * g - 4.0) * kk + 8.0 * h * k
        b = b + (2.0 * g - 14.0 * h - 4.0) * H
        b = b - 8.0 * h
        b = b + 4.0 * g
        b = b - 6.0
        var c = (6.0 * h + 2.0 * g - 2.0) * kk + (4.0 * h - 4.0 * g + 6.0) * k
        c = c + (2.0 * h - 6.0) * H
        c = c + 4.0 * h
        let d = (2.0 * h + 6.0) * kk - 4.0 * h * k
        let nD = Double(bigN)
        let (cube, overflow) = (bigN * bigN).multipliedReportingOverflow(by: bigN)
        let n3 = overflow ? nD * nD * nD : Double(cube)
        let n2D = Double(bigN * bigN)
        var numerator = a * n3 + b * n2D
        numerator = numerator + c * nD
        numerator = numerator + d
        let sigmasq = numerator / ((nD - 1.0) * (nD - 2.0) * (nD - 3.0))
        guard !(sigmasq < 0) else { return .nan }  // math.sqrt raises ValueError
        return (a2kN - 1.0) / sigmasq.squareRoot()
    }

    // MARK: - Significance level

    /// `critical = b0 + b1 / math.sqrt(m) + b2 / m` for m = 1 (Table 2 of Scholz & Stephens),
    /// as numpy computes it; only the smallest and largest are needed.
    static let smallestCritical = 0x1.4cccccccccccep-2  // 0.32500000000000007
    static let largestCritical = 0x1.a2f1a9fbe76c9p+2  // 6.546

    /// `np.polyfit(critical, log(sig), 2)` for m = 1, highest degree first, exactly as numpy
    /// 1.x/2.x (`lstsq` on the scaled Vandermonde matrix) returns it in the reference environment.
    static let quadraticFit: (Double, Double, Double) = (
        0x1.2a285742e695ep-6,  // 0.01819809457411147
        -0x1.021b22d956316p+0,  // -1.0082265644652515
        -0x1.13e8c0c86e03fp+0  // -1.077770279820484
    )

    /// The p-value branch of `anderson_ksamp` with `method=None`:
    /// `0.25` if `A2 < critical.min()`, `0.001` if `A2 > critical.max()`, otherwise
    /// `math.exp(np.polyval(pf, A2))` (Horner from `y = 0`). A NaN statistic gives NaN.
    static func significanceLevel(_ a2: Double) -> Double {
        if a2 < smallestCritical { return 0.25 }
        if a2 > largestCritical { return 0.001 }
        var y = 0.0
        y = y * a2 + quadraticFit.0
        y = y * a2 + quadraticFit.1
        y = y * a2 + quadraticFit.2
        return exp(y)
    }

}
