import Foundation
import LoomCore
import LoomSpec
import Yams

/// A provider as written in YAML (`kind: provider`, docs/gateway.md): where a family of models
/// is reached and where its key is read from. The key itself never appears in a spec, the
/// database or a log: `api_key_env` names an environment variable of the server, `api_key_secret`
/// an entry of the secrets file (`LOOM_SECRETS_FILE`).
public struct ProviderSpec: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case openai
        case azureOpenAI = "azure-openai"
        case anthropic
        /// Any server speaking OpenAI's API: vLLM, Ollama, llama.cpp's server, LM Studio.
        case openaiCompatible = "openai-compatible"
    }

    public var name: String
    public var kind: Kind
    /// OpenAI and compatible servers: up to and including `/v1`; Azure: the resource's URL
    /// (`https://NAME.openai.azure.com`); Anthropic: `https://api.anthropic.com`.
    public var baseURL: String
    public var apiKeyEnv: String?
    public var apiKeySecret: String?
    /// Azure OpenAI's `api-version`.
    public var apiVersion: String?
    /// Anthropic's `anthropic-version`.
    public var anthropicVersion: String
    public var description: String?

    public static let defaultAnthropicVersion = "2023-06-01"
    public static let defaultAzureAPIVersion = "2024-10-21"

    public static func parse(yaml text: String, file: String = "provider.yaml") throws(LoomError) -> ProviderSpec {
        let reader = GatewaySpecReader()
        let spec = reader.provider(text)
        let problems = SpecProblem.ordered(reader.problems)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }
}

/// A route as written in YAML (`kind: route`): the public model name clients ask for, the
/// provider models that answer it (a weighted split, then ordered fallbacks), and how calls are
/// retried, limited and cached.
public struct RouteSpec: Sendable, Equatable, Codable {
    public enum Task: String, Sendable, Codable, CaseIterable {
        case chat
        case embeddings
    }

    public struct Target: Sendable, Equatable, Codable, Hashable {
        public var provider: String
        public var model: String
        public var weight: Int

        public init(provider: String, model: String, weight: Int = 1) {
            self.provider = provider
            self.model = model
            self.weight = weight
        }
    }

    public struct Limits: Sendable, Equatable, Codable {
        public var requestsPerMinute: Int64?
        public var tokensPerMinute: Int64?
        public var spendPerDay: Double?

        public init(requestsPerMinute: Int64? = nil, tokensPerMinute: Int64? = nil, spendPerDay: Double? = nil) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
            self.spendPerDay = spendPerDay
        }

        public var isEmpty: Bool { requestsPerMinute == nil && tokensPerMinute == nil && spendPerDay == nil }
    }

    public struct Cache: Sendable, Equatable, Codable {
        public var ttl: Double
        public var maxEntries: Int
    }

    public var name: String
    public var description: String?
    public var task: Task
    public var targets: [Target]
    public var fallbacks: [Target]
    /// Further attempts at the same provider model after a retryable failure (429, 5xx,
    /// a timeout, a refused connection).
    public var retries: Int
    /// The first wait before a retry, doubled each time up to `maxBackoff`; a provider's
    /// `Retry-After` replaces it (up to `maxRetryAfter`; longer ones move on to a fallback).
    public var backoff: Double
    public var maxBackoff: Double
    public var maxRetryAfter: Double
    /// One attempt's limit (a streamed answer: until the provider's answer starts).
    public var timeout: Double
    public var cache: Cache?
    public var limits: Limits
    /// A registry prompt whose rendered messages go before the client's (`NAME@ALIAS`: the
    /// alias is followed as it moves).
    public var prompt: PromptReference?
    /// Safety policies (`kind: policy`) applied to inputs and outputs, in order.
    public var policies: [String]

    public static func parse(yaml text: String, file: String = "route.yaml") throws(LoomError) -> RouteSpec {
        let reader = GatewaySpecReader()
        let spec = reader.route(text)
        let problems = SpecProblem.ordered(reader.problems)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }

    /// Every provider a route calls.
    public var providers: Set<String> { Set((targets + fallbacks).map(\.provider)) }
}

/// The kind a gateway spec declares (`provider`, `route` or `policy`), or nil.
public func gatewaySpecKind(_ text: String) -> GatewayResource.Kind? {
    guard let node = try? Yams.compose(yaml: text, .basic), let mapping = node.mapping else { return nil }
    for (k, v) in mapping where k.string == "kind" {
        return v.string.flatMap(GatewayResource.Kind.init(rawValue:))
    }
    return nil
}

final class GatewaySpecReader: SpecNodeReader {
    func provider(_ yaml: String) -> ProviderSpec? {
        guard let (root, top) = document(yaml, what: "a mapping with kind: provider, name, type, base_url, api_key_env") else { return nil }
        unknownKeys(top, ["kind", "name", "type", "base_url", "api_key_env", "api_key_secret", "api_version", "anthropic_version", "description"], "")
        func value(_ key: String) -> Node? { top.first { $0.key == key }?.value }
        kind(value("kind"), "provider", root)
        let name = self.name(value("name"), root)
        if let name, !Self.isName(name) {
            problem(value("name"), "name", "must start with a letter and hold letters, digits, _ or - (at most 64)")
        }
        var kind = ProviderSpec.Kind.openaiCompatible
        if let node = value("type") {
            if let s = text(node, "type"), let k = ProviderSpec.Kind(rawValue: s) {
                kind = k
            } else {
                problem(node, "type", "must be one of \(ProviderSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        } else {
            problem(line: root.mark?.line, "type", "is required: \(ProviderSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var baseURL: String
        switch kind {
        case .openai: baseURL = "https://api.openai.com/v1"
        case .anthropic: baseURL = "https://api.anthropic.com"
        case .azureOpenAI, .openaiCompatible: baseURL = ""
        }
        if let node = value("base_url"), let s = text(node, "base_url") {
            if let url = URL(string: s), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false, url.query == nil {
                baseURL = s.hasSuffix("/") ? String(s.dropLast()) : s
            } else {
                problem(node, "base_url", "must be an http:// or https:// URL without a query")
            }
        } else if baseURL.isEmpty && value("base_url") == nil {
            problem(line: root.mark?.line, "base_url", "is required for \(kind.rawValue) providers")
        }
        let keyEnv = value("api_key_env").flatMap { node -> String? in
            guard let s = text(node, "api_key_env") else { return nil }
            guard Self.isEnvironmentName(s) else {
                problem(node, "api_key_env", "must be the NAME of an environment variable (letters, digits, _), not the key")
                return nil
            }
            return s
        }
        let keySecret = value("api_key_secret").flatMap { node -> String? in
            guard let s = text(node, "api_key_secret") else { return nil }
            guard Self.isName(s) || Self.isEnvironmentName(s) else {
                problem(node, "api_key_secret", "must be the name of an entry of the secrets file")
                return nil
            }
            return s
        }
        if keyEnv != nil && keySecret != nil {
            problem(value("api_key_secret"), "api_key_secret", "give one of api_key_env or api_key_secret")
        }
        if let node = value("api_key") {
            problem(node, "api_key", "keys are never written in specs: put it in an environment variable (api_key_env) or the secrets file (api_key_secret)")
        }
        var apiVersion = value("api_version").flatMap { text($0, "api_version") }
        if kind == .azureOpenAI && apiVersion == nil { apiVersion = ProviderSpec.defaultAzureAPIVersion }
        let anthropicVersion = value("anthropic_version").flatMap { text($0, "anthropic_version") } ?? ProviderSpec.defaultAnthropicVersion
        let description = value("description").flatMap { text($0, "description") }
        guard let name else { return nil }
        return ProviderSpec(
            name: name, kind: kind, baseURL: baseURL, apiKeyEnv: keyEnv, apiKeySecret: keySecret, apiVersion: apiVersion,
            anthropicVersion: anthropicVersion, description: description)
    }

    func route(_ yaml: String) -> RouteSpec? {
        guard let (root, top) = document(yaml, what: "a mapping with kind: route, name, targets") else { return nil }
        unknownKeys(
            top, ["kind", "name", "description", "task", "targets", "fallbacks", "retries", "backoff", "max_backoff", "max_retry_after", "timeout", "cache", "limits", "prompt", "policies"],
            "")
        func value(_ key: String) -> Node? { top.first { $0.key == key }?.value }
        kind(value("kind"), "route", root)
        let name = self.name(value("name"), root)
        if let name, !Self.isRouteName(name) {
            problem(value("name"), "name", "must hold letters, digits, _, -, . or : (at most 128)")
        }
        var task = RouteSpec.Task.chat
        if let node = value("task") {
            if let s = text(node, "task"), let t = RouteSpec.Task(rawValue: s) { task = t } else { problem(node, "task", "must be chat or embeddings") }
        }
        var targets: [RouteSpec.Target] = []
        if let node = value("targets") {
            targets = self.targets(node, "targets", weighted: true)
            if targets.isEmpty && problems.isEmpty { problem(node, "targets", "must list at least one {provider, model}") }
            if !targets.isEmpty && targets.allSatisfy({ $0.weight == 0 }) { problem(node, "targets", "at least one target needs a weight above 0") }
        } else {
            problem(line: root.mark?.line, "targets", "is required: the provider models that answer this route")
        }
        let fallbacks = value("fallbacks").map { self.targets($0, "fallbacks", weighted: false) } ?? []
        var retries = 2
        if let node = value("retries") {
            if let i = int(node), (0...10).contains(i) { retries = i } else { problem(node, "retries", "must be a whole number from 0 to 10") }
        }
        func seconds(_ key: String, _ fallback: Double, range: ClosedRange<Double>) -> Double {
            guard let node = value(key) else { return fallback }
            guard let d = duration(node), range.contains(d) else {
                problem(node, key, "must be a duration from \(Self.show(range.lowerBound)) to \(Self.show(range.upperBound)) (250ms as 0.25s, 30s, 2m)")
                return fallback
            }
            return d
        }
        let backoff = seconds("backoff", 0.2, range: 0...60)
        let maxBackoff = seconds("max_backoff", 5, range: 0...600)
        let maxRetryAfter = seconds("max_retry_after", 30, range: 0...600)
        let timeout = seconds("timeout", 60, range: 0.01...3600)
        var cache: RouteSpec.Cache?
        if let node = value("cache"), let p = pairs(node, "cache", what: "a mapping: {ttl: 10m, max_entries: 1000}") {
            unknownKeys(p, ["ttl", "max_entries"], "cache")
            var c = RouteSpec.Cache(ttl: 600, maxEntries: 1000)
            for (key, _, v) in p {
                if key == "ttl" {
                    if let d = duration(v), d > 0, d <= 30 * 86400 { c.ttl = d } else { problem(v, "cache.ttl", "must be a duration above 0, at most 30d") }
                } else if let i = int(v), (1...1_000_000).contains(i) {
                    c.maxEntries = i
                } else {
                    problem(v, "cache.max_entries", "must be a whole number from 1 to 1000000")
                }
            }
            cache = c
        }
        var limits = RouteSpec.Limits()
        if let node = value("limits") { limits = self.limits(node, "limits") }
        var prompt: PromptReference?
        if let node = value("prompt"), let s = text(node, "prompt") {
            do {
                prompt = try PromptReference(parsing: s)
            } catch {
                problem(node, "prompt", error.message)
            }
            if task == .embeddings { problem(node, "prompt", "an embeddings route cannot bind a prompt") }
        }
        var policies: [String] = []
        if let node = value("policies") {
            for item in node.sequence ?? [node] {
                guard let s = text(item, "policies"), Self.isName(s) else {
                    problem(item, "policies", "must list policy names")
                    continue
                }
                if policies.contains(s) { problem(item, "policies", "\(s) is listed twice") } else { policies.append(s) }
            }
        }
        let description = value("description").flatMap { text($0, "description") }
        guard let name else { return nil }
        return RouteSpec(
            name: name, description: description, task: task, targets: targets, fallbacks: fallbacks, retries: retries, backoff: backoff,
            maxBackoff: maxBackoff, maxRetryAfter: maxRetryAfter, timeout: timeout, cache: cache, limits: limits, prompt: prompt, policies: policies)
    }

    func limits(_ node: Node, _ field: String) -> RouteSpec.Limits {
        var limits = RouteSpec.Limits()
        guard let p = pairs(node, field, what: "a mapping: {requests_per_minute, tokens_per_minute, spend_per_day}") else { return limits }
        unknownKeys(p, ["requests_per_minute", "tokens_per_minute", "spend_per_day"], field)
        for (key, _, v) in p {
            switch key {
            case "requests_per_minute", "tokens_per_minute":
                guard let i = int(v), i > 0 else {
                    problem(v, "\(field).\(key)", "must be a whole number above 0")
                    continue
                }
                if key == "requests_per_minute" { limits.requestsPerMinute = Int64(i) } else { limits.tokensPerMinute = Int64(i) }
            default:
                switch scalar(v) {
                case .int(let i)? where i >= 0: limits.spendPerDay = Double(i)
                case .float(let d)? where d >= 0 && d.isFinite: limits.spendPerDay = d
                default: problem(v, "\(field).\(key)", "must be an amount of 0 or more")
                }
            }
        }
        return limits
    }

    func targets(_ node: Node, _ field: String, weighted: Bool) -> [RouteSpec.Target] {
        guard let items = node.sequence else {
            problem(node, field, "must be a list of {provider, model\(weighted ? ", weight" : "")}")
            return []
        }
        var out: [RouteSpec.Target] = []
        for (i, item) in items.enumerated() {
            let f = "\(field)[\(i)]"
            guard let p = pairs(item, f, what: "a mapping: {provider, model\(weighted ? ", weight" : "")}") else { continue }
            unknownKeys(p, weighted ? ["provider", "model", "weight"] : ["provider", "model"], f)
            func value(_ key: String) -> Node? { p.first { $0.key == key }?.value }
            var provider: String?
            if let v = value("provider"), let s = text(v, "\(f).provider") {
                if Self.isName(s) { provider = s } else { problem(v, "\(f).provider", "is not a provider name") }
            } else if value("provider") == nil {
                problem(item, "\(f).provider", "is required")
            }
            var model: String?
            if let v = value("model"), let s = text(v, "\(f).model") {
                if !s.isEmpty, s.utf8.count <= 256, !s.unicodeScalars.contains(where: { $0.value < 0x20 }) { model = s }
                else { problem(v, "\(f).model", "must be a provider's model id") }
            } else if value("model") == nil {
                problem(item, "\(f).model", "is required")
            }
            var weight = 1
            if let v = value("weight") {
                if let w = int(v), (0...100).contains(w) { weight = w } else { problem(v, "\(f).weight", "must be a whole number from 0 to 100") }
            }
            if let provider, let model {
                let t = RouteSpec.Target(provider: provider, model: model, weight: weight)
                if out.contains(where: { $0.provider == provider && $0.model == model }) {
                    problem(item, f, "\(provider)/\(model) is listed twice")
                } else {
                    out.append(t)
                }
            }
        }
        return out
    }

    func kind(_ node: Node?, _ expected: String, _ root: Node) {
        guard let node else {
            problem(line: root.mark?.line, "kind", "is required (kind: \(expected))")
            return
        }
        if text(node, "kind") != expected { problem(node, "kind", "must be \(expected)") }
    }

    func name(_ node: Node?, _ root: Node) -> String? {
        guard let node else {
            problem(line: root.mark?.line, "name", "is required")
            return nil
        }
        guard let s = text(node, "name") else { return nil }
        return s
    }

    /// Route names are the model names clients send: `gpt-4o`, `chat.fast`, `team:model` too.
    static func isRouteName(_ s: String) -> Bool {
        let u = s.utf8
        guard let first = u.first, u.count <= 128, (first | 0x20) >= 0x61 && (first | 0x20) <= 0x7A || (first >= 0x30 && first <= 0x39) else { return false }
        return u.allSatisfy { c in
            ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D || c == 0x2E || c == 0x3A
        }
    }

    static func isEnvironmentName(_ s: String) -> Bool {
        let u = s.utf8
        guard let first = u.first, u.count <= 128, !(first >= 0x30 && first <= 0x39) else { return false }
        return u.allSatisfy { c in ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F }
    }

    static func show(_ seconds: Double) -> String {
        seconds < 1 ? "\(seconds)s" : seconds >= 60 && seconds.truncatingRemainder(dividingBy: 60) == 0 ? "\(Int(seconds / 60))m" : "\(Int(seconds))s"
    }
}
