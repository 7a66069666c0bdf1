import Foundation
import LoomCore

/// A prompt version's content, stored as MLflow stores it (docs/prompts.md): the registered
/// model is tagged `mlflow.prompt.is_prompt`, and each version carries its template in
/// `mlflow.prompt.text` (a string, or chat messages as JSON), its type in `_mlflow_prompt_type`
/// and its model settings in `_mlflow_prompt_model_config`; the commit message is the version's
/// description. So prompts made with `mlflow.genai.register_prompt` and with Loom's API are the
/// same thing.
public struct PromptContent: Sendable, Equatable {
    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String

        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public enum Template: Sendable, Equatable {
        case text(String)
        case chat([Message])
    }

    public var template: Template
    /// `model_name`, `temperature`, `max_tokens`, `top_p`, ... as given.
    public var modelConfig: [String: JSONValue]

    public static let isPromptTag = "mlflow.prompt.is_prompt"
    public static let textTag = "mlflow.prompt.text"
    public static let typeTag = "_mlflow_prompt_type"
    public static let modelConfigTag = "_mlflow_prompt_model_config"

    public init(template: Template, modelConfig: [String: JSONValue] = [:]) {
        self.template = template
        self.modelConfig = modelConfig
    }

    /// A version's content from its tags (nil: not a prompt version).
    public init?(tags: [Tag]) {
        func tag(_ key: String) -> String? { tags.first { $0.key == key }?.value }
        guard let text = tag(Self.textTag) else { return nil }
        var template = Template.text(text)
        if tag(Self.typeTag) == "chat", let value = try? JSONValue.parse(Array(text.utf8)), let items = value.arrayValue {
            template = .chat(items.map { Message(role: $0["role"]?.stringValue ?? "user", content: $0["content"]?.stringValue ?? "") })
        }
        var config: [String: JSONValue] = [:]
        if let raw = tag(Self.modelConfigTag), let value = try? JSONValue.parse(Array(raw.utf8)), let o = value.objectValue { config = o }
        self.init(template: template, modelConfig: config)
    }

    /// Content from an API body's `template` (text, or a list of `{role, content}`) and
    /// `model_config`.
    public init(template value: JSONValue?, modelConfig: JSONValue?) throws(LoomError) {
        switch value {
        case .string(let s)?:
            guard !s.isEmpty else { throw .invalidParameter("template must not be empty") }
            template = .text(s)
        case .array(let items)?:
            guard !items.isEmpty else { throw .invalidParameter("a chat template lists at least one message") }
            var messages: [Message] = []
            for (i, item) in items.enumerated() {
                guard let role = item["role"]?.stringValue, ["system", "developer", "user", "assistant"].contains(role),
                    let content = item["content"]?.stringValue
                else { throw .invalidParameter("template[\(i)] must be {role: system|developer|user|assistant, content: text}") }
                messages.append(Message(role: role, content: content))
            }
            template = .chat(messages)
        default:
            throw .invalidParameter("template is required: text with {{variables}}, or a list of {role, content} messages")
        }
        switch modelConfig {
        case nil, .null?: self.modelConfig = [:]
        case .object(let o)?: self.modelConfig = o
        default: throw .invalidParameter("model_config must be an object (model_name, temperature, max_tokens, ...)")
        }
    }

    /// The tags that store this content on a version.
    public var tags: [Tag] {
        // MLflow marks each version as a prompt too (its client ignores versions without the mark).
        var out = [Tag(key: Self.isPromptTag, value: "true"), Tag(key: Self.textTag, value: templateText), Tag(key: Self.typeTag, value: isChat ? "chat" : "text")]
        if !modelConfig.isEmpty { out.append(Tag(key: Self.modelConfigTag, value: JSONValue.object(modelConfig).jsonString)) }
        return out
    }

    public var isChat: Bool {
        if case .chat = template { return true }
        return false
    }

    /// The template as stored (chat messages as JSON), and as diffed.
    public var templateText: String {
        switch template {
        case .text(let s): return s
        case .chat(let messages):
            return JSONValue.array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) }).jsonString
        }
    }

    /// The template as people read it: chat messages one per block, `role:` first.
    public var readableText: String {
        switch template {
        case .text(let s): return s
        case .chat(let messages): return messages.map { "\($0.role):\n\($0.content)" }.joined(separator: "\n\n")
        }
    }

    /// The `{{variables}}` the template uses, in order of first use.
    public var variables: [String] {
        var seen: [String] = []
        let texts: [String] = switch template {
        case .text(let s): [s]
        case .chat(let messages): messages.map(\.content)
        }
        for t in texts {
            for v in PromptTemplate.variables(in: t) where !seen.contains(v) { seen.append(v) }
        }
        return seen
    }

    /// The messages the template renders to with `values` (a text template is one message,
    /// `textRole`'s); every variable must have a value.
    public func render(_ values: [String: JSONValue], textRole: String = "user") throws(LoomError) -> [Message] {
        let missing = variables.filter { values[$0] == nil }
        guard missing.isEmpty else {
            throw .invalidParameter("The prompt needs values for: \(missing.joined(separator: ", ")) (it uses \(variables.joined(separator: ", ")))")
        }
        switch template {
        case .text(let s): return [Message(role: textRole, content: PromptTemplate.fill(s, values))]
        case .chat(let messages): return messages.map { Message(role: $0.role, content: PromptTemplate.fill($0.content, values)) }
        }
    }
}

/// `{{ name }}` placeholders, as MLflow writes them: a name of letters, digits and `_` (not
/// starting with a digit), dotted parts allowed, spaces inside the braces allowed.
public enum PromptTemplate {
    /// Each placeholder: its byte range and its name.
    static func placeholders(in text: String) -> [(range: Range<Int>, name: String)] {
        let b = Array(text.utf8)
        var out: [(Range<Int>, String)] = []
        var i = 0
        func isStart(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A || c == 0x5F }
        func isPart(_ c: UInt8) -> Bool { isStart(c) || (c >= 0x30 && c <= 0x39) }
        while i + 3 < b.count {
            guard b[i] == 0x7B, b[i + 1] == 0x7B else {
                i += 1
                continue
            }
            var j = i + 2
            while j < b.count, Self.isSpace(b[j]) { j += 1 }
            let nameStart = j
            var valid = j < b.count && isStart(b[j])
            while valid, j < b.count {
                if isPart(b[j]) {
                    j += 1
                } else if b[j] == 0x2E, j + 1 < b.count, isStart(b[j + 1]) {
                    j += 1
                } else {
                    break
                }
            }
            let nameEnd = j
            while j < b.count, Self.isSpace(b[j]) { j += 1 }
            valid = valid && j + 1 < b.count && b[j] == 0x7D && b[j + 1] == 0x7D
            if valid {
                out.append((i..<(j + 2), String(decoding: b[nameStart..<nameEnd], as: UTF8.self)))
                i = j + 2
            } else {
                i += 1
            }
        }
        return out
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C }

    public static func variables(in text: String) -> [String] {
        var seen: [String] = []
        for p in placeholders(in: text) where !seen.contains(p.name) { seen.append(p.name) }
        return seen
    }

    /// The text with each placeholder replaced by its value (text as it is, other JSON values as
    /// JSON); placeholders without a value are left as they are.
    public static func fill(_ text: String, _ values: [String: JSONValue]) -> String {
        let found = placeholders(in: text)
        guard !found.isEmpty else { return text }
        let b = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var at = 0
        for (range, name) in found {
            out.append(contentsOf: b[at..<range.lowerBound])
            switch values[name] {
            case .string(let s)?: out.append(contentsOf: s.utf8)
            case let v?: v.write(into: &out)
            case nil: out.append(contentsOf: b[range])
            }
            at = range.upperBound
        }
        out.append(contentsOf: b[at...])
        return String(decoding: out, as: UTF8.self)
    }
}

/// A line diff between two texts (longest common subsequence), as unified-diff hunks.
public enum TextDiff {
    public enum Line: Sendable, Equatable {
        case same(String)
        case removed(String)
        case added(String)
    }

    public static func lines(_ old: String, _ new: String) -> [Line] {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Prompts are short: the quadratic table is fine (capped so a huge one cannot hurt).
        guard a.count * b.count <= 4_000_000 else { return a.map(Line.removed) + b.map(Line.added) }
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var out: [Line] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append(.same(a[i]))
                i += 1
                j += 1
            } else if i < a.count, j == b.count || lcs[i + 1][j] >= lcs[i][j + 1] {
                out.append(.removed(a[i]))
                i += 1
            } else {
                out.append(.added(b[j]))
                j += 1
            }
        }
        return out
    }

    /// `--- old` / `+++ new` and `@@` hunks with `context` lines around each change.
    public static func unified(_ old: String, _ new: String, oldLabel: String, newLabel: String, context: Int = 3) -> String {
        let diff = lines(old, new)
        guard diff.contains(where: { if case .same = $0 { return false } else { return true } }) else { return "" }
        var out = ["--- \(oldLabel)", "+++ \(newLabel)"]
        var changed: [Int] = []
        for (k, l) in diff.enumerated() { if case .same = l {} else { changed.append(k) } }
        var k = 0
        while k < changed.count {
            var start = max(changed[k] - context, 0)
            var end = min(changed[k] + context, diff.count - 1)
            while k + 1 < changed.count, changed[k + 1] - context <= end + 1 {
                k += 1
                end = min(changed[k] + context, diff.count - 1)
            }
            start = max(start, 0)
            // Line numbers of the hunk in each text.
            var oldLine = 1, newLine = 1
            for l in diff[..<start] {
                switch l {
                case .same: oldLine += 1; newLine += 1
                case .removed: oldLine += 1
                case .added: newLine += 1
                }
            }
            let hunk = diff[start...end]
            let oldCount = hunk.filter { if case .added = $0 { return false } else { return true } }.count
            let newCount = hunk.filter { if case .removed = $0 { return false } else { return true } }.count
            out.append("@@ -\(oldLine),\(oldCount) +\(newLine),\(newCount) @@")
            for l in hunk {
                switch l {
                case .same(let s): out.append(" " + s)
                case .removed(let s): out.append("-" + s)
                case .added(let s): out.append("+" + s)
                }
            }
            k += 1
        }
        return out.joined(separator: "\n") + "\n"
    }
}

/// Which version of a prompt a reference means: `name@alias`, `name@3`, or `name` (the latest).
public struct PromptReference: Sendable, Equatable, Codable, CustomStringConvertible {
    public var name: String
    public var alias: String?
    public var version: String?

    public init(name: String, alias: String? = nil, version: String? = nil) {
        self.name = name
        self.alias = alias
        self.version = version
    }

    public init(parsing text: String) throws(LoomError) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let name = parts.first, !name.isEmpty else { throw .invalidParameter("A prompt reference is NAME, NAME@ALIAS or NAME@VERSION, not '\(text)'") }
        self.name = name
        if parts.count == 2 {
            guard !parts[1].isEmpty else { throw .invalidParameter("A prompt reference is NAME, NAME@ALIAS or NAME@VERSION, not '\(text)'") }
            if let n = Int(parts[1]), n > 0 { version = String(n) } else { alias = parts[1] }
        }
    }

    public var description: String { name + (alias.map { "@" + $0 } ?? version.map { "@" + $0 } ?? "") }
}

/// A prompt version as the gateway uses it.
public struct ResolvedPrompt: Sendable {
    public var name: String
    public var version: String
    public var content: PromptContent

    public init(name: String, version: String, content: PromptContent) {
        self.name = name
        self.version = version
        self.content = content
    }
}

/// Finds prompt versions for the gateway (the registry lives in the tracking layer).
public protocol PromptSource: Sendable {
    func prompt(_ reference: PromptReference, workspace: String) async throws -> ResolvedPrompt
}
