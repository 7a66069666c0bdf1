import Foundation

/// Gradient and hessian sums of the rows that fall in one bin.
struct HistogramBin {
    var g = 0.0
    var h = 0.0
    var n = 0
}

/// Grows one tree at a time over binned features (feature-major bytes), reusing its buffers
/// from tree to tree. Not shared between threads; parallel inside.
final class TreeGrower {
    static let width = 256

    struct Split {
        var gain: Double
        var feature: Int
        var bin: UInt8
        var missingLeft: Bool
    }

    struct Node {
        var start: Int
        var end: Int
        var depth: Int
        var g: Double
        var h: Double
        var histogram: UnsafeMutablePointer<HistogramBin>?
        var split: Split?
        var count: Int { end - start }
    }

    struct Grown {
        var tree: Tree
        var binned: BinnedTree
        /// Leaves (node numbers) and the positions of their rows in `index`.
        var leafRows: [(Int, Range<Int>)]
    }

    let bins: UnsafeMutablePointer<UInt8>
    let rows: Int
    let features: Int
    let binCounts: [Int]
    let thresholds: [[Double]]
    let parameters: GBDTParameters
    let index: UnsafeMutablePointer<Int32>
    let scratch: UnsafeMutablePointer<Int32>
    let orderedG: UnsafeMutablePointer<Double>
    let orderedH: UnsafeMutablePointer<Double>
    private var spare: [UnsafeMutablePointer<HistogramBin>] = []
    let minimumHessian = 1e-3

    init(bins: [UInt8], rows: Int, features: Int, thresholds: [[Double]], parameters: GBDTParameters) {
        let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bins.count, 1))
        bins.withUnsafeBufferPointer { copy.initialize(from: $0.baseAddress!, count: bins.count) }
        self.bins = copy
        self.rows = rows
        self.features = features
        self.thresholds = thresholds
        self.binCounts = thresholds.map { $0.count + 1 }
        self.parameters = parameters
        index = .allocate(capacity: rows)
        scratch = .allocate(capacity: rows)
        orderedG = .allocate(capacity: rows)
        orderedH = .allocate(capacity: rows)
    }

    deinit {
        bins.deallocate()
        index.deallocate()
        scratch.deallocate()
        orderedG.deallocate()
        orderedH.deallocate()
        for s in spare { s.deallocate() }
    }

    func forEachRow(in range: Range<Int>, _ body: (Int) -> Void) {
        for k in range { body(Int(index[k])) }
    }

    private func histogramBuffer() -> UnsafeMutablePointer<HistogramBin> {
        let size = features * Self.width
        let buffer = spare.popLast() ?? .allocate(capacity: size)
        buffer.initialize(repeating: HistogramBin(), count: size)
        return buffer
    }

    private func release(_ buffer: UnsafeMutablePointer<HistogramBin>?) {
        if let buffer { spare.append(buffer) }
    }

    /// Gathers the node's gradients in row order of `index`, then sums them per feature and bin.
    private func build(_ node: Node, gradients g: UnsafePointer<Double>, hessians h: UnsafePointer<Double>, output c: Int, outputs k: Int) -> UnsafeMutablePointer<HistogramBin> {
        let hist = histogramBuffer()
        let start = node.start
        let end = node.end
        for p in start..<end {
            let r = Int(index[p]) * k + c
            orderedG[p] = g[r]
            orderedH[p] = h[r]
        }
        let n = rows
        let index = self.index
        let bins = self.bins
        let og = orderedG
        let oh = orderedH
        let features = self.features
        // Features in tasks of consecutive columns; within a task, four columns per pass over
        // the rows, so that each row's index and gradients are read once for four histograms.
        let tasks = node.count >= 4096 ? min(features, 2 * Parallel.cores) : 1
        let work: (Int) -> Void = { task in
            var f = task * features / tasks
            let last = (task + 1) * features / tasks
            while f + 4 <= last {
                let c0 = bins + f * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n
                let h0 = hist + f * Self.width, h1 = h0 + Self.width, h2 = h1 + Self.width, h3 = h2 + Self.width
                for p in start..<end {
                    let r = Int(index[p])
                    let g = og[p]
                    let h = oh[p]
                    let b0 = Int(c0[r]), b1 = Int(c1[r]), b2 = Int(c2[r]), b3 = Int(c3[r])
                    h0[b0].g += g; h0[b0].h += h; h0[b0].n += 1
                    h1[b1].g += g; h1[b1].h += h; h1[b1].n += 1
                    h2[b2].g += g; h2[b2].h += h; h2[b2].n += 1
                    h3[b3].g += g; h3[b3].h += h; h3[b3].n += 1
                }
                f += 4
            }
            while f < last {
                let column = bins + f * n
                let out = hist + f * Self.width
                for p in start..<end {
                    let b = Int(column[Int(index[p])])
                    out[b].g += og[p]
                    out[b].h += oh[p]
                    out[b].n += 1
                }
                f += 1
            }
        }
        if tasks > 1 { Parallel.each(tasks, work) } else { work(0) }
        return hist
    }

    private func findSplit(_ node: Node) -> Split? {
        let p = parameters
        guard node.count >= 2 * p.minSamplesLeaf, node.h >= 2 * minimumHessian else { return nil }
        if let maxDepth = p.maxDepth, node.depth >= maxDepth { return nil }
        guard let hist = node.histogram else { return nil }
        let lambda = p.l2
        let parent = node.g * node.g / (node.h + lambda)
        var best: Split?
        let minLeaf = p.minSamplesLeaf
        for f in 0..<features {
            let column = hist + f * Self.width
            let missing = column[Int(Binner.missingBin)]
            let nb = binCounts[f]
            var gl = 0.0
            var hl = 0.0
            var nl = 0
            func consider(_ gl: Double, _ hl: Double, _ nl: Int, _ bin: Int, _ missingLeft: Bool) {
                let nr = node.count - nl
                guard nl >= minLeaf, nr >= minLeaf else { return }
                let hr = node.h - hl
                guard hl >= minimumHessian, hr >= minimumHessian else { return }
                let gr = node.g - gl
                let gain = gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parent
                if gain > 0, gain > (best?.gain ?? 0) {
                    best = Split(gain: gain, feature: f, bin: UInt8(bin), missingLeft: missing.n == 0 ? nl >= nr : missingLeft)
                }
            }
            for b in 0..<nb {
                gl += column[b].g
                hl += column[b].h
                nl += column[b].n
                if b < nb - 1 || missing.n > 0 { consider(gl, hl, nl, b, false) }
                if missing.n > 0, b < nb - 1 { consider(gl + missing.g, hl + missing.h, nl + missing.n, b, true) }
            }
        }
        return best
    }

    /// Splits the node's rows in `index`: left rows first, in their order, then right rows.
    private func partition(_ node: Node, _ split: Split) -> Int {
        let column = bins + split.feature * rows
        let bin = split.bin
        let missingLeft = split.missingLeft
        var l = node.start
        var r = 0
        for p in node.start..<node.end {
            let row = index[p]
            let b = column[Int(row)]
            let goLeft = b == Binner.missingBin ? missingLeft : b <= bin
            if goLeft {
                index[l] = row
                l += 1
            } else {
                scratch[r] = row
                r += 1
            }
        }
        (index + l).update(from: scratch, count: r)
        return l
    }

    /// Grows the tree of output `c` (of `k`) for the current gradients.
    func grow(gradients: [Double], hessians: [Double], output c: Int, outputs k: Int) -> Grown {
        let p = parameters
        for i in 0..<rows { index[i] = Int32(i) }
        return gradients.withUnsafeBufferPointer { gp in
            hessians.withUnsafeBufferPointer { hp in
                let g = gp.baseAddress!
                let h = hp.baseAddress!
                var sumG = 0.0
                var sumH = 0.0
                for i in 0..<rows {
                    sumG += g[i * k + c]
                    sumH += h[i * k + c]
                }
                var nodes = [Node(start: 0, end: rows, depth: 0, g: sumG, h: sumH)]
                var children: [(Int32, Int32)] = [(-1, -1)]
                nodes[0].histogram = build(nodes[0], gradients: g, hessians: h, output: c, outputs: k)
                nodes[0].split = findSplit(nodes[0])
                var leaves = 1
                while leaves < p.maxLeafNodes {
                    var pick = -1
                    for (i, node) in nodes.enumerated() where children[i].0 < 0 {
                        if let s = node.split, pick < 0 || s.gain > nodes[pick].split!.gain { pick = i }
                    }
                    if pick < 0 { break }
                    let parent = nodes[pick]
                    let split = parent.split!
                    let middle = partition(parent, split)
                    var left = Node(start: parent.start, end: middle, depth: parent.depth + 1, g: 0, h: 0)
                    var right = Node(start: middle, end: parent.end, depth: parent.depth + 1, g: 0, h: 0)
                    // The smaller child's histogram is built; the larger's is the parent's minus it.
                    let smallIsLeft = left.count <= right.count
                    let small = build(smallIsLeft ? left : right, gradients: g, hessians: h, output: c, outputs: k)
                    let large = parent.histogram!
                    for b in 0..<(features * Self.width) {
                        large[b].g -= small[b].g
                        large[b].h -= small[b].h
                        large[b].n -= small[b].n
                    }
                    if smallIsLeft { left.histogram = small; right.histogram = large } else { left.histogram = large; right.histogram = small }
                    for child in [0, 1] {
                        var node = child == 0 ? left : right
                        // Sums from feature 0's bins (every row is in exactly one bin of it).
                        var sg = 0.0
                        var sh = 0.0
                        for b in 0..<Self.width {
                            sg += node.histogram![b].g
                            sh += node.histogram![b].h
                        }
                        node.g = sg
                        node.h = sh
                        node.split = findSplit(node)
                        if child == 0 { left = node } else { right = node }
                    }
                    nodes[pick].histogram = nil
                    children[pick] = (Int32(nodes.count), Int32(nodes.count + 1))
                    nodes.append(left)
                    nodes.append(right)
                    children.append((-1, -1))
                    children.append((-1, -1))
                    leaves += 1
                }
                for node in nodes { release(node.histogram) }
                var tree = Tree()
                var binned = BinnedTree()
                var leafRows: [(Int, Range<Int>)] = []
                for (i, node) in nodes.enumerated() {
                    let (l, r) = children[i]
                    if l < 0 {
                        let value = -p.learningRate * node.g / (node.h + p.l2)
                        tree.feature.append(-1); tree.threshold.append(0); tree.missingLeft.append(false)
                        tree.left.append(-1); tree.right.append(-1); tree.value.append(value)
                        binned.feature.append(-1); binned.bin.append(0); binned.missingLeft.append(false)
                        binned.left.append(-1); binned.right.append(-1); binned.value.append(value)
                        leafRows.append((i, node.start..<node.end))
                    } else {
                        let s = node.split!
                        let t = thresholds[s.feature]
                        let threshold = Int(s.bin) < t.count ? t[Int(s.bin)] : Double.infinity
                        tree.feature.append(Int32(s.feature)); tree.threshold.append(threshold); tree.missingLeft.append(s.missingLeft)
                        tree.left.append(l); tree.right.append(r); tree.value.append(0)
                        binned.feature.append(Int32(s.feature)); binned.bin.append(s.bin); binned.missingLeft.append(s.missingLeft)
                        binned.left.append(l); binned.right.append(r); binned.value.append(0)
                    }
                }
                return Grown(tree: tree, binned: binned, leafRows: leafRows)
            }
        }
    }
}
