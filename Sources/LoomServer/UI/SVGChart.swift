import Foundation
import LoomCore

/// Line charts drawn on the server as SVG: the browser receives a few hundred points per series,
/// never the raw history.
struct SVGChart {
    struct Series {
        let label: String
        let points: [(x: Double, y: Double)]
    }

    static let palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"]

    let title: String
    let series: [Series]
    var width = 560.0
    var height = 260.0

    func render() -> String {
        let all = series.flatMap(\.points).filter { $0.y.isFinite }
        let left = 56.0, right = 12.0, top = 26.0, bottom = 30.0
        let plotW = width - left - right, plotH = height - top - bottom
        var svg = "<svg class=\"chart\" role=\"img\" aria-label=\"\(HTML.escape(title))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<text x=\"\(left)\" y=\"16\" class=\"chart-title\">\(HTML.escape(title))</text>"
        guard let minX = all.map(\.x).min(), let maxX = all.map(\.x).max(),
              let minY = all.map(\.y).min(), let maxY = all.map(\.y).max()
        else {
            return svg + "<text x=\"\(left)\" y=\"\(top + 20)\" class=\"chart-empty\">no finite values</text></svg>"
        }
        let spanX = maxX > minX ? maxX - minX : 1
        let padY = maxY > minY ? (maxY - minY) * 0.05 : max(abs(maxY) * 0.05, 1)
        let lowY = minY - padY, highY = maxY + padY
        func px(_ x: Double) -> Double { left + (x - minX) / spanX * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - lowY) / (highY - lowY)) * plotH }
        // Axes and grid.
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" class=\"chart-frame\"/>"
        for i in 0...4 {
            let v = lowY + (highY - lowY) * Double(i) / 4
            let y = py(v)
            svg += "<line x1=\"\(left)\" x2=\"\(left + plotW)\" y1=\"\(fmt(y))\" y2=\"\(fmt(y))\" class=\"chart-grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(fmt(y + 4))\" class=\"chart-tick\" text-anchor=\"end\">\(HTML.escape(HTML.number(roundTick(v))))</text>"
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 8)\" class=\"chart-tick\">\(HTML.escape(HTML.number(minX)))</text>"
        svg += "<text x=\"\(left + plotW)\" y=\"\(height - 8)\" class=\"chart-tick\" text-anchor=\"end\">step \(HTML.escape(HTML.number(maxX)))</text>"
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let pts = s.points.filter { $0.y.isFinite }
            if pts.count == 1 {
                svg += "<circle cx=\"\(fmt(px(pts[0].x)))\" cy=\"\(fmt(py(pts[0].y)))\" r=\"3\" fill=\"\(color)\"/>"
            } else {
                let path = pts.map { "\(fmt(px($0.x))),\(fmt(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"><title>\(HTML.escape(s.label))</title></polyline>"
            }
        }
        if series.count > 1 {
            for (i, s) in series.enumerated() {
                let y = top + 12 + Double(i) * 14
                svg += "<rect x=\"\(left + plotW - 150)\" y=\"\(fmt(y - 8))\" width=\"10\" height=\"3\" fill=\"\(Self.palette[i % Self.palette.count])\"/>"
                svg += "<text x=\"\(left + plotW - 136)\" y=\"\(fmt(y - 4))\" class=\"chart-legend\">\(HTML.escape(String(s.label.prefix(22))))</text>"
            }
        }
        return svg + "</svg>"
    }

    func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    func roundTick(_ v: Double) -> Double {
        guard v != 0, v.isFinite else { return v }
        let magnitude = pow(10, floor(log10(abs(v))) - 2)
        return (v / magnitude).rounded() * magnitude
    }
}
