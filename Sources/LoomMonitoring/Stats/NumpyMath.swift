import Foundation

/// numpy's sorting order and summation, shared by the drift statistics so that their sums round
/// as numpy's do.
enum NumpyMath {
    /// Sorts ascending. Small inputs use the standard library sort; large ones an LSD radix sort
    /// (six 11-bit digits) on the order-preserving integer image of the float64 bit patterns,
    /// which is several times faster for 10^5–10^6 values. (-0.0 sorts just before +0.0; the
    /// callers compare with `==`, which treats them as one value, as numpy does.) NaN-free input.
    static func sortedAscending(_ values: [Double]) -> [Double] {
        var copy = values
        sortInPlace(&copy)
        return copy
    }

    /// `sortedAscending` in place, with one scratch buffer the size of the input.
    static func sortInPlace(_ values: inout [Double]) {
        let n = values.count
        if n < 4096 {
            values.sort()
            return
        }
        let signBit: UInt64 = 1 << 63
        let bits = 11, buckets = 1 << 11, passes = 6
        let mask = UInt64(buckets - 1)
        var scratch = [Double](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: passes * buckets)
        values.withUnsafeMutableBufferPointer { vb in
            scratch.withUnsafeMutableBufferPointer { sb in
                vb.withMemoryRebound(to: UInt64.self) { keys in
                    sb.withMemoryRebound(to: UInt64.self) { spare in
                        counts.withUnsafeMutableBufferPointer { c in
                            for i in 0..<n {
                                let raw = keys[i]
                                let key = raw & signBit != 0 ? ~raw : raw | signBit
                                keys[i] = key
                                for p in 0..<passes { c[p * buckets + Int((key >> UInt64(p * bits)) & mask)] += 1 }
                            }
                            var from = keys, to = spare
                            for pass in 0..<passes {
                                let base = pass * buckets
                                var skip = false
                                var running = 0
                                for bucket in 0..<buckets {
                                    let count = c[base + bucket]
                                    if count == n { skip = true }
                                    c[base + bucket] = running
                                    running += count
                                }
                                if skip { continue }
                                let shift = UInt64(pass * bits)
                                for i in 0..<n {
                                    let key = from[i]
                                    let bucket = base + Int((key >> shift) & mask)
                                    to[c[bucket]] = key
                                    c[bucket] += 1
                                }
                                swap(&from, &to)
                            }
                            if from.baseAddress != keys.baseAddress {
                                keys.baseAddress!.update(from: from.baseAddress!, count: n)
                            }
                            for i in 0..<n {
                                let key = keys[i]
                                keys[i] = key & signBit != 0 ? key & ~signBit : ~key
                            }
                        }
                    }
                }
            }
        }
    }

    /// `np.sum` of a contiguous float64 array: the identity 0.0 plus numpy's
    /// `DOUBLE_pairwise_sum` (`numpy/_core/src/umath/loops_utils.h.src`): below 8 elements a
    /// plain loop, up to 128 eight interleaved accumulators combined as
    /// `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))` plus the tail, and above that a split at
    /// `n/2` rounded down to a multiple of 8.
    static func sum(_ values: [Double]) -> Double {
        values.withUnsafeBufferPointer { buffer in
            0.0 + pairwiseSum(buffer, from: 0, count: buffer.count)
        }
    }

    /// numpy's `DOUBLE_pairwise_sum` over `count` elements starting at `from`.
    static func pairwiseSum(_ x: UnsafeBufferPointer<Double>, from lo: Int, count n: Int) -> Double {
        if n < 8 {
            var res = -0.0
            for i in 0..<n { res += x[lo + i] }
            return res
        } else if n <= 128 {
            var r0 = x[lo], r1 = x[lo + 1], r2 = x[lo + 2], r3 = x[lo + 3]
            var r4 = x[lo + 4], r5 = x[lo + 5], r6 = x[lo + 6], r7 = x[lo + 7]
            var i = 8
            let end = n - n % 8
            while i < end {
                r0 += x[lo + i]
                r1 += x[lo + i + 1]
                r2 += x[lo + i + 2]
                r3 += x[lo + i + 3]
                r4 += x[lo + i + 4]
                r5 += x[lo + i + 5]
                r6 += x[lo + i + 6]
                r7 += x[lo + i + 7]
                i += 8
            }
            var res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n {
                res += x[lo + i]
                i += 1
            }
            return res
        } else {
            var n2 = n / 2
            n2 -= n2 % 8
            return pairwiseSum(x, from: lo, count: n2) + pairwiseSum(x, from: lo + n2, count: n - n2)
        }
    }
}
