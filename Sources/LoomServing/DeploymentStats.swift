import Foundation
import Synchronization

/// A deployment's answers since the server started: counts and a latency histogram (log-spaced
/// buckets, 5% wide, from 1 µs to about 3 minutes). Rollout gates judge the difference of two
/// snapshots: the requests of one window.
public final class DeploymentStats: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var requests = 0
        /// Answers that were not 2xx.
        public var errors = 0
        public var totalNanos: Int64 = 0
        public var buckets = [Int](repeating: 0, count: DeploymentStats.bucketCount)

        /// The requests between `earlier` and this.
        public func since(_ earlier: Snapshot) -> Snapshot {
            var d = Snapshot()
            d.requests = requests - earlier.requests
            d.errors = errors - earlier.errors
            d.totalNanos = totalNanos - earlier.totalNanos
            for i in 0..<buckets.count { d.buckets[i] = buckets[i] - earlier.buckets[i] }
            return d
        }

        public var errorRate: Double? { requests > 0 ? Double(errors) / Double(requests) : nil }
        public var meanMillis: Double? { requests > 0 ? Double(totalNanos) / Double(requests) / 1e6 : nil }

        /// The latency below which a share `q` of requests answered, in milliseconds (the
        /// bucket's middle: within 2.5%).
        public func percentileMillis(_ q: Double) -> Double? {
            guard requests > 0 else { return nil }
            let rank = max(1, Int((q * Double(requests)).rounded(.up)))
            var seen = 0
            for (i, n) in buckets.enumerated() {
                seen += n
                if seen >= rank { return DeploymentStats.middleNanos(i) / 1e6 }
            }
            return DeploymentStats.middleNanos(buckets.count - 1) / 1e6
        }
    }

    static let growth = 1.05
    static let bucketCount = 400
    static let logGrowth = log(growth)

    let state = Mutex(Snapshot())

    public init() {}

    static func bucket(_ nanos: Int64) -> Int {
        let micros = max(1.0, Double(nanos) / 1000)
        return min(bucketCount - 1, Int(log(micros) / logGrowth))
    }

    static func middleNanos(_ i: Int) -> Double { 1000 * pow(growth, Double(i) + 0.5) }

    public func record(status: Int, nanoseconds: Int64) {
        let b = Self.bucket(nanoseconds)
        state.withLock { s in
            s.requests += 1
            if !(200..<300).contains(status) { s.errors += 1 }
            s.totalNanos += nanoseconds
            s.buckets[b] += 1
        }
    }

    public var snapshot: Snapshot { state.withLock { $0 } }
}
