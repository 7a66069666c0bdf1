import Foundation

/// Counts of distinct byte strings, keyed by a 64-bit fingerprint (FNV-1a then MurmurHash3's
/// finalizer) in an open-addressing table that keeps each distinct value's bytes once, for
/// display. Holds at most `limit` distinct values; after that it counts only those it holds
/// (`overflowed`). Two distinct values with one fingerprint would count as one: with 64 bits and
/// at most `limit` values, about one chance in 10^11.
struct CountTable {
    let limit: Int
    private var fingerprints: [UInt64]
    private var slots: [Int32]
    private var counts: [Int64] = []
    private var arena: [UInt8] = []
    private var ends: [Int] = []
    private(set) var overflowed = false

    init(limit: Int) {
        self.limit = limit
        fingerprints = Array(repeating: 0, count: 64)
        slots = Array(repeating: -1, count: 64)
    }

    var count: Int { counts.count }

    /// Eight bytes at a time (multiply and rotate), the length mixed in, then MurmurHash3's
    /// finalizer. Fixed: not seeded per process, so profiles repeat.
    static func fingerprint(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(b.count)
        var i = 0
        let raw = UnsafeRawBufferPointer(b)
        while i + 8 <= b.count {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = mix(h, word)
            i += 8
        }
        if i < b.count {
            var tail: UInt64 = 0
            if b.count >= 8 {
                // The last eight bytes, overlapping the words already mixed in (the length is
                // in the seed, so no two texts of different lengths collide this way).
                tail = raw.loadUnaligned(fromByteOffset: b.count - 8, as: UInt64.self)
            } else {
                var shift: UInt64 = 0
                while i < b.count {
                    tail |= UInt64(b[i]) << shift
                    shift += 8
                    i += 1
                }
            }
            h = mix(h, tail)
        }
        return finalize(h)
    }

    @inline(__always) private static func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
        ((h ^ word) &* 0x87C3_7B91_1142_53D5).rotatedLeft(31) &* 0x4CF5_AD43_2745_937F
    }

    /// MurmurHash3's finalizer.
    @inline(__always) private static func finalize(_ h: UInt64) -> UInt64 {
        var h = h
        h ^= h >> 33; h = h &* 0xFF51_AFD7_ED55_8CCD; h ^= h >> 33; h = h &* 0xC4CE_B9FE_1A85_EC53; h ^= h >> 33
        return h
    }

    /// `fingerprint(_:)`, for bytes followed by at least seven readable ones (a `ByteBlock`'s
    /// field): a value shorter than a word is loaded as one word and masked, not byte by byte.
    @inline(__always)
    static func fingerprint(padded b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let n = b.count
        guard n < 8, let p = b.baseAddress else { return fingerprint(b) }
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
        if n > 0 {
            let tail = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian & ((1 << (8 * UInt64(n))) &- 1)
            h = mix(h, tail)
        }
        return finalize(h)
    }

    mutating func add(_ b: UnsafeBufferPointer<UInt8>, fingerprint h: UInt64) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s < 0 { break }
            if fingerprints[i] == h {
                counts[Int(s)] += 1
                return
            }
            i = (i + 1) & mask
        }
        guard counts.count < limit else {
            overflowed = true
            return
        }
        slots[i] = Int32(counts.count)
        fingerprints[i] = h
        counts.append(1)
        arena.append(contentsOf: b)
        ends.append(arena.count)
        if counts.count * 2 > slots.count { grow() }
    }

    private mutating func grow() {
        let size = slots.count * 2
        var newSlots = [Int32](repeating: -1, count: size)
        var newFingerprints = [UInt64](repeating: 0, count: size)
        for (i, s) in slots.enumerated() where s >= 0 {
            var j = Int(truncatingIfNeeded: fingerprints[i]) & (size - 1)
            while newSlots[j] >= 0 { j = (j + 1) & (size - 1) }
            newSlots[j] = s
            newFingerprints[j] = fingerprints[i]
        }
        slots = newSlots
        fingerprints = newFingerprints
    }

    /// The `n` most frequent values (ties in byte order).
    func top(_ n: Int) -> [(value: [UInt8], count: Int64)] {
        let all = counts.indices.map { i in (value: Array(arena[(i == 0 ? 0 : ends[i - 1])..<ends[i]]), count: counts[i]) }
        return Array(all.sorted { $0.count != $1.count ? $0.count > $1.count : $0.value.lexicographicallyPrecedes($1.value) }.prefix(n))
    }
}

/// A set of 64-bit fingerprints by open addressing (linear probing, at most three quarters
/// full): 8 to 16 bytes per value, no hashing beyond the fingerprint's own bits. Large tables ask
/// for huge pages (each probe of a table of millions of values is a cache miss; it need not be a
/// TLB miss too). A reference type: one owner fills it.
final class FingerprintSet {
    private var slots: UnsafeMutablePointer<UInt64>
    private var size: Int
    /// Zero marks an empty slot; the fingerprint 0 itself is kept aside.
    private var hasZero = false
    private(set) var count = 0

    init() {
        size = 1024
        slots = Self.allocate(size)
    }

    deinit { free(slots) }

    private static func allocate(_ size: Int) -> UnsafeMutablePointer<UInt64> {
        let bytes = size * MemoryLayout<UInt64>.stride
        let huge = 2 << 20
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, bytes >= huge ? huge : 64, bytes) == 0, let raw else { fatalError("out of memory") }
        #if os(Linux)
        if bytes >= huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
        #endif
        memset(raw, 0, bytes)
        return raw.bindMemory(to: UInt64.self, capacity: size)
    }

    /// Adds `h`; false when it was there already.
    @inline(__always)
    func insert(_ h: UInt64) -> Bool {
        if h == 0 {
            defer { hasZero = true }
            if !hasZero { count += 1 }
            return !hasZero
        }
        let mask = size - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = slots[i]
            if k == h { return false }
            if k == 0 { break }
            i = (i + 1) & mask
        }
        slots[i] = h
        count += 1
        if count * 4 > size * 3 { grow() }
        return true
    }

    /// Reads the slot `h` would be looked up in, so that the memory is on its way while other
    /// work goes on (a prefetch); the result means nothing.
    @inline(__always)
    func touch(_ h: UInt64) -> UInt64 {
        slots[Int(truncatingIfNeeded: h) & (size - 1)]
    }

    func contains(_ h: UInt64) -> Bool {
        if h == 0 { return hasZero }
        let mask = size - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = slots[i]
            if k == h { return true }
            if k == 0 { return false }
            i = (i + 1) & mask
        }
    }

    private func grow() {
        let grown = size * 2
        let next = Self.allocate(grown)
        for i in 0..<size where slots[i] != 0 {
            let k = slots[i]
            var j = Int(truncatingIfNeeded: k) & (grown - 1)
            while next[j] != 0 { j = (j + 1) & (grown - 1) }
            next[j] = k
        }
        free(slots)
        slots = next
        size = grown
    }
}

/// A set of byte strings, looked up by fingerprint (binary search over the sorted fingerprints)
/// and then compared byte for byte, so that a fingerprint collision never lets a value through.
struct ByteStringSet {
    private let fingerprints: [UInt64]
    private let values: [[UInt8]]

    init(_ strings: [String]) {
        let entries = strings.map { s in
            let bytes = Array(s.utf8)
            return (bytes.withUnsafeBufferPointer { CountTable.fingerprint($0) }, bytes)
        }.sorted { $0.0 < $1.0 }
        fingerprints = entries.map(\.0)
        values = entries.map(\.1)
    }

    func contains(_ b: UnsafeBufferPointer<UInt8>, fingerprint h: UInt64) -> Bool {
        var lo = 0
        var hi = fingerprints.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if fingerprints[mid] < h { lo = mid + 1 } else { hi = mid }
        }
        while lo < fingerprints.count, fingerprints[lo] == h {
            let same = values[lo].withUnsafeBufferPointer { v in
                v.count == b.count && (b.count == 0 || memcmp(v.baseAddress!, b.baseAddress!, b.count) == 0)
            }
            if same { return true }
            lo += 1
        }
        return false
    }
}

extension UInt64 {
    @inline(__always) func rotatedLeft(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
