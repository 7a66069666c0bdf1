import Foundation
import LoomCore
import Synchronization

/// Requests and tokens per minute per scope (a route, a key), counted in memory on each replica
/// with a sliding window: the previous minute's count, weighted by how much of it still
/// overlaps the last 60 seconds, plus the current minute's.
final class RateLimiter: Sendable {
    struct Window {
        var minute: Int64 = 0
        var requests: Int64 = 0
        var tokens: Int64 = 0
        var previousRequests: Int64 = 0
        var previousTokens: Int64 = 0

        mutating func roll(to minute: Int64) {
            guard minute != self.minute else { return }
            if minute == self.minute + 1 {
                previousRequests = requests
                previousTokens = tokens
            } else {
                previousRequests = 0
                previousTokens = 0
            }
            requests = 0
            tokens = 0
            self.minute = minute
        }

        func estimate(_ current: Int64, _ previous: Int64, fraction: Double) -> Double {
            Double(previous) * (1 - fraction) + Double(current)
        }
    }

    /// A scope to check: its id, its limits, and what it has spent today.
    struct Scope {
        var id: String
        var what: String
        var limits: RouteSpec.Limits
        var spentToday: Double
    }

    let windows = Mutex<[String: Window]>([:])

    /// Counts a request against every scope, or refuses it (counting nothing) with OpenAI's 429
    /// and its headers. On success, the `x-ratelimit-*` headers of the tightest scope.
    func admit(_ scopes: [Scope], now: Double) -> Result<[(String, String)], GatewayError> {
        let limited = scopes.filter { !$0.limits.isEmpty }
        guard !limited.isEmpty else { return .success([]) }
        let minute = Int64(now / 60)
        let fraction = (now - Double(minute) * 60) / 60
        return windows.withLock { windows -> Result<[(String, String)], GatewayError> in
            var headers: [(String, String)] = []
            var tokenHeaders: [(String, String)] = []
            var tightest = Double.infinity
            var tightestTokens = Double.infinity
            for scope in limited {
                var w = windows[scope.id] ?? Window(minute: minute)
                w.roll(to: minute)
                windows[scope.id] = w
                if let spend = scope.limits.spendPerDay, scope.spentToday >= spend {
                    let untilMidnight = 86400 - now.truncatingRemainder(dividingBy: 86400)
                    return .failure(GatewayError(
                        status: 429, type: "rate_limit_error", code: "budget_exceeded",
                        message: "\(scope.what) has spent its budget for today (\(Self.money(scope.spentToday)) of \(Self.money(spend))); it resets at 00:00 UTC",
                        headers: [("retry-after", String(Int(untilMidnight.rounded(.up))))]))
                }
                if let rpm = scope.limits.requestsPerMinute {
                    let used = w.estimate(w.requests, w.previousRequests, fraction: fraction)
                    if used + 1 > Double(rpm) {
                        let wait = Self.wait(current: w.requests, previous: w.previousRequests, limit: rpm, fraction: fraction)
                        return .failure(GatewayError(
                            status: 429, type: "rate_limit_error", code: "rate_limit_exceeded",
                            message: "Rate limit reached for \(scope.what): \(rpm) requests per minute. Try again in \(Self.seconds(wait)).",
                            headers: [("retry-after", String(Int(wait.rounded(.up)))), ("x-ratelimit-limit-requests", String(rpm)),
                                      ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", Self.seconds(wait))]))
                    }
                    let remaining = Double(rpm) - used - 1
                    if remaining < tightest {
                        tightest = remaining
                        headers = [("x-ratelimit-limit-requests", String(rpm)), ("x-ratelimit-remaining-requests", String(Int64(remaining))),
                                   ("x-ratelimit-reset-requests", Self.seconds((1 - fraction) * 60))]
                    }
                }
                if let tpm = scope.limits.tokensPerMinute {
                    let used = w.estimate(w.tokens, w.previousTokens, fraction: fraction)
                    if used >= Double(tpm) {
                        let wait = Self.wait(current: w.tokens, previous: w.previousTokens, limit: tpm, fraction: fraction, need: 0)
                        return .failure(GatewayError(
                            status: 429, type: "rate_limit_error", code: "rate_limit_exceeded",
                            message: "Rate limit reached for \(scope.what): \(tpm) tokens per minute (used \(Int64(used))). Try again in \(Self.seconds(wait)).",
                            headers: [("retry-after", String(Int(wait.rounded(.up)))), ("x-ratelimit-limit-tokens", String(tpm)),
                                      ("x-ratelimit-remaining-tokens", "0"), ("x-ratelimit-reset-tokens", Self.seconds(wait))]))
                    }
                    let remaining = Double(tpm) - used
                    if remaining < tightestTokens {
                        tightestTokens = remaining
                        tokenHeaders = [("x-ratelimit-limit-tokens", String(tpm)), ("x-ratelimit-remaining-tokens", String(Int64(remaining))),
                                        ("x-ratelimit-reset-tokens", Self.seconds((1 - fraction) * 60))]
                    }
                }
            }
            for scope in limited { windows[scope.id]?.requests += 1 }
            return .success(headers + tokenHeaders)
        }
    }

    /// Adds a call's tokens to its scopes' current minute.
    func addTokens(_ tokens: Int64, scopes: [String], now: Double) {
        guard tokens > 0, !scopes.isEmpty else { return }
        let minute = Int64(now / 60)
        windows.withLock { windows in
            for id in scopes where windows[id] != nil {
                windows[id]!.roll(to: minute)
                windows[id]!.tokens += tokens
            }
        }
    }

    /// Seconds until the sliding estimate leaves room for `need` more (for tokens, `need` 0:
    /// until the estimate falls under the limit).
    static func wait(current: Int64, previous: Int64, limit: Int64, fraction: Double, need: Int64 = 1) -> Double {
        let untilNextMinute = (1 - fraction) * 60
        // The current minute alone is at the limit: wait for it to become the previous one.
        if current + need > limit || (need == 0 && current >= limit) { return max(untilNextMinute, 0.001) }
        guard previous > 0 else { return 0.001 }
        // previous × (1 − f′) + current + need ≤ limit
        let f = 1 - Double(limit - current - need) / Double(previous)
        return min(max((f - fraction) * 60, 0.001), untilNextMinute)
    }

    static func seconds(_ s: Double) -> String {
        if s < 1 { return String(format: "%.3fs", s) }
        let whole = Int(s.rounded(.up))
        return whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }

    static func money(_ v: Double) -> String { String(format: "%.4f", v) }
}

/// The route's exact-match answer cache: answers by a digest of the route and the request,
/// each kept `ttl` seconds, the least recently used dropped beyond `maxEntries`.
final class ResponseCache: Sendable {
    struct Entry {
        var body: [UInt8]
        var usage: TokenUsage?
        /// Who answered it first.
        var target: RouteSpec.Target
        var expires: Double
        var used: UInt64
    }

    struct State {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    let state = Mutex(State())

    func get(_ key: String, now: Double) -> Entry? {
        state.withLock { s in
            guard var e = s.entries[key] else { return nil }
            guard e.expires > now else {
                s.entries[key] = nil
                return nil
            }
            s.clock += 1
            e.used = s.clock
            s.entries[key] = e
            return e
        }
    }

    func put(_ key: String, body: [UInt8], usage: TokenUsage?, target: RouteSpec.Target, ttl: Double, maxEntries: Int, now: Double) {
        state.withLock { s in
            s.clock += 1
            s.entries[key] = Entry(body: body, usage: usage, target: target, expires: now + ttl, used: s.clock)
            if s.entries.count > maxEntries {
                // Drop the expired, then the least recently used tenth.
                s.entries = s.entries.filter { $0.value.expires > now }
                if s.entries.count > maxEntries {
                    let drop = max(s.entries.count - maxEntries, maxEntries / 10)
                    for (k, _) in s.entries.sorted(by: { $0.value.used < $1.value.used }).prefix(drop) { s.entries[k] = nil }
                }
            }
        }
    }

    func removeAll() { state.withLock { $0.entries.removeAll() } }
}

/// Usage summed in memory and written to the store in batches (`flush`), with each scope's
/// spend today kept for the daily budgets.
final class UsageMeter: Sendable {
    /// A usage row's identity: hashed from its six names, with no key text built per call.
    struct Identity: Hashable {
        let workspace, day, key, route, provider, model: String

        init(_ u: GatewayUsage) {
            (workspace, day, key, route, provider, model) = (u.workspace, u.day, u.key, u.route, u.provider, u.model)
        }
    }

    struct State {
        var pending: [Identity: GatewayUsage] = [:]
        /// Spend per scope (a route or a key) on `day`.
        var spend: [String: (day: String, amount: Double)] = [:]
    }

    let state = Mutex(State())

    func record(_ usage: GatewayUsage, scopes: [String]) {
        state.withLock { s in
            s.pending[Identity(usage), default: GatewayUsage(
                workspace: usage.workspace, day: usage.day, key: usage.key, route: usage.route, provider: usage.provider, model: usage.model)].add(usage)
            guard usage.cost > 0 else { return }
            for scope in scopes {
                if let current = s.spend[scope], current.day == usage.day {
                    s.spend[scope] = (usage.day, current.amount + usage.cost)
                } else {
                    s.spend[scope] = (usage.day, usage.cost)
                }
            }
        }
    }

    func spent(_ scope: String, day: String) -> Double {
        state.withLock { s in s.spend[scope].flatMap { $0.day == day ? $0.amount : nil } ?? 0 }
    }

    /// Sets a scope's spend today from the store's sums (at start), unless it is known already.
    func seed(_ scope: String, day: String, amount: Double) {
        state.withLock { s in
            if let current = s.spend[scope], current.day == day { return }
            s.spend[scope] = (day, amount)
        }
    }

    func takePending() -> [GatewayUsage] {
        state.withLock { s in
            let rows = Array(s.pending.values)
            s.pending.removeAll(keepingCapacity: true)
            return rows
        }
    }

    /// Puts rows back after a failed write (summed with what came meanwhile).
    func restore(_ rows: [GatewayUsage]) {
        state.withLock { s in
            for row in rows { s.pending[Identity(row), default: GatewayUsage(
                workspace: row.workspace, day: row.day, key: row.key, route: row.route, provider: row.provider, model: row.model)].add(row) }
        }
    }
}

/// UTC days as `YYYY-MM-DD`.
public enum UTCDay {
    /// The last day written, by day number: a gateway call asks for today's on every call.
    static let last = Mutex<(day: Int64, text: String)>((Int64.min, ""))

    public static func string(millis: Int64) -> String {
        let number = Int64((Double(millis) / 86_400_000).rounded(.down))
        if let hit = last.withLock({ $0.day == number ? $0.text : nil }) { return hit }
        let text = format(millis: millis)
        last.withLock { $0 = (number, text) }
        return text
    }

    static func format(millis: Int64) -> String {
        // Howard Hinnant's civil-from-days.
        let days = Int64((Double(millis) / 86_400_000).rounded(.down))
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }
}
