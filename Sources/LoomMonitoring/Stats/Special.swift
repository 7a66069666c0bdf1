import Foundation

/// Special functions the drift tests need, to the precision scipy gives them.
enum Special {
    /// The standard normal CDF, as scipy's `ndtr`.
    static func normalCDF(_ x: Double) -> Double {
        let t = x / 2.0.squareRoot()
        if abs(t) < 1 / 2.0.squareRoot() { return 0.5 + 0.5 * erf(t) }
        return t > 0 ? 1 - 0.5 * erfc(t) : 0.5 * erfc(-t)
    }

    /// The chi-square survival function: P(X > x) for `df` degrees of freedom (scipy's
    /// `chi2.sf`), the regularized upper incomplete gamma Q(df / 2, x / 2).
    static func chiSquareSF(_ x: Double, df: Double) -> Double {
        guard df > 0, !x.isNaN else { return .nan }
        if x <= 0 { return 1 }
        if x.isInfinite { return 0 }
        return upperGamma(df / 2, x / 2)
    }

    /// The regularized upper incomplete gamma function Q(a, x): a series below a + 1, a
    /// continued fraction (modified Lentz) above.
    static func upperGamma(_ a: Double, _ x: Double) -> Double {
        if x < a + 1 { return 1 - lowerSeries(a, x) }
        return upperFraction(a, x)
    }

    static func lowerSeries(_ a: Double, _ x: Double) -> Double {
        var sum = 1 / a, term = sum, n = a
        for _ in 0..<10_000 {
            n += 1
            term *= x / n
            sum += term
            if abs(term) < abs(sum) * 1e-17 { break }
        }
        return sum * exp(-x + a * log(x) - lgamma(a))
    }

    static func upperFraction(_ a: Double, _ x: Double) -> Double {
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return exp(-x + a * log(x) - lgamma(a)) * h
    }
}
