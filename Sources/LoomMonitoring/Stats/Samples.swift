import Foundation

/// One side of a column after cleaning, as the drift tests read it: the sorted values of a
/// numerical column, or the counts of a categorical one's categories.
public enum Sample: Sendable {
    /// Sorted ascending, no NaN or infinity. `integral`: read as integers (pandas' int64), which
    /// changes how numpy bins it.
    case numbers([Double], integral: Bool)
    /// Counts by category index (indices shared with the other side's sample).
    case counts([Int])

    public var count: Int {
        switch self {
        case .numbers(let v, _): v.count
        case .counts(let c): c.reduce(0, +)
        }
    }
}

/// Distinct values and their counts, merged over two sorted samples: what pandas'
/// `value_counts` gives each side over the union of their values (`keys`, ascending).
struct MergedCounts {
    var keys: [Double] = []
    var reference: [Int] = []
    var current: [Int] = []

    init(_ a: [Double], _ b: [Double]) {
        var i = 0, j = 0
        while i < a.count || j < b.count {
            let key = j >= b.count || (i < a.count && a[i] <= b[j]) ? a[i] : b[j]
            var ca = 0, cb = 0
            while i < a.count, a[i] == key { ca += 1; i += 1 }
            while j < b.count, b[j] == key { cb += 1; j += 1 }
            keys.append(key)
            reference.append(ca)
            current.append(cb)
        }
    }
}

enum Distinct {
    /// Distinct values of a sorted array.
    static func count(_ sorted: [Double]) -> Int {
        guard var last = sorted.first else { return 0 }
        var n = 1
        for v in sorted where v != last {
            n += 1
            last = v
        }
        return n
    }

    /// Distinct values of two sorted arrays together.
    static func count(_ a: [Double], _ b: [Double]) -> Int {
        var i = 0, j = 0, n = 0
        while i < a.count || j < b.count {
            let key = j >= b.count || (i < a.count && a[i] <= b[j]) ? a[i] : b[j]
            n += 1
            while i < a.count, a[i] == key { i += 1 }
            while j < b.count, b[j] == key { j += 1 }
        }
        return n
    }
}

/// numpy's histogram machinery, as Evidently's binning calls it.
enum Histogram {
    /// `np.histogram_bin_edges(values, bins="sturges")` for the combined values (min, max and
    /// count given): equal-width edges from min to max.
    static func sturgesEdges(min lo: Double, max hi: Double, count: Int, integral: Bool) -> [Double] {
        var first = lo, last = hi
        if first == last {
            first -= 0.5
            last += 0.5
        }
        var width = (hi - lo) / (log2(Double(count)) + 1.0)
        let bins: Int
        if width != 0 {
            if integral, width < 1 { width = 1 }
            bins = Int((((last - first) / width)).rounded(.up))
        } else {
            bins = 1
        }
        return linspace(first, last, bins + 1)
    }

    /// `np.linspace(start, stop, num)` (endpoint included), bit for bit.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        let div = Double(num - 1)
        let delta = stop - start
        let step = delta / div
        var y = [Double](repeating: 0, count: num)
        for i in 0..<num {
            y[i] = step == 0 ? Double(i) / div * delta + start : Double(i) * step + start
        }
        if num > 1 { y[num - 1] = stop }
        return y
    }

    /// `np.histogram(sorted, edges)[0]`: counts per bin, each bin closed on the left, the last
    /// closed on both sides; values outside the edges are not counted.
    static func counts(_ sorted: [Double], edges: [Double]) -> [Int] {
        var cumulative = [Int](repeating: 0, count: edges.count)
        for (i, e) in edges.enumerated() {
            cumulative[i] = i == edges.count - 1 ? upperBound(sorted, e) : lowerBound(sorted, e)
        }
        return (0..<(edges.count - 1)).map { cumulative[$0 + 1] - cumulative[$0] }
    }

    /// Index of the first element not less than `x` (`searchsorted(side="left")`).
    static func lowerBound(_ a: [Double], _ x: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Index of the first element greater than `x` (`searchsorted(side="right")`).
    static func upperBound(_ a: [Double], _ x: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] <= x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// Evidently's `get_binned_data`: each side's share of each bin (numerical columns whose
/// reference has more than 20 distinct values) or of each value (everything else), optionally
/// with zero shares replaced by a small number.
enum Binning {
    static func shares(_ reference: Sample, _ current: Sample, numerical: Bool, fillZeros: Bool) -> (reference: [Double], current: [Double]) {
        var r: [Double], c: [Double]
        switch (reference, current) {
        case (.numbers(let a, let ia), .numbers(let b, let ib)):
            if numerical, Distinct.count(a) > 20 {
                let edges = Histogram.sturgesEdges(
                    min: Swift.min(a.first!, b.first ?? a.first!), max: Swift.max(a.last!, b.last ?? a.last!), count: a.count + b.count,
                    integral: ia && ib)
                r = Histogram.counts(a, edges: edges).map { Double($0) / Double(a.count) }
                c = Histogram.counts(b, edges: edges).map { Double($0) / Double(b.count) }
            } else {
                let merged = MergedCounts(a, b)
                r = merged.reference.map { Double($0) / Double(a.count) }
                c = merged.current.map { Double($0) / Double(b.count) }
            }
        case (.counts(let a), .counts(let b)):
            let na = Double(a.reduce(0, +)), nb = Double(b.reduce(0, +))
            let present = (0..<Swift.max(a.count, b.count)).filter { (a.indices.contains($0) ? a[$0] : 0) + (b.indices.contains($0) ? b[$0] : 0) > 0 }
            r = present.map { Double(a.indices.contains($0) ? a[$0] : 0) / na }
            c = present.map { Double(b.indices.contains($0) ? b[$0] : 0) / nb }
        default:
            return ([], [])
        }
        if fillZeros {
            fill(&r)
            fill(&c)
        }
        return (r, c)
    }

    /// `np.place(p, p == 0, min_nonzero / 1e6 if min_nonzero <= 1e-4 else 1e-4)`.
    static func fill(_ p: inout [Double]) {
        guard let smallest = p.filter({ $0 != 0 }).min() else { return }
        let small = smallest <= 0.0001 ? smallest / 1_000_000 : 0.0001
        for i in p.indices where p[i] == 0 { p[i] = small }
    }
}

/// The distances and tests between two samples, each as Evidently computes it.
enum DriftStatistics {
    /// Population stability index on the binned shares (zeros filled), not renormalised.
    static func psi(_ r: [Double], _ c: [Double]) -> Double {
        zip(r, c).reduce(0) { $0 + ($1.0 - $1.1) * log($1.0 / $1.1) }
    }

    /// `scipy.stats.entropy(r, c)`: both normalised to sum 1, then Σ r ln(r / c).
    static func kullbackLeibler(_ r: [Double], _ c: [Double]) -> Double {
        let sr = r.reduce(0, +), sc = c.reduce(0, +)
        return zip(r, c).reduce(0) { $0 + relativeEntropy($1.0 / sr, $1.1 / sc) }
    }

    /// `scipy.spatial.distance.jensenshannon(r, c)`: normalised, natural log, square root of
    /// half the sum of both divergences from the mean.
    static func jensenShannon(_ r: [Double], _ c: [Double]) -> Double {
        let sr = r.reduce(0, +), sc = c.reduce(0, +)
        var left = 0.0, right = 0.0
        for (x, y) in zip(r, c) {
            let p = x / sr, q = y / sc, m = (p + q) / 2
            left += relativeEntropy(p, m)
            right += relativeEntropy(q, m)
        }
        return ((left + right) / 2).squareRoot()
    }

    /// scipy's `rel_entr`.
    static func relativeEntropy(_ x: Double, _ y: Double) -> Double {
        if x > 0, y > 0 { return x * log(x / y) }
        if x == 0, y >= 0 { return 0 }
        return .infinity
    }

    /// Total variation distance: half the sum of absolute differences of the shares.
    static func totalVariation(_ r: [Double], _ c: [Double]) -> Double {
        0.5 * zip(r, c).reduce(0) { $0 + abs($1.0 - $1.1) }
    }

    /// Evidently's Hellinger distance. Categorical: from each side's shares of each value.
    /// Numerical: densities over Sturges bins of the distinct values (not of the data), times
    /// the bin width.
    static func hellinger(_ reference: Sample, _ current: Sample, numerical: Bool) -> Double {
        var sum = 0.0
        if numerical, case .numbers(let a, let ia) = reference, case .numbers(let b, let ib) = current {
            let keys = MergedCounts(a, b).keys
            guard let lo = keys.first, let hi = keys.last else { return .nan }
            let edges = Histogram.sturgesEdges(min: lo, max: hi, count: keys.count, integral: ia && ib)
            let width = (edges.last! - edges.first!) / Double(edges.count - 1)
            let ca = Histogram.counts(a, edges: edges), cb = Histogram.counts(b, edges: edges)
            for i in ca.indices {
                // np.histogram(density=True): count / total / bin width.
                let w = edges[i + 1] - edges[i]
                let p1 = Double(ca[i]) / Double(a.count) / w, p2 = Double(cb[i]) / Double(b.count) / w
                sum += (p1 * p2).squareRoot() * width
            }
        } else {
            let (r, c) = Binning.shares(reference, current, numerical: false, fillZeros: false)
            for (p1, p2) in zip(r, c) { sum += (p1 * p2).squareRoot() }
        }
        return (1 - Swift.min(Swift.max(sum, 0), 1)).squareRoot()
    }

    /// `scipy.stats.wasserstein_distance(a, b) / max(std(a), 0.001)` on sorted samples: the
    /// area between the two empirical CDFs, over the reference's standard deviation (ddof 0).
    static func normedWasserstein(_ a: [Double], _ b: [Double]) -> Double {
        var distance = 0.0
        var i = 0, j = 0
        var previous = Swift.min(a[0], b[0])
        // Walk the merged values; between two consecutive ones both CDFs are constant.
        while i < a.count || j < b.count {
            let x = j >= b.count || (i < a.count && a[i] <= b[j]) ? a[i] : b[j]
            distance += abs(Double(i) / Double(a.count) - Double(j) / Double(b.count)) * (x - previous)
            while i < a.count, a[i] == x { i += 1 }
            while j < b.count, b[j] == x { j += 1 }
            previous = x
        }
        return distance / Swift.max(standardDeviation(a), 0.001)
    }

    /// numpy's `std` (ddof 0): the mean of squared deviations from the mean, square-rooted.
    static func standardDeviation(_ a: [Double]) -> Double {
        let mean = NumpyMath.sum(a) / Double(a.count)
        return (NumpyMath.sum(a.map { ($0 - mean) * ($0 - mean) }) / Double(a.count)).squareRoot()
    }

    /// Evidently's chi-square test: the current counts against the reference's scaled to the
    /// current's size, over every value of either side; df = values − 1.
    static func chiSquare(reference: [Int], current: [Int]) -> Double {
        let nr = Double(reference.reduce(0, +)), nc = Double(current.reduce(0, +))
        let scale = nc / nr
        var statistic = 0.0, k = 0
        for (r, c) in zip(reference, current) where r + c > 0 {
            k += 1
            let expected = Double(r) * scale
            statistic += expected == 0 ? .infinity : (Double(c) - expected) * (Double(c) - expected) / expected
        }
        return Special.chiSquareSF(statistic, df: Double(k - 1))
    }

    /// Evidently's Z-test for two proportions: the share of values other than the smallest
    /// (`smallest` true for the smallest value's counts), pooled variance, two-sided.
    static func zTest(referenceSmallest: Int, referenceTotal: Int, currentSmallest: Int, currentTotal: Int, singleSameValue: Bool) -> Double {
        if singleSameValue { return 1 }
        let n1 = Double(referenceTotal), n2 = Double(currentTotal)
        let p1 = Double(referenceTotal - referenceSmallest) / n1
        let p2 = Double(currentTotal - currentSmallest) / n2
        let pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
        let z = (p1 - p2) / (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).squareRoot()
        return 2 * (1 - Special.normalCDF(abs(z)))
    }
}
