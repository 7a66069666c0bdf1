import Foundation
import LoomCore
import LoomData

/// An endpoint's collected requests and answers as records (docs/deployment.md, "Request
/// collection"), for the signals that read each exchange whole: the generation signals, which
/// score a sample of an LLM app's answers.
public struct CollectedExchange: Sendable, Equatable {
    public var correlationID: String
    public var time: Millis
    public var deployment: String?
    public var request: JSONValue
    public var response: JSONValue

    public init(correlationID: String, time: Millis, deployment: String?, request: JSONValue, response: JSONValue) {
        self.correlationID = correlationID
        self.time = time
        self.deployment = deployment
        self.request = request
        self.response = response
    }
}

public enum CollectedRecords {
    /// The answered (2xx), not mirrored records in [from, to) of one deployment (or all), from
    /// the collection files under `folders`: those in the `share` sample only (the others are
    /// counted, not kept, so a month's window costs the memory of its sample), oldest first;
    /// and how many there were in all.
    public static func read(
        folders: [String], from: Millis, to: Millis, deployment: String?, share: Double = 1
    ) throws -> (sample: [CollectedExchange], total: Int) {
        var out: [CollectedExchange] = []
        var total = 0
        for folder in folders {
            for file in CollectedWindow.collectionFiles(under: folder) {
                var carry: [UInt8] = []
                func take(_ line: ArraySlice<UInt8>) {
                    guard !line.isEmpty, let value = try? JSONValue.parse(Array(line)), case .object(let r) = value,
                        case .number(let status, _)? = r["status"], (200..<300).contains(Int(status)),
                        case .string(let correlation)? = r["correlation_id"], case .number(let t, _)? = r["time_ms"],
                        let request = r["request"], let response = r["response"]
                    else { return }
                    let time = Millis(t)
                    guard time >= from, time < to, r["mirrored"] != .bool(true) else { return }
                    let d = r["deployment"]?.stringValue
                    if let deployment, d != deployment { return }
                    total += 1
                    guard inSample(correlation, share: share) else { return }
                    out.append(CollectedExchange(correlationID: correlation, time: time, deployment: d, request: request, response: response))
                }
                _ = try FileBytes.stream(file, digesting: false) { chunk in
                    carry.append(contentsOf: chunk)
                    var start = carry.startIndex
                    while let nl = carry[start...].firstIndex(of: 0x0A) {
                        take(carry[start..<nl])
                        start = nl + 1
                    }
                    carry.removeSubrange(carry.startIndex..<start)
                }
                take(carry[...])
            }
        }
        return (out.sorted { ($0.time, $0.correlationID) < ($1.time, $1.correlationID) }, total)
    }

    /// The records a generation signal scores: those whose correlation id hashes below `share`
    /// (the same ones on every pass over a window), at most `limit`, oldest first.
    public static func sample(_ records: [CollectedExchange], share: Double, limit: Int) -> [CollectedExchange] {
        Array(records.filter { inSample($0.correlationID, share: share) }.prefix(limit))
    }

    /// Whether an exchange falls in a sample of `share`, by a hash of its correlation id.
    static func inSample(_ correlationID: String, share: Double) -> Bool {
        share >= 1 || fnv1a(correlationID) <= UInt64(share * Double(UInt64.max))
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        // FNV's low bits mix poorly for short keys: a final avalanche (SplitMix64's).
        h ^= h >> 30
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 27
        h = h &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    /// The value at a dotted path (`outputs.answer`, `messages.-1.content`): object keys, and
    /// list positions (negative from the end).
    public static func value(at path: String, in root: JSONValue) -> JSONValue? {
        var current = root
        for part in path.split(separator: ".").map(String.init) {
            switch current {
            case .object(let o):
                guard let next = o[part] else { return nil }
                current = next
            case .array(let a):
                guard let i = Int(part), a.count > 0 else { return nil }
                let k = i < 0 ? a.count + i : i
                guard k >= 0, k < a.count else { return nil }
                current = a[k]
            default:
                return nil
            }
        }
        return current
    }
}
