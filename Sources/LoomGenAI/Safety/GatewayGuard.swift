import AsyncHTTPClient
import Foundation
import LoomCore
import Metrics
import NIOCore
import NIOHTTP1
import Synchronization

/// Safety policies on the gateway's calls (docs/safety.md): inputs are checked before anything
/// else (a block is a 400, redactions change what the provider sees), answers before the client
/// sees them (a block withholds the answer with `finish_reason: content_filter`), and streams
/// as they stream (`StreamGuard`).
extension Gateway {
    /// Checks a chat request's messages (or an embeddings request's input) in place; `changed`
    /// says whether a redaction changed them.
    func guardInput(
        _ body: inout [String: JSONValue], route: LiveRoute, trace: TraceBuilder, changed: inout Bool
    ) async throws(GatewayError) -> [PolicyDecision] {
        let started = ContinuousClock.now
        var decisions: [PolicyDecision] = []
        defer {
            trace.span("policy.input", since: started, decisions.isEmpty ? [:] : ["decisions": .array(decisions.map { .string($0.summary) })])
        }
        do {
            return try await checkInput(&body, route: route, decisions: &decisions, changed: &changed)
        } catch {
            metrics.decisions(decisions, route: route.spec.name)
            throw error
        }
    }

    func checkInput(
        _ body: inout [String: JSONValue], route: LiveRoute, decisions: inout [PolicyDecision], changed: inout Bool
    ) async throws(GatewayError) -> [PolicyDecision] {
        let policies = route.policies
        var texts: [String] = []
        texts.reserveCapacity(8)
        // Characters are counted (a walk over the whole input) only for a length rule.
        let judgesLength = policies.judgesLength(.input)

        var found: [PolicyDecision] = []
        defer { decisions += found }
        var lengthChecked = false
        /// The text checked: nil when the policies left it as it was.
        func check(_ text: String, total: Int) throws(GatewayError) -> String? {
            // The length rule judges the whole input once.
            let outcome = policies.check(text, stage: .input, total: total, length: !lengthChecked)
            lengthChecked = true
            found += outcome.decisions
            if let blocked = outcome.blocked { throw Self.blockedError(blocked, route: route, decisions: found) }
            texts.append(outcome.text)
            return outcome.text == text ? nil : outcome.text
        }

        if route.spec.task == .embeddings {
            switch body["input"] {
            case .string(let s)?:
                if let checked = try check(s, total: judgesLength ? s.count : 0) {
                    body["input"] = .string(checked)
                    changed = true
                }
            case .array(var items)?:
                let total = judgesLength ? items.reduce(0) { $0 + ($1.stringValue?.count ?? 0) } : 0
                var redacted = false
                for i in items.indices {
                    if case .string(let s) = items[i], let checked = try check(s, total: total) {
                        items[i] = .string(checked)
                        redacted = true
                    }
                }
                if redacted {
                    body["input"] = .array(items)
                    changed = true
                }
            default: break
            }
        } else if var messages = body["messages"]?.arrayValue {
            let total = !judgesLength ? 0 : messages.reduce(0) { sum, m in
                switch m["content"] {
                case .string(let s)?: return sum + s.count
                case .array(let parts)?: return sum + parts.reduce(0) { $0 + ($1["text"]?.stringValue?.count ?? 0) }
                default: return sum
                }
            }
            // A message is copied only when a redaction changes it.
            var redacted = false
            for i in messages.indices {
                guard case .object(let o) = messages[i] else { continue }
                switch o["content"] {
                case .string(let s)?:
                    if let checked = try check(s, total: total) {
                        var m = o
                        m["content"] = .string(checked)
                        messages[i] = .object(m)
                        redacted = true
                    }
                case .array(var parts)?:
                    var partRedacted = false
                    for j in parts.indices {
                        if case .object(var p) = parts[j], case .string(let s)? = p["text"], let checked = try check(s, total: total) {
                            p["text"] = .string(checked)
                            parts[j] = .object(p)
                            partRedacted = true
                        }
                    }
                    if partRedacted {
                        var m = o
                        m["content"] = .array(parts)
                        messages[i] = .object(m)
                        redacted = true
                    }
                default: break
                }
            }
            if redacted {
                body["messages"] = .array(messages)
                changed = true
            }
        }
        for m in policies.moderation(.input) {
            if let decision = await moderate(texts.joined(separator: "\n"), m, stage: .input, route: route) {
                found.append(decision)
                if decision.action == .block { throw Self.blockedError(decision, route: route, decisions: found) }
            }
        }
        metrics.decisions(found, route: route.spec.name)
        return found
    }

    static func blockedError(_ blocked: PolicyDecision, route: LiveRoute, decisions: [PolicyDecision]) -> GatewayError {
        GatewayError(
            status: 400, type: "invalid_request_error", code: "content_policy_violation",
            message: "The request was blocked by the content policy \(blocked.policy) (\(blocked.rule): \(blocked.detail)).",
            headers: [("x-loom-policy", decisions.map(\.summary).joined(separator: "; "))])
    }

    /// Checks a whole answer's message contents; the answer as the client gets it.
    func guardOutput(_ bytes: [UInt8], route: LiveRoute, trace: TraceBuilder? = nil) async -> ([UInt8], [PolicyDecision]) {
        let started = ContinuousClock.now
        let (out, decisions) = await checkOutput(bytes, route: route)
        if route.policies.applies(to: .output) {
            trace?.span("policy.output", since: started, decisions.isEmpty ? [:] : ["decisions": .array(decisions.map { .string($0.summary) })])
        }
        return (out, decisions)
    }

    func checkOutput(_ bytes: [UInt8], route: LiveRoute) async -> ([UInt8], [PolicyDecision]) {
        guard route.spec.task == .chat, route.policies.applies(to: .output), var answer = (try? JSONValue.parse(bytes))?.objectValue,
            let choices = answer["choices"]?.arrayValue
        else { return (bytes, []) }
        var decisions: [PolicyDecision] = []
        var changed = false
        var out: [JSONValue] = []
        for choice in choices {
            guard case .object(var c) = choice, case .object(var message)? = c["message"], case .string(let text)? = message["content"] else {
                out.append(choice)
                continue
            }
            var outcome = route.policies.check(text, stage: .output)
            for m in route.policies.moderation(.output) where outcome.blocked == nil {
                if let d = await moderate(outcome.text, m, stage: .output, route: route) {
                    outcome.decisions.append(d)
                    if d.action == .block { outcome.blocked = d }
                }
            }
            decisions += outcome.decisions
            if outcome.blocked != nil {
                message["content"] = .string("")
                c["finish_reason"] = .string("content_filter")
                changed = true
            } else if outcome.text != text {
                message["content"] = .string(outcome.text)
                changed = true
            }
            c["message"] = .object(message)
            out.append(.object(c))
        }
        metrics.decisions(decisions, route: route.spec.name)
        guard changed else { return (bytes, decisions) }
        answer["choices"] = .array(out)
        return (JSONValue.object(answer).jsonBytes, decisions)
    }

    /// A provider's moderation call (`POST /moderations`): a decision when it flags the text.
    /// A moderation that cannot be reached blocks when its rule blocks (fail closed).
    func moderate(
        _ text: String, _ m: (policy: String, rule: PolicySpec.Rule, provider: String, model: String), stage: PolicySpec.Stage, route: LiveRoute
    ) async -> PolicyDecision? {
        guard !text.isEmpty else { return nil }
        func decision(_ detail: String) -> PolicyDecision {
            PolicyDecision(policy: m.policy, rule: "moderation", action: m.rule.action, stage: stage, detail: detail)
        }
        guard let provider = table.withLock({ $0.providers[Self.id(route.workspace, m.provider)] }) else {
            return decision("provider \(m.provider) is not defined")
        }
        let spec = provider.spec
        let url = spec.kind == .azureOpenAI
            ? "\(spec.baseURL)/openai/moderations?api-version=\(spec.apiVersion ?? ProviderSpec.defaultAzureAPIVersion)"
            : spec.baseURL + "/moderations"
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (n, v) in ProviderAdapter.authHeaders(provider) { request.headers.add(name: n, value: v) }
        request.body = .bytes(ByteBuffer(bytes: JSONValue.object(["model": .string(m.model), "input": .string(text)]).jsonBytes))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
            guard response.status.code == 200, let value = try? JSONValue.parse(body), let result = value["results"]?.arrayValue?.first else {
                return decision("moderation by \(m.provider) failed (\(response.status.code))")
            }
            guard result["flagged"] == .bool(true) else { return nil }
            let categories = (result["categories"]?.objectValue ?? [:]).filter { $0.value == .bool(true) }.map(\.key).sorted()
            return decision("flagged by \(m.provider): \(categories.isEmpty ? "unspecified" : categories.joined(separator: ", "))")
        } catch {
            return decision("moderation by \(m.provider) could not be reached")
        }
    }
}

/// Output policies on a stream: content deltas are held back until no finding can still grow
/// into them (the policies' `holdBack`), then released checked and redacted; a block ends the
/// stream with `finish_reason: content_filter`.
struct StreamGuard {
    let policies: PolicySet
    let holdBack: Int
    var pending = ""
    /// Decisions so far (each kind once per stream).
    var decisions: [PolicyDecision] = []
    var blocked = false

    init(_ policies: PolicySet) {
        self.policies = policies
        holdBack = max(policies.holdBack, 1)
    }

    /// The text that can go out now, after `delta` arrived (`final`: the stream's content ended).
    mutating func release(_ delta: String, final: Bool) -> String {
        pending += delta
        let outcome = policies.check(pending, stage: .output)
        for d in outcome.decisions where !decisions.contains(where: { $0.policy == d.policy && $0.rule == d.rule && $0.action == d.action }) {
            decisions.append(d)
        }
        if outcome.blocked != nil {
            blocked = true
            pending = ""
            return ""
        }
        guard !final else {
            pending = ""
            return outcome.text
        }
        // Release all but the tail a finding could still grow into, and never cut through (or
        // right after) something found: the cut moves back to where that finding starts.
        let utf8 = pending.utf8
        var cut = utf8.count - holdBack
        guard cut > 0 else { return "" }
        for span in policies.spans(pending, stage: .output) where span.lowerBound < cut && span.upperBound >= cut {
            cut = min(cut, span.lowerBound)
        }
        var index = utf8.index(utf8.startIndex, offsetBy: max(cut, 0))
        while index > utf8.startIndex, index.samePosition(in: pending.unicodeScalars) == nil {
            index = utf8.index(before: index)
        }
        guard index > utf8.startIndex else { return "" }
        let head = policies.check(String(pending[..<index]), stage: .output)
        if head.blocked != nil {
            blocked = true
            pending = ""
            return ""
        }
        pending = String(pending[index...])
        return head.text
    }
}

extension GatewayMetrics {
    func decisions(_ list: [PolicyDecision], route: String) {
        guard !list.isEmpty else { return }
        for d in list {
            let key = [route, d.policy, d.rule, d.action.rawValue, d.stage.rawValue].joined(separator: "\u{1F}")
            let c = policyCounters.withLock { all in
                if let c = all[key] { return c }
                let c = Counter(label: "loom_gateway_policy_decisions_total", dimensions: [
                    ("route", route), ("policy", d.policy), ("rule", d.rule), ("action", d.action.rawValue), ("stage", d.stage.rawValue),
                ])
                all[key] = c
                return c
            }
            c.increment()
        }
    }
}
