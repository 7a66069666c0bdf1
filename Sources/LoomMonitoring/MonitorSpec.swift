import Foundation
import LoomCore
import LoomSpec
import Yams

/// A monitor as written in YAML (`kind: monitor`, docs/monitoring.md): the endpoint whose
/// collected traffic is the production data, when to look (a schedule), at what (the production
/// window and the reference), which signals to compute with what thresholds, where alerts go,
/// and what to do about them. Made by `MonitorSpec.parse`, which checks it whole.
public struct MonitorSpec: Sendable, Equatable, Codable {
    public var name: String
    public var description: String?
    public var endpoint: String
    /// One deployment's answers only (nil: every deployment's).
    public var deployment: String?
    /// Nil: the monitor runs only when asked (`loom monitor run`).
    public var schedule: Schedule?
    public var window: Window
    public var reference: Reference
    public var signals: [Signal]
    public var webhooks: [Webhook]
    public var actions: [Action]

    public enum Schedule: Sendable, Equatable, Codable {
        /// Every so many seconds.
        case every(Double)
        /// A five-field cron expression (UTC).
        case cron(String)
    }

    /// The production window: `size` seconds ending `offset` seconds before the pass (rolling), or
    /// fixed bounds. Azure ML's defaults: the size is the schedule's interval, the offset 0.
    public struct Window: Sendable, Equatable, Codable {
        public var size: Double
        public var offset: Double
        /// Fixed windows: these bounds (Unix milliseconds), whenever the pass runs.
        public var start: Int64?
        public var end: Int64?

        public var isFixed: Bool { start != nil }

        /// The window's bounds for a pass at `now` (Unix milliseconds): [start, end).
        public func bounds(now: Int64) -> (start: Int64, end: Int64) {
            if let start, let end { return (start, end) }
            let end = now - Int64(offset * 1000)
            return (end - Int64(size * 1000), end)
        }
    }

    public enum Reference: Sendable, Equatable, Codable {
        /// The training dataset version of the model the endpoint serves (lineage).
        case lineage
        /// A registered dataset (nil version: the latest).
        case dataset(name: String, version: Int64?)
        /// Earlier production data: `size` seconds ending `offset` seconds before the pass.
        case window(size: Double, offset: Double)
    }

    public enum SignalKind: String, Sendable, Equatable, Codable, CaseIterable {
        case dataDrift = "data_drift"
        case predictionDrift = "prediction_drift"
        case dataQuality = "data_quality"
        case modelPerformance = "model_performance"
        /// Collected answers of an LLM app (a flow endpoint) scored by evaluators.
        case generationQuality = "generation_quality"
        /// Collected answers and questions checked for personal data and prompt injections.
        case generationSafety = "generation_safety"

        public var isGeneration: Bool { self == .generationQuality || self == .generationSafety }
    }

    /// What a generation signal scores (docs/monitoring.md, "Generation quality and safety"): a
    /// share of the window's answers, their question and answer found in the collected request
    /// and response, each scored by evaluation evaluators (docs/evaluation.md).
    public struct Generation: Sendable, Equatable, Codable {
        /// The share of the window's answers scored (chosen by correlation id: a pass over the
        /// same window scores the same ones).
        public var sample: Double
        /// At most this many per pass.
        public var maxRows: Int
        /// Where the question is in the request, the answer and the context in the response
        /// (dotted paths; a number picks a list item, -1 the last).
        public var question: String
        public var answer: String
        public var context: String?
        /// The evaluators as written (the server checks and runs them).
        public var evaluators: JSONValue

        public init(sample: Double = 0.1, maxRows: Int = 100, question: String = "question", answer: String = "outputs.answer", context: String? = nil, evaluators: JSONValue) {
            self.sample = sample
            self.maxRows = maxRows
            self.question = question
            self.answer = answer
            self.context = context
            self.evaluators = evaluators
        }

        /// generation_safety without evaluators: personal data in answers, injections in questions.
        public static let safetyEvaluators = JSONValue.array([.object(["kind": .string("pii")]), .object(["kind": .string("prompt_injection")])])
    }

    public struct Signal: Sendable, Equatable, Codable {
        /// Unique in the monitor; the kind's name unless given.
        public var name: String
        public var kind: SignalKind
        /// Drift and quality: only these columns (nil: every column of the reference).
        public var columns: [String]?
        /// Drift: the share of drifted columns at which the signal fails.
        public var driftShare: Double
        public var methods: [String: DriftMethod]
        public var thresholds: [String: Double]
        /// Drift: the method for numerical and categorical columns without their own. Azure ML's
        /// defaults (normalized Wasserstein and Jensen–Shannon, 0.1); nil: Evidently's choice by
        /// size (`auto`).
        public var numericalMethod: DriftMethod?
        public var categoricalMethod: DriftMethod?
        /// Data quality thresholds (rates, 0 to 1).
        public var quality: DataQuality.Thresholds
        /// Model performance: per metric, the lowest value allowed or the largest drop from the
        /// model version's own metric.
        public var metrics: [String: MetricRule]
        /// Model performance: classification or regression (nil: guessed from the labels).
        public var task: ModelPerformance.Task?
        /// Generation signals: what is scored, and how.
        public var generation: Generation? = nil
    }

    public struct MetricRule: Sendable, Equatable, Codable {
        public var min: Double?
        public var max: Double?
        public var maxDecrease: Double?
        public var maxIncrease: Double?

        public init(min: Double? = nil, max: Double? = nil, maxDecrease: Double? = nil, maxIncrease: Double? = nil) {
            self.min = min
            self.max = max
            self.maxDecrease = maxDecrease
            self.maxIncrease = maxIncrease
        }
    }

    public struct Webhook: Sendable, Equatable, Codable {
        public var url: String
        /// The environment variable that holds the HMAC secret (never the secret itself).
        public var secretEnv: String?

        public init(url: String, secretEnv: String? = nil) {
            self.url = url
            self.secretEnv = secretEnv
        }
    }

    public struct Action: Sendable, Equatable, Codable {
        /// The signals whose alerts start it.
        public var on: [String]
        public var pipeline: String
        public var parameters: [String: JSONValue]
        /// A rollout spec (as the rollouts API takes it) for the version the pipeline registers:
        /// started when the pipeline succeeds.
        public var rollout: JSONValue?
    }

    public static let defaultMetricRules: [String: MetricRule] = ["accuracy": MetricRule(min: 0.9)]

    /// Parses and checks a spec; throws one error naming every problem found (line and field).
    public static func parse(yaml text: String, file: String = "monitor.yaml") throws(LoomError) -> MonitorSpec {
        let reader = MonitorSpecReader()
        let spec = reader.read(text)
        let problems = SpecProblem.ordered(reader.problems)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }

    /// Every problem in a spec, in the file's order.
    public static func check(yaml text: String) -> [SpecProblem] {
        let reader = MonitorSpecReader()
        _ = reader.read(text)
        return SpecProblem.ordered(reader.problems)
    }
}

/// Reads a monitor spec node by node.
final class MonitorSpecReader: SpecNodeReader {
    /// The longest duration a spec may give (windows, offsets, intervals): a year. Longer ones
    /// mean nothing for a monitor and would overflow millisecond arithmetic.
    static let longestSeconds = 366.0 * 86400

    /// The longest window a pass reads (its hourly folders): 31 days.
    static let longestWindowSeconds = 31.0 * 86400

    /// A duration within a year, or nil.
    func boundedDuration(_ node: Node) -> Double? {
        duration(node).flatMap { $0 <= Self.longestSeconds ? $0 : nil }
    }

    static let topKeys = ["kind", "name", "description", "endpoint", "deployment", "schedule", "window", "reference", "signals", "alerts", "actions"]

    func read(_ yaml: String) -> MonitorSpec? {
        guard let (root, top) = document(yaml, what: "a mapping with kind, name, endpoint, signals, ...") else { return nil }
        unknownKeys(top, Self.topKeys, "")
        func value(_ key: String) -> Node? { top.first { $0.key == key }?.value }

        if let kind = value("kind") {
            if text(kind, "kind") != "monitor" { problem(kind, "kind", "must be monitor") }
        }
        var name = ""
        if let node = value("name"), let s = text(node, "name") {
            if Self.isName(s) { name = s } else { problem(node, "name", "must start with a letter and hold letters, digits, _ or - (at most 64)") }
        } else if value("name") == nil {
            problem(line: root.mark?.line, "name", "is required")
        }
        var endpoint = ""
        if let node = value("endpoint"), let s = text(node, "endpoint") {
            if Self.isName(s) { endpoint = s } else { problem(node, "endpoint", "is not an endpoint name") }
        } else if value("endpoint") == nil {
            problem(line: root.mark?.line, "endpoint", "is required: the endpoint whose collected requests are watched")
        }
        let description = value("description").flatMap { text($0, "description") }
        var deployment: String?
        if let node = value("deployment"), let s = text(node, "deployment") {
            if Self.isName(s) { deployment = s } else { problem(node, "deployment", "is not a deployment name") }
        }
        let schedule = value("schedule").flatMap { self.schedule($0) }
        let interval: Double? = if case .every(let s)? = schedule { s } else { nil }
        let window = self.window(value("window"), interval: interval)
        let reference = value("reference").map { self.reference($0, window: window) } ?? MonitorSpec.Reference.lineage
        var signals: [MonitorSpec.Signal] = []
        if let node = value("signals") {
            if let items = node.sequence, !items.isEmpty {
                for (i, item) in items.enumerated() {
                    if let s = signal(item, "signals[\(i)]") {
                        if signals.contains(where: { $0.name == s.name }) {
                            problem(item, "signals[\(i)].name", "\(s.name) is given twice: name one of them")
                        } else {
                            signals.append(s)
                        }
                    }
                }
            } else {
                problem(node, "signals", "must be a list of signals (data_drift, prediction_drift, data_quality, model_performance)")
            }
        } else {
            // Azure ML's default monitor: data drift, prediction drift and data quality.
            signals = [.dataDrift, .predictionDrift, .dataQuality].map { Self.defaultSignal($0) }
        }
        let webhooks = value("alerts").map { alerts($0) } ?? []
        var actions: [MonitorSpec.Action] = []
        if let node = value("actions") {
            if let items = node.sequence {
                for (i, item) in items.enumerated() {
                    if let a = action(item, "actions[\(i)]", signals: signals) { actions.append(a) }
                }
            } else {
                problem(node, "actions", "must be a list")
            }
        }
        return MonitorSpec(
            name: name, description: description, endpoint: endpoint, deployment: deployment, schedule: schedule, window: window,
            reference: reference, signals: signals, webhooks: webhooks, actions: actions)
    }

    static func defaultSignal(_ kind: MonitorSpec.SignalKind) -> MonitorSpec.Signal {
        MonitorSpec.Signal(
            name: kind.rawValue, kind: kind, columns: nil, driftShare: 0.5, methods: [:], thresholds: [:],
            numericalMethod: .wasserstein, categoricalMethod: .jensenshannon, quality: DataQuality.Thresholds(),
            metrics: kind == .modelPerformance ? MonitorSpec.defaultMetricRules : [:], task: nil)
    }

    func schedule(_ node: Node) -> MonitorSpec.Schedule? {
        guard let p = pairs(node, "schedule", what: "a mapping: {every: 1h} or {cron: \"0 * * * *\"}") else { return nil }
        unknownKeys(p, ["every", "cron"], "schedule")
        if p.count != 1 || !["every", "cron"].contains(p.first?.key ?? "") {
            problem(node, "schedule", "give one of every (a duration: 15m, 1h, 1d) or cron")
            return nil
        }
        let (key, _, value) = p[0]
        if key == "every" {
            guard let seconds = boundedDuration(value), seconds >= 60 else {
                problem(value, "schedule.every", "must be a duration from 1m to 366d (90s, 15m, 1h, 1d)")
                return nil
            }
            return .every(seconds)
        }
        guard let expression = text(value, "schedule.cron") else { return nil }
        do {
            _ = try CronSchedule(parsing: expression)
        } catch {
            problem(value, "schedule.cron", "\(error)")
            return nil
        }
        return .cron(expression)
    }

    func window(_ node: Node?, interval: Double?) -> MonitorSpec.Window {
        // Azure ML: the production window is the monitoring interval, offset 0; a day when the
        // monitor has no interval (cron or on demand).
        // (at most the longest window a pass reads).
        var window = MonitorSpec.Window(size: min(interval ?? 86400, Self.longestWindowSeconds), offset: 0, start: nil, end: nil)
        guard let node, let p = pairs(node, "window") else { return window }
        unknownKeys(p, ["size", "offset", "type", "start", "end"], "window")
        var type = "rolling"
        for (key, _, value) in p {
            switch key {
            case "size":
                if let d = boundedDuration(value), d > 0 { window.size = d } else { problem(value, "window.size", "must be a duration above 0, at most 366d (90s, 15m, 1h, 7d)") }
            case "offset":
                if let d = boundedDuration(value) { window.offset = d } else { problem(value, "window.offset", "must be a duration of at most 366d (0s, 1h, 1d)") }
            case "type":
                if let t = text(value, "window.type"), ["rolling", "fixed"].contains(t) { type = t } else { problem(value, "window.type", "must be rolling or fixed") }
            case "start", "end":
                guard let t = text(value, "window.\(key)"), let ms = Self.instant(t) else {
                    problem(value, "window.\(key)", "must be an ISO 8601 time (2026-11-01T00:00:00Z)")
                    continue
                }
                if key == "start" { window.start = ms } else { window.end = ms }
            default: break
            }
        }
        if window.size > Self.longestWindowSeconds {
            problem(node, "window.size", "a window covers at most 31d")
        }
        if type == "fixed" {
            if let s = window.start, let e = window.end {
                if e <= s { problem(node, "window.end", "must be after window.start") }
                if Double(e - s) > Self.longestWindowSeconds * 1000 { problem(node, "window.end", "a fixed window covers at most 31d") }
            } else {
                problem(node, "window", "a fixed window gives start and end")
            }
        } else if window.start != nil || window.end != nil {
            problem(node, "window", "start and end are for fixed windows (type: fixed)")
            window.start = nil
            window.end = nil
        }
        return window
    }

    static func instant(_ text: String) -> Int64? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    func reference(_ node: Node, window: MonitorSpec.Window) -> MonitorSpec.Reference {
        if case .string(let s)? = scalar(node), s == "lineage" { return .lineage }
        guard let p = pairs(node, "reference", what: "lineage, {dataset: NAME[@VERSION]} or {window: {size, offset}}") else { return .lineage }
        unknownKeys(p, ["dataset", "version", "window"], "reference")
        let keys = Set(p.map(\.key))
        if keys.contains("dataset") == keys.contains("window") {
            problem(node, "reference", "give one of dataset or window")
            return .lineage
        }
        if let w = p.first(where: { $0.key == "window" })?.value {
            guard let wp = pairs(w, "reference.window") else { return .lineage }
            unknownKeys(wp, ["size", "offset"], "reference.window")
            // Azure ML: a recent-production reference ends twice the production window back.
            var size = window.size
            var offset = 2 * window.size
            for (key, _, value) in wp {
                guard let d = boundedDuration(value), key == "offset" || d > 0 else {
                    problem(value, "reference.window.\(key)", "must be a duration\(key == "size" ? " above 0" : ""), at most 366d")
                    continue
                }
                if key == "size" { size = d } else { offset = d }
            }
            if size > Self.longestWindowSeconds { problem(w, "reference.window.size", "a window covers at most 31d") }
            return .window(size: size, offset: offset)
        }
        let d = p.first { $0.key == "dataset" }!.value
        guard var name = text(d, "reference.dataset") else { return .lineage }
        var version: Int64?
        if let at = name.lastIndex(of: "@") {
            guard let v = Int64(name[name.index(after: at)...]), v > 0 else {
                problem(d, "reference.dataset", "NAME@VERSION takes a version number above 0")
                return .lineage
            }
            version = v
            name = String(name[..<at])
        }
        if let v = p.first(where: { $0.key == "version" })?.value {
            if let i = int(v), i > 0, version == nil { version = Int64(i) } else { problem(v, "reference.version", "must be a version number above 0, given once") }
        }
        guard !name.isEmpty else {
            problem(d, "reference.dataset", "names a registered dataset")
            return .lineage
        }
        return .dataset(name: name, version: version)
    }

    func signal(_ node: Node, _ field: String) -> MonitorSpec.Signal? {
        guard let p = pairs(node, field) else { return nil }
        guard let typeNode = p.first(where: { $0.key == "type" })?.value, let type = text(typeNode, "\(field).type") else {
            problem(node, "\(field).type", "is required (\(MonitorSpec.SignalKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        guard let kind = MonitorSpec.SignalKind(rawValue: type) else {
            problem(typeNode, "\(field).type", "unknown signal \(type) (\(MonitorSpec.SignalKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        var s = Self.defaultSignal(kind)
        let allowed: [String] = switch kind {
        case .dataDrift, .predictionDrift: ["type", "name", "columns", "drift_share", "methods", "thresholds", "numerical_method", "categorical_method"]
        case .dataQuality: ["type", "name", "columns", "thresholds"]
        case .modelPerformance: ["type", "name", "metrics", "task"]
        case .generationQuality, .generationSafety: ["type", "name", "sample", "max_rows", "question", "answer", "context", "evaluators", "metrics"]
        }
        unknownKeys(p, allowed, field)
        if kind.isGeneration { return generationSignal(s, p, field, node) }
        for (key, _, value) in p {
            let f = "\(field).\(key)"
            switch key {
            case "name":
                if let n = signalName(value, f) { s.name = n }
            case "columns":
                if let items = value.sequence, !items.isEmpty {
                    s.columns = items.enumerated().compactMap { i, c in text(c, "\(f)[\(i)]") }
                } else {
                    problem(value, f, "must be a list of column names")
                }
            case "drift_share":
                if let d = number(value), d > 0, d <= 1 { s.driftShare = d } else { problem(value, f, "must be a number in (0, 1]") }
            case "methods":
                guard let mp = pairs(value, f) else { continue }
                for (column, _, m) in mp {
                    if let name = text(m, "\(f).\(column)") {
                        if let method = DriftMethod(rawValue: name) { s.methods[column] = method } else { problem(m, "\(f).\(column)", Self.unknownMethod(name)) }
                    }
                }
            case "thresholds":
                guard let tp = pairs(value, f) else { continue }
                if kind == .dataQuality {
                    for (rate, _, v) in tp {
                        guard let d = number(v), d >= 0, d <= 1 else {
                            problem(v, "\(f).\(rate)", "must be a rate from 0 to 1")
                            continue
                        }
                        switch rate {
                        case "null_rate": s.quality.nullRate = d
                        case "type_error_rate": s.quality.typeErrorRate = d
                        case "out_of_range_rate": s.quality.outOfRangeRate = d
                        default: problem(v, "\(f).\(rate)", "unknown rate (null_rate, type_error_rate, out_of_range_rate)")
                        }
                    }
                } else {
                    for (column, _, v) in tp {
                        if let d = number(v), d >= 0, d.isFinite { s.thresholds[column] = d } else { problem(v, "\(f).\(column)", "must be a number of 0 or more") }
                    }
                }
            case "numerical_method", "categorical_method":
                guard let name = text(value, f) else { continue }
                let method: DriftMethod?
                if name == "auto" {
                    method = nil
                } else if let m = DriftMethod(rawValue: name) {
                    method = m
                } else {
                    problem(value, f, Self.unknownMethod(name) + " or auto (Evidently's choice by size)")
                    continue
                }
                if key == "numerical_method" { s.numericalMethod = method } else { s.categoricalMethod = method }
            case "metrics":
                guard let mp = pairs(value, f) else { continue }
                s.metrics = [:]
                for (metric, _, rule) in mp {
                    if let r = metricRule(rule, "\(f).\(metric)") { s.metrics[metric] = r }
                    if !ModelPerformance.metricNames.contains(metric) {
                        problem(rule, "\(f).\(metric)", "unknown metric (\(ModelPerformance.metricNames.joined(separator: ", ")))")
                    }
                }
            case "task":
                if let t = text(value, f) {
                    if let task = ModelPerformance.Task(rawValue: t) { s.task = task } else { problem(value, f, "must be classification or regression") }
                }
            default: break
            }
        }
        return s
    }

    /// A signal's `name`, or nil (with a problem) when it is not one.
    func signalName(_ value: Node, _ f: String) -> String? {
        guard let n = text(value, f) else { return nil }
        guard Self.isName(n) else {
            problem(value, f, "must start with a letter and hold letters, digits, _ or -")
            return nil
        }
        return n
    }

    /// A generation signal: sampling, where the question and answer are, evaluators and rules.
    func generationSignal(_ base: MonitorSpec.Signal, _ p: [Pair], _ field: String, _ node: Node) -> MonitorSpec.Signal? {
        var s = base
        var g = MonitorSpec.Generation(evaluators: s.kind == .generationSafety ? MonitorSpec.Generation.safetyEvaluators : .array([]))
        s.metrics = s.kind == .generationSafety ? ["pii": MonitorSpec.MetricRule(min: 1), "prompt_injection": MonitorSpec.MetricRule(min: 0.95)] : [:]
        for (key, _, value) in p {
            let f = "\(field).\(key)"
            switch key {
            case "name":
                if let n = signalName(value, f) { s.name = n }
            case "sample":
                if let d = number(value), d > 0, d <= 1 { g.sample = d } else { problem(value, f, "must be a share in (0, 1]") }
            case "max_rows":
                if case .int(let i)? = scalar(value), (1...10_000).contains(i) { g.maxRows = i } else { problem(value, f, "must be a whole number from 1 to 10000") }
            case "question", "answer", "context":
                guard let t = text(value, f), !t.isEmpty else { problem(value, f, "must be a dotted path such as outputs.answer"); continue }
                if key == "question" { g.question = t } else if key == "answer" { g.answer = t } else { g.context = t }
            case "evaluators":
                guard let items = value.sequence, !items.isEmpty else { problem(value, f, "must list evaluators (docs/evaluation.md)"); continue }
                g.evaluators = json(value)
            case "metrics":
                guard let mp = pairs(value, f) else { continue }
                s.metrics = [:]
                for (metric, _, rule) in mp {
                    guard let r = metricRule(rule, "\(f).\(metric)") else { continue }
                    if r.maxDecrease != nil || r.maxIncrease != nil {
                        problem(rule, "\(f).\(metric)", "a generation metric has min and max (a mean of the scores), not max_decrease or max_increase")
                    }
                    s.metrics[metric] = r
                }
            default: break
            }
        }
        if s.kind == .generationQuality {
            if case .array(let e) = g.evaluators, e.isEmpty { problem(node, "\(field).evaluators", "is required: the evaluators that score the answers") }
            if s.metrics.isEmpty { problem(node, "\(field).metrics", "is required: {EVALUATOR: {min: ...}} rules on the scores' means") }
        }
        s.generation = g
        return s
    }

    static func unknownMethod(_ name: String) -> String {
        "unknown method \(name) (\(DriftMethod.allCases.map(\.rawValue).joined(separator: ", ")))"
    }

    func number(_ node: Node) -> Double? {
        switch scalar(node) {
        case .int(let i)?: Double(i)
        case .float(let d)?: d.isFinite ? d : nil
        default: nil
        }
    }

    func metricRule(_ node: Node, _ field: String) -> MonitorSpec.MetricRule? {
        guard let p = pairs(node, field, what: "a mapping such as {min: 0.8} or {max_decrease: 0.05}") else { return nil }
        unknownKeys(p, ["min", "max", "max_decrease", "max_increase"], field)
        var rule = MonitorSpec.MetricRule()
        for (key, _, value) in p {
            guard let d = number(value) else {
                problem(value, "\(field).\(key)", "must be a number")
                continue
            }
            switch key {
            case "min": rule.min = d
            case "max": rule.max = d
            case "max_decrease": rule.maxDecrease = d
            case "max_increase": rule.maxIncrease = d
            default: break
            }
        }
        if rule == MonitorSpec.MetricRule() {
            problem(node, field, "give min, max, max_decrease or max_increase")
            return nil
        }
        return rule
    }

    func alerts(_ node: Node) -> [MonitorSpec.Webhook] {
        guard let p = pairs(node, "alerts") else { return [] }
        unknownKeys(p, ["webhooks"], "alerts")
        guard let hooks = p.first(where: { $0.key == "webhooks" })?.value else { return [] }
        guard let items = hooks.sequence else {
            problem(hooks, "alerts.webhooks", "must be a list of {url, secret_env}")
            return []
        }
        var out: [MonitorSpec.Webhook] = []
        for (i, item) in items.enumerated() {
            let f = "alerts.webhooks[\(i)]"
            guard let hp = pairs(item, f) else { continue }
            unknownKeys(hp, ["url", "secret_env"], f)
            guard let urlNode = hp.first(where: { $0.key == "url" })?.value, let url = text(urlNode, "\(f).url") else {
                problem(item, "\(f).url", "is required")
                continue
            }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                problem(urlNode, "\(f).url", "must be an http:// or https:// URL")
                continue
            }
            var secretEnv: String?
            if let s = hp.first(where: { $0.key == "secret_env" })?.value, let name = text(s, "\(f).secret_env") {
                if name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil {
                    secretEnv = name
                } else {
                    problem(s, "\(f).secret_env", "must be the name of an environment variable (the secret itself never goes in a spec)")
                }
            }
            out.append(MonitorSpec.Webhook(url: url, secretEnv: secretEnv))
        }
        return out
    }

    func action(_ node: Node, _ field: String, signals: [MonitorSpec.Signal]) -> MonitorSpec.Action? {
        guard let p = pairs(node, field) else { return nil }
        unknownKeys(p, ["on", "run_pipeline", "then_rollout"], field)
        var on = signals.map(\.name)
        if let o = p.first(where: { $0.key == "on" })?.value {
            let names: [String]
            if let items = o.sequence {
                names = items.enumerated().compactMap { i, n in text(n, "\(field).on[\(i)]") }
            } else if let one = text(o, "\(field).on") {
                names = [one]
            } else {
                names = []
            }
            for n in names where !signals.contains(where: { $0.name == n }) {
                problem(o, "\(field).on", "no signal is named \(n) (\(signals.map(\.name).joined(separator: ", ")))")
            }
            on = names
        }
        guard let run = p.first(where: { $0.key == "run_pipeline" })?.value else {
            problem(node, "\(field).run_pipeline", "is required: {name: PIPELINE, parameters: {...}}")
            return nil
        }
        guard let rp = pairs(run, "\(field).run_pipeline") else { return nil }
        unknownKeys(rp, ["name", "parameters"], "\(field).run_pipeline")
        guard let nameNode = rp.first(where: { $0.key == "name" })?.value, let pipeline = text(nameNode, "\(field).run_pipeline.name") else {
            problem(run, "\(field).run_pipeline.name", "is required")
            return nil
        }
        var parameters: [String: JSONValue] = [:]
        if let params = rp.first(where: { $0.key == "parameters" })?.value {
            if case .object(let o) = json(params) { parameters = o } else { problem(params, "\(field).run_pipeline.parameters", "must be a mapping") }
        }
        var rollout: JSONValue?
        if let r = p.first(where: { $0.key == "then_rollout" })?.value {
            if case .object = json(r) { rollout = json(r) } else { problem(r, "\(field).then_rollout", "must be a rollout spec (strategy, steps, bake, gates, ...)") }
        }
        return MonitorSpec.Action(on: on, pipeline: pipeline, parameters: parameters, rollout: rollout)
    }
}
