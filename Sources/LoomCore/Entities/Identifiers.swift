import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Identifier formats that match MLflow's: 32 lowercase hex characters for runs, `m-` + 32 hex for logged models.
public enum Identifiers {
    /// A random 128-bit identifier as 32 lowercase hex digits.
    public static func newHexID() -> String {
        let (a, b) = RandomPool.shared.next128()
        return hex(a, b)
    }

    /// Two 64-bit words as 32 lowercase hex digits, the first word first.
    static func hex(_ a: UInt64, _ b: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { out in
            for i in 0..<16 {
                let shift = UInt64(60 - 4 * i)
                out[i] = hexDigit(UInt8(truncatingIfNeeded: (a >> shift) & 0xF))
                out[16 + i] = hexDigit(UInt8(truncatingIfNeeded: (b >> shift) & 0xF))
            }
            return 32
        }
    }

    /// A 128-bit identifier as 32 lowercase hex digits whose first 48 bits are the time in
    /// milliseconds since 1970 and the other 80 random (as UUIDv7 orders them): identifiers made
    /// later sort later, so a table keyed by them grows at its end instead of touching a random
    /// page of its key's index at every insert (the gateway writes thousands of traces a second).
    public static func newTimeOrderedHexID(millis: Int64) -> String {
        let (a, b) = RandomPool.shared.next128()
        return hex(UInt64(truncatingIfNeeded: millis) << 16 | (a & 0xFFFF), b)
    }

    @inline(__always)
    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    public static func newLoggedModelID() -> String { "m-" + newHexID() }

    /// Bytes as lowercase hex (digests).
    public static func hex<S: Sequence>(bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Run IDs are 32 hex characters (other formats are accepted if they are safe path segments).
    public static func isSafeID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 256 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    private static let adjectives = ["able", "agile", "amazing", "bold", "brave", "bright", "calm", "clean", "clever", "crisp", "eager", "fair", "fast", "gentle", "glad", "grand", "happy", "honest", "keen", "kind", "lively", "lucid", "merry", "neat", "nimble", "noble", "polite", "proud", "quick", "quiet", "rare", "sharp", "shy", "silent", "smart", "solid", "steady", "sunny", "swift", "tidy", "vast", "warm", "wise", "witty", "zesty"]
    private static let nouns = ["ant", "bass", "bat", "bear", "bee", "bird", "boar", "calf", "carp", "cat", "colt", "crab", "crane", "croc", "deer", "doe", "dove", "duck", "eel", "elk", "finch", "fly", "fox", "frog", "goat", "gull", "hare", "hawk", "hen", "horse", "jay", "koi", "lamb", "lark", "lynx", "mole", "moth", "mouse", "mule", "newt", "owl", "ox", "panda", "pig", "ram", "rat", "seal", "shrew", "sloth", "snail", "snake", "squid", "stag", "swan", "toad", "trout", "whale", "wolf", "worm", "wren", "yak", "zebra"]

    /// A readable run name such as `bold-owl-417`, as MLflow generates.
    public static func randomRunName() -> String {
        var g = SystemRandomNumberGenerator()
        let a = adjectives[Int(g.next() as UInt64 % UInt64(adjectives.count))]
        let n = nouns[Int(g.next() as UInt64 % UInt64(nouns.count))]
        return "\(a)-\(n)-\(Int(g.next() as UInt64 % 1000))"
    }
}

/// Reduces long metric series to what a chart or a bulk request needs.
public enum Downsampling {
    /// Keeps at most `maxResults` points of a step-sorted series, evenly spread over its steps and
    /// always keeping the first and last.
    public static func evenlyByStep(_ series: [Metric], maxResults: Int) -> [Metric] {
        guard maxResults > 0 else { return [] }
        guard series.count > maxResults else { return series }
        if maxResults == 1 { return [series[series.count - 1]] }
        var out: [Metric] = []
        out.reserveCapacity(maxResults)
        var lastIndex = -1
        for i in 0..<maxResults {
            let index = Int((Double(i) * Double(series.count - 1) / Double(maxResults - 1)).rounded())
            if index != lastIndex {
                out.append(series[index])
                lastIndex = index
            }
        }
        return out
    }

    /// Largest-Triangle-Three-Buckets: keeps the visual shape of a series in `threshold` points.
    public static func lttb(_ points: [(x: Double, y: Double)], threshold: Int) -> [(x: Double, y: Double)] {
        let data = points.filter { $0.y.isFinite }
        guard threshold >= 3, data.count > threshold else { return data }
        var sampled: [(x: Double, y: Double)] = [data[0]]
        let every = Double(data.count - 2) / Double(threshold - 2)
        var a = 0
        for i in 0..<(threshold - 2) {
            let avgStart = Int(Double(i + 1) * every) + 1
            let avgEnd = min(Int(Double(i + 2) * every) + 1, data.count)
            var avgX = 0.0, avgY = 0.0
            let avgCount = max(1, avgEnd - avgStart)
            for j in avgStart..<max(avgStart, avgEnd) {
                avgX += data[j].x
                avgY += data[j].y
            }
            avgX /= Double(avgCount)
            avgY /= Double(avgCount)
            let rangeStart = Int(Double(i) * every) + 1
            let rangeEnd = Int(Double(i + 1) * every) + 1
            var maxArea = -1.0
            var next = rangeStart
            for j in rangeStart..<max(rangeStart + 1, rangeEnd) where j < data.count {
                let area = abs((data[a].x - avgX) * (data[j].y - data[a].y) - (data[a].x - data[j].x) * (avgY - data[a].y))
                if area > maxArea {
                    maxArea = area
                    next = j
                }
            }
            sampled.append(data[next])
            a = next
        }
        sampled.append(data[data.count - 1])
        return sampled
    }
}

/// Random bytes from the kernel's generator, fetched 4 KiB at a time. Identifiers are made per
/// request (correlation ids, trace ids), and `SystemRandomNumberGenerator` asks the kernel for
/// every value: two `getrandom` system calls per identifier, about as many as the socket reads
/// and writes of a request forwarded by an endpoint. The bytes are the kernel's all the same,
/// as good for secrets as before; they are only fetched in bulk.
final class RandomPool: Sendable {
    static let shared = RandomPool()
    static let words = 512

    private struct State {
        var words: [UInt64] = []
        var next = 0
    }
    private let state = Mutex(State())

    /// 128 random bits.
    func next128() -> (UInt64, UInt64) {
        state.withLock { s in
            if s.next + 2 > s.words.count {
                s.words = Self.fetch(Self.words)
                s.next = 0
            }
            defer { s.next += 2 }
            return (s.words[s.next], s.words[s.next + 1])
        }
    }

    /// `count` random words from the kernel (`/dev/urandom`, one read); from
    /// `SystemRandomNumberGenerator` word by word if that fails.
    static func fetch(_ count: Int) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        let filled = words.withUnsafeMutableBytes { raw -> Bool in
            #if canImport(Glibc)
            let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var offset = 0
            while offset < raw.count {
                let n = read(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
            #else
            arc4random_buf(raw.baseAddress!, raw.count)
            return true
            #endif
        }
        if !filled {
            var g = SystemRandomNumberGenerator()
            for i in words.indices { words[i] = g.next() }
        }
        return words
    }
}
