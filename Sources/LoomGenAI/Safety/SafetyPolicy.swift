import Foundation
import LoomCore
import LoomSpec
import Yams

/// A content-safety policy as written in YAML (`kind: policy`, docs/safety.md): rules applied to
/// what goes to a provider (input) and what comes back (output), each deciding to block,
/// redact or flag. Routes attach policies by name (`policies: [NAME]`).
public struct PolicySpec: Sendable, Equatable {
    public enum Action: String, Sendable, Codable, CaseIterable {
        /// Refuse the request (input) or withhold the answer (output: `finish_reason: content_filter`).
        case block
        /// Replace what was found with a placeholder and go on.
        case redact
        /// Go on, and record the decision.
        case flag
    }

    public enum Stage: String, Sendable, Codable, CaseIterable {
        case input, output
    }

    public enum Check: Sendable, Equatable {
        case pii(Set<PIIKind>)
        case blocklist([String])
        case regex(pattern: String, replacement: String)
        case injection(threshold: Double)
        case maxLength(Int)
        /// The provider's moderation endpoint (OpenAI's `/moderations`).
        case moderation(provider: String, model: String)

        public var name: String {
            switch self {
            case .pii: "pii"
            case .blocklist: "blocklist"
            case .regex: "regex"
            case .injection: "injection"
            case .maxLength: "max_length"
            case .moderation: "moderation"
            }
        }
    }

    public struct Rule: Sendable, Equatable {
        public var check: Check
        public var action: Action
        public var stages: Set<Stage>
    }

    public var name: String
    public var description: String?
    public var rules: [Rule]

    public static func parse(yaml text: String, file: String = "policy.yaml") throws(LoomError) -> PolicySpec {
        let reader = PolicySpecReader()
        let spec = reader.read(text)
        let problems = SpecProblem.ordered(reader.problems)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }

    /// The providers whose moderation the policy calls.
    public var moderationProviders: [String] {
        rules.compactMap { if case .moderation(let p, _) = $0.check { return p } else { return nil } }
    }
}

final class PolicySpecReader: SpecNodeReader {
    func read(_ yaml: String) -> PolicySpec? {
        guard let (root, top) = document(yaml, what: "a mapping with kind: policy, name, rules") else { return nil }
        unknownKeys(top, ["kind", "name", "description", "rules"], "")
        func value(_ key: String) -> Node? { top.first { $0.key == key }?.value }
        if let kind = value("kind") {
            if text(kind, "kind") != "policy" { problem(kind, "kind", "must be policy") }
        } else {
            problem(line: root.mark?.line, "kind", "is required (kind: policy)")
        }
        var name: String?
        if let node = value("name"), let s = text(node, "name") {
            if Self.isName(s) { name = s } else { problem(node, "name", "must start with a letter and hold letters, digits, _ or - (at most 64)") }
        } else if value("name") == nil {
            problem(line: root.mark?.line, "name", "is required")
        }
        var rules: [PolicySpec.Rule] = []
        if let node = value("rules") {
            if let items = node.sequence, !items.isEmpty {
                for (i, item) in items.enumerated() {
                    if let r = rule(item, "rules[\(i)]") { rules.append(r) }
                }
            } else {
                problem(node, "rules", "must list at least one rule (pii, blocklist, regex, injection, max_length, moderation)")
            }
        } else {
            problem(line: root.mark?.line, "rules", "is required")
        }
        let description = value("description").flatMap { text($0, "description") }
        guard let name else { return nil }
        return PolicySpec(name: name, description: description, rules: rules)
    }

    static let types = ["pii", "blocklist", "regex", "injection", "max_length", "moderation"]

    func rule(_ node: Node, _ field: String) -> PolicySpec.Rule? {
        guard let p = pairs(node, field, what: "a mapping: {type, action, ...}") else { return nil }
        func value(_ key: String) -> Node? { p.first { $0.key == key }?.value }
        guard let typeNode = value("type"), let type = text(typeNode, "\(field).type"), Self.types.contains(type) else {
            problem(value("type") ?? node, "\(field).type", "must be one of \(Self.types.joined(separator: ", "))")
            return nil
        }
        let extra: [String] = switch type {
        case "pii": ["entities"]
        case "blocklist": ["terms"]
        case "regex": ["pattern", "replacement"]
        case "injection": ["threshold"]
        case "max_length": ["max_chars"]
        default: ["provider", "model"]
        }
        unknownKeys(p, ["type", "action", "apply_to"] + extra, field)
        var action = PolicySpec.Action.block
        if let a = value("action") {
            if let s = text(a, "\(field).action"), let parsed = PolicySpec.Action(rawValue: s) { action = parsed } else { problem(a, "\(field).action", "must be block, redact or flag") }
        }
        // Injection is about what users send; the rest applies both ways unless told.
        var stages: Set<PolicySpec.Stage> = type == "injection" ? [.input] : [.input, .output]
        if let node = value("apply_to") {
            let items = node.sequence ?? [node]
            var parsed: Set<PolicySpec.Stage> = []
            for item in items {
                guard let s = text(item, "\(field).apply_to") else { continue }
                if s == "both" {
                    parsed.formUnion([.input, .output])
                } else if let stage = PolicySpec.Stage(rawValue: s) {
                    parsed.insert(stage)
                } else {
                    problem(item, "\(field).apply_to", "must be input, output or both")
                }
            }
            if items.isEmpty { problem(node, "\(field).apply_to", "must name input, output or both") }
            if !parsed.isEmpty { stages = parsed }
        }
        let check: PolicySpec.Check
        switch type {
        case "pii":
            var kinds = Set(PIIKind.allCases)
            if let node = value("entities") {
                kinds = []
                for item in node.sequence ?? [node] {
                    if let s = text(item, "\(field).entities"), let k = PIIKind(rawValue: s) { kinds.insert(k) } else {
                        problem(item, "\(field).entities", "must be among \(PIIKind.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                }
            }
            check = .pii(kinds)
        case "blocklist":
            guard let node = value("terms"), let items = node.sequence, !items.isEmpty else {
                problem(value("terms") ?? node, "\(field).terms", "must list the words or phrases to find")
                return nil
            }
            let terms = items.compactMap { text($0, "\(field).terms") }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            if terms.isEmpty { problem(node, "\(field).terms", "must list at least one word or phrase that is not blank") }
            check = .blocklist(terms)
        case "regex":
            guard let node = value("pattern"), let pattern = text(node, "\(field).pattern"), !pattern.isEmpty else {
                problem(value("pattern") ?? node, "\(field).pattern", "is required: a regular expression (ICU syntax)")
                return nil
            }
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                problem(node, "\(field).pattern", "is not a valid regular expression")
                return nil
            }
            check = .regex(pattern: pattern, replacement: value("replacement").flatMap { text($0, "\(field).replacement") } ?? "[REDACTED]")
        case "injection":
            var threshold = 0.5
            if let node = value("threshold") {
                switch scalar(node) {
                case .float(let d)? where d > 0 && d <= 1: threshold = d
                case .int(1)?: threshold = 1
                default: problem(node, "\(field).threshold", "must be a number above 0, at most 1")
                }
            }
            if action == .redact { problem(value("action"), "\(field).action", "an injection cannot be redacted: block or flag") }
            check = .injection(threshold: threshold)
        case "max_length":
            guard let node = value("max_chars"), let n = int(node), n > 0 else {
                problem(value("max_chars") ?? node, "\(field).max_chars", "must be a whole number above 0")
                return nil
            }
            if action == .redact { problem(value("action"), "\(field).action", "a length cannot be redacted: block or flag") }
            check = .maxLength(n)
        default:
            guard let provider = value("provider").flatMap({ text($0, "\(field).provider") }) else {
                problem(value("provider") ?? node, "\(field).provider", "is required: the provider whose moderation endpoint is called")
                return nil
            }
            if action == .redact { problem(value("action"), "\(field).action", "moderation cannot redact: block or flag") }
            check = .moderation(provider: provider, model: value("model").flatMap { text($0, "\(field).model") } ?? "omni-moderation-latest")
        }
        return PolicySpec.Rule(check: check, action: action, stages: stages)
    }
}

/// One decision a policy made about one call.
public struct PolicyDecision: Sendable, Equatable {
    public var policy: String
    public var rule: String
    public var action: PolicySpec.Action
    public var stage: PolicySpec.Stage
    /// What was found: `email x2`, `score 0.90 (instruction_override)`, `4210 > 4000 characters`.
    public var detail: String

    public var summary: String { "\(policy)/\(rule)/\(action.rawValue)/\(stage.rawValue): \(detail)" }
}

/// The policies a route attaches, compiled once (blocklists, regular expressions) and applied
/// to text: what to send or show instead, what was decided, and whether to stop.
public struct PolicySet: Sendable {
    struct Compiled: Sendable {
        let policy: String
        let rule: PolicySpec.Rule
        let blocklist: Blocklist?
        let regex: NSRegularExpressionBox?
    }

    let rules: [Compiled]

    public init(_ policies: [PolicySpec]) {
        rules = policies.flatMap { p in
            p.rules.map { r in
                var blocklist: Blocklist?
                var regex: NSRegularExpressionBox?
                switch r.check {
                case .blocklist(let terms): blocklist = Blocklist(terms)
                case .regex(let pattern, _): regex = (try? NSRegularExpression(pattern: pattern)).map(NSRegularExpressionBox.init)
                default: break
                }
                return Compiled(policy: p.name, rule: r, blocklist: blocklist, regex: regex)
            }
        }
    }

    public var isEmpty: Bool { rules.isEmpty }
    public func applies(to stage: PolicySpec.Stage) -> Bool { rules.contains { $0.rule.stages.contains(stage) } }

    /// Whether a length rule judges `stage`.
    public func judgesLength(_ stage: PolicySpec.Stage) -> Bool {
        rules.contains { c in
            guard c.rule.stages.contains(stage), case .maxLength = c.rule.check else { return false }
            return true
        }
    }

    /// Moderation rules of a stage (called by the gateway, which owns the HTTP client).
    func moderation(_ stage: PolicySpec.Stage) -> [(policy: String, rule: PolicySpec.Rule, provider: String, model: String)] {
        rules.compactMap { c in
            guard c.rule.stages.contains(stage), case .moderation(let provider, let model) = c.rule.check else { return nil }
            return (c.policy, c.rule, provider, model)
        }
    }

    /// The outcome of checking some text.
    public struct Outcome: Sendable {
        public var text: String
        public var decisions: [PolicyDecision] = []
        /// The decision that blocks, if one does.
        public var blocked: PolicyDecision?
    }

    /// Checks one piece of text at `stage`: redactions are applied in rule order; the first
    /// blocking rule stops the check. `total` is the length the length rule judges (the whole
    /// input; by default the text's).
    public func check(_ text: String, stage: PolicySpec.Stage, total: Int? = nil, length: Bool = true) -> Outcome {
        var out = Outcome(text: text)
        for c in rules where c.rule.stages.contains(stage) {
            if !length, case .maxLength = c.rule.check { continue }
            let rule = c.rule
            var found: String?
            var replaced: String?
            switch rule.check {
            case .pii(let kinds):
                let findings = PIIScanner.scan(out.text, kinds: kinds)
                guard !findings.isEmpty else { continue }
                found = Self.counts(findings.map(\.kind.rawValue))
                if rule.action == .redact { replaced = PIIScanner.redact(out.text, findings) }
            case .blocklist:
                guard let list = c.blocklist else { continue }
                let matches = list.matches(in: out.text)
                guard !matches.isEmpty else { continue }
                found = "\(matches.count) blocked term\(matches.count == 1 ? "" : "s")"
                if rule.action == .redact { replaced = Self.replace(out.text, matches, with: "[BLOCKED]") }
            case .regex(_, let replacement):
                guard let regex = c.regex?.regex else { continue }
                let ns = out.text as NSString
                let matches = regex.matches(in: out.text, range: NSRange(location: 0, length: ns.length))
                guard !matches.isEmpty else { continue }
                found = "\(matches.count) match\(matches.count == 1 ? "" : "es") of the rule's pattern"
                if rule.action == .redact {
                    let m = NSMutableString(string: out.text)
                    for match in matches.reversed() { m.replaceCharacters(in: match.range, with: replacement) }
                    replaced = m as String
                }
            case .injection(let threshold):
                let verdict = InjectionHeuristics.assess(out.text)
                guard verdict.score >= threshold else { continue }
                found = String(format: "score %.2f (%@)", verdict.score, verdict.signals.joined(separator: ", "))
            case .maxLength(let limit):
                let length = total ?? out.text.count
                guard length > limit else { continue }
                found = "\(length) > \(limit) characters"
            case .moderation:
                continue
            }
            guard let found else { continue }
            let decision = PolicyDecision(policy: c.policy, rule: rule.check.name, action: rule.action, stage: stage, detail: found)
            out.decisions.append(decision)
            switch rule.action {
            case .block:
                out.blocked = decision
                return out
            case .redact:
                if let replaced { out.text = replaced }
            case .flag:
                break
            }
        }
        return out
    }

    static func counts(_ names: [String]) -> String {
        var order: [String] = []
        var n: [String: Int] = [:]
        for name in names {
            if n[name] == nil { order.append(name) }
            n[name, default: 0] += 1
        }
        return order.map { "\($0) x\(n[$0]!)" }.joined(separator: ", ")
    }

    static func replace(_ text: String, _ ranges: [Range<Int>], with placeholder: String) -> String {
        let b = Array(text.utf8)
        var out: [UInt8] = []
        var at = 0
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where r.lowerBound >= at {
            out.append(contentsOf: b[at..<r.lowerBound])
            out.append(contentsOf: placeholder.utf8)
            at = r.upperBound
        }
        out.append(contentsOf: b[at...])
        return String(decoding: out, as: UTF8.self)
    }

    /// Where the stage's pattern rules find something in `text` (UTF-8 byte ranges, any action).
    func spans(_ text: String, stage: PolicySpec.Stage) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for c in rules where c.rule.stages.contains(stage) {
            switch c.rule.check {
            case .pii(let kinds): out += PIIScanner.scan(text, kinds: kinds).map(\.range)
            case .blocklist: out += c.blocklist?.matches(in: text) ?? []
            case .regex:
                guard let regex = c.regex?.regex else { continue }
                for m in regex.matches(in: text, range: NSRange(location: 0, length: (text as NSString).length)) {
                    guard let r = Range(m.range, in: text) else { continue }
                    out.append(text.utf8.distance(from: text.startIndex, to: r.lowerBound)..<text.utf8.distance(from: text.startIndex, to: r.upperBound))
                }
            default: break
            }
        }
        return out
    }

    /// The longest text (UTF-8 bytes) a finding can span, held back from a stream until it
    /// cannot grow into one.
    public var holdBack: Int {
        var n = 0
        for c in rules where c.rule.stages.contains(.output) {
            switch c.rule.check {
            case .pii: n = max(n, 256)
            case .blocklist(let terms): n = max(n, (terms.map(\.utf8.count).max() ?? 0) + 8)
            case .regex: n = max(n, 512)
            default: break
            }
        }
        return n
    }
}

/// `NSRegularExpression` is immutable and thread-safe once made (Apple documents it so); it is
/// not marked Sendable on Linux.
struct NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
}
