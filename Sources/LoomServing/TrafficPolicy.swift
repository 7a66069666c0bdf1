import LoomCore

/// The rules of an endpoint's traffic map (Azure ML's, docs/deployment.md): live weights are
/// integers from 0 to 100 that sum to 100, or all 0 (disabled); at most one deployment gets
/// mirrored traffic, at most 50%, and never one that gets live traffic.
public enum TrafficPolicy {
    public static let maxMirrorPercent = 50

    /// Checks a traffic map and a mirror map against the endpoint's deployments; returns them
    /// without zero entries in the mirror. Every mistake is an `invalidParameter` naming it.
    public static func check(traffic: [String: Int], mirror: [String: Int], deployments: Set<String>, endpoint: String) throws(LoomError) -> (
        traffic: [String: Int], mirror: [String: Int]
    ) {
        for name in (Array(traffic.keys) + Array(mirror.keys)).sorted() where !deployments.contains(name) {
            throw LoomError.invalidParameter("Endpoint \(endpoint) has no deployment named \(name)")
        }
        for (name, weight) in traffic.sorted(by: { $0.key < $1.key }) where !(0...100).contains(weight) {
            throw LoomError.invalidParameter("Traffic for \(name) is \(weight): each weight is an integer from 0 to 100")
        }
        let total = traffic.values.reduce(0, +)
        guard total == 100 || total == 0 else {
            throw LoomError.invalidParameter("Traffic weights sum to \(total): they must sum to 100 (or to 0, to disable the endpoint)")
        }
        let mirrored = mirror.filter { $0.value != 0 }
        guard mirrored.count <= 1 else {
            throw LoomError.invalidParameter("Only one deployment may receive mirrored traffic; given \(mirrored.keys.sorted().joined(separator: ", "))")
        }
        if let (name, percent) = mirrored.first {
            guard (0...maxMirrorPercent).contains(percent) else {
                throw LoomError.invalidParameter("Mirrored traffic for \(name) is \(percent)%: it must be from 0 to \(maxMirrorPercent)")
            }
            if let live = traffic[name], live > 0 {
                throw LoomError.invalidParameter("Deployment \(name) gets \(live)% of live traffic: a deployment gets live or mirrored traffic, not both")
            }
        }
        return (traffic, mirrored)
    }

    /// `blue 90%, green 10%` (`no traffic` when empty).
    public static func describe(_ map: [String: Int]) -> String {
        let live = map.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        return live.isEmpty ? "no traffic" : live.map { "\($0.key) \($0.value)%" }.joined(separator: ", ")
    }

    /// A stable 0…99 bucket for a sticky key: the same on every replica and across restarts.
    public static func bucket(_ key: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int(hash % 100)
    }
}
