import Foundation
import LoomCore

/// Evaluation plots as standalone SVG documents.
public enum Plots {
    static let size = (width: 480.0, height: 400.0)
    static let margin = (left: 60.0, right: 20.0, top: 36.0, bottom: 50.0)

    /// Reliability diagram: in ten bins of predicted probability, the share of rows that were
    /// positive (binary: the second class; multiclass: the predicted class being right).
    public static func calibration(labels: [Int32], probabilities: [Double], classes: Int, title: String) -> String {
        let n = labels.count
        var sums = [Double](repeating: 0, count: 10)
        var hits = [Double](repeating: 0, count: 10)
        var counts = [Int](repeating: 0, count: 10)
        for i in 0..<n {
            let (p, hit): (Double, Bool)
            if classes == 2 {
                p = probabilities[i * 2 + 1]
                hit = labels[i] == 1
            } else {
                var best = 0
                for c in 1..<classes where probabilities[i * classes + c] > probabilities[i * classes + best] { best = c }
                p = probabilities[i * classes + best]
                hit = Int(labels[i]) == best
            }
            let b = min(Int(p * 10), 9)
            sums[b] += p
            hits[b] += hit ? 1 : 0
            counts[b] += 1
        }
        var points: [(Double, Double)] = []
        for b in 0..<10 where counts[b] > 0 { points.append((sums[b] / Double(counts[b]), hits[b] / Double(counts[b]))) }
        var svg = frame(title: title, xLabel: classes == 2 ? "mean predicted probability" : "mean confidence",
                        yLabel: classes == 2 ? "fraction positive" : "fraction correct", x: (0, 1), y: (0, 1))
        svg += "<line x1=\"\(px(0, (0, 1)))\" y1=\"\(py(0, (0, 1)))\" x2=\"\(px(1, (0, 1)))\" y2=\"\(py(1, (0, 1)))\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n"
        let path = points.map { "\(px($0.0, (0, 1))),\(py($0.1, (0, 1)))" }.joined(separator: " ")
        svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n"
        for (b, point) in zip((0..<10).filter { counts[$0] > 0 }, points) {
            svg += "<circle cx=\"\(px(point.0, (0, 1)))\" cy=\"\(py(point.1, (0, 1)))\" r=\"4\" fill=\"#1f77b4\"><title>\(counts[b]) rows</title></circle>\n"
        }
        return svg + "</svg>\n"
    }

    /// Residuals (actual − predicted) against predictions, for at most 2,000 evenly spaced rows.
    public static func residuals(actual: [Double], predicted: [Double], title: String) -> String {
        let n = actual.count
        let stride = max(1, n / 2000)
        let rows = Swift.stride(from: 0, to: n, by: stride).map { $0 }
        let xs = rows.map { predicted[$0] }
        let ys = rows.map { actual[$0] - predicted[$0] }
        func range(_ v: [Double]) -> (Double, Double) {
            guard let lo = v.min(), let hi = v.max() else { return (0, 1) }
            return lo == hi ? (lo - 1, hi + 1) : (lo, hi)
        }
        let xr = range(xs)
        var yr = range(ys)
        let bound = max(abs(yr.0), abs(yr.1))
        yr = (-bound, bound)
        var svg = frame(title: title, xLabel: "predicted", yLabel: "residual (actual − predicted)", x: xr, y: yr)
        svg += "<line x1=\"\(px(xr.0, xr))\" y1=\"\(py(0, yr))\" x2=\"\(px(xr.1, xr))\" y2=\"\(py(0, yr))\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n"
        for (x, y) in zip(xs, ys) {
            svg += "<circle cx=\"\(px(x, xr))\" cy=\"\(py(y, yr))\" r=\"2\" fill=\"#1f77b4\" fill-opacity=\"0.5\"/>\n"
        }
        return svg + "</svg>\n"
    }

    static func px(_ x: Double, _ r: (Double, Double)) -> String {
        let w = size.width - margin.left - margin.right
        return format(margin.left + (x - r.0) / (r.1 - r.0) * w)
    }

    static func py(_ y: Double, _ r: (Double, Double)) -> String {
        let h = size.height - margin.top - margin.bottom
        return format(margin.top + (1 - (y - r.0) / (r.1 - r.0)) * h)
    }

    static func format(_ v: Double) -> String { String(format: "%.1f", v.isFinite ? v : 0) }

    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    /// The document's head, axes, ticks and labels.
    static func frame(title: String, xLabel: String, yLabel: String, x: (Double, Double), y: (Double, Double)) -> String {
        let w = size.width
        let h = size.height
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(format(w / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
        let left = margin.left
        let bottom = h - margin.bottom
        s += "<line x1=\"\(format(left))\" y1=\"\(format(bottom))\" x2=\"\(format(w - margin.right))\" y2=\"\(format(bottom))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(format(left))\" y1=\"\(format(margin.top))\" x2=\"\(format(left))\" y2=\"\(format(bottom))\" stroke=\"black\"/>\n"
        for t in 0...4 {
            let xv = x.0 + (x.1 - x.0) * Double(t) / 4
            let yv = y.0 + (y.1 - y.0) * Double(t) / 4
            s += "<text x=\"\(px(xv, x))\" y=\"\(format(bottom + 15))\" text-anchor=\"middle\">\(String(format: "%.3g", xv))</text>\n"
            s += "<text x=\"\(format(left - 5))\" y=\"\(py(yv, y))\" text-anchor=\"end\" dominant-baseline=\"middle\">\(String(format: "%.3g", yv))</text>\n"
        }
        s += "<text x=\"\(format(left + (w - left - margin.right) / 2))\" y=\"\(format(h - 12))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(14 \(format(margin.top + (bottom - margin.top) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        return s
    }
}
