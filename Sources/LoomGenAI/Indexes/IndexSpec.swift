import Foundation
import LoomCore
import LoomSpec
import Yams

/// A grounding index as written in YAML (`kind: index`, docs/indexes.md): where its documents
/// come from, how they are cut into chunks, and (optionally) the gateway route that embeds them
/// for vector search. Every build is a new immutable version.
public struct IndexSpec: Sendable, Equatable {
    /// A folder (or one file) of documents.
    public struct Source: Sendable, Equatable {
        /// Relative to the sources root (a server's `LOOM_SOURCES_ROOT`, or the folder the CLI
        /// builds from); never `..` or absolute.
        public var path: String
        /// Glob patterns over paths relative to `path` (`**` crosses folders); empty: every
        /// file of a readable format.
        public var include: [String]
        public var exclude: [String]
        /// The field of a JSON Lines record that holds its text.
        public var textField: String
    }

    public struct Embeddings: Sendable, Equatable {
        /// An embeddings route of the gateway, in the index's workspace.
        public var route: String
        /// Texts per embeddings call.
        public var batch: Int
    }

    public var name: String
    public var description: String?
    public var sources: [Source]
    public var chunking: ChunkingStrategy
    public var embeddings: Embeddings?
    public var vector: HNSWParameters
    /// Whether `vector.ef_search` was left to grow with the index
    /// (`HNSWParameters.automaticEfSearch`), rather than given.
    public var automaticEfSearch = true
    /// A cron expression: the server builds a new version when a source changed.
    public var schedule: CronSchedule?

    public static let defaultChunking = ChunkingStrategy.tokens(size: 256, overlap: 32)

    public static func parse(yaml text: String, file: String = "index.yaml") throws(LoomError) -> IndexSpec {
        let reader = IndexSpecReader()
        let spec = reader.read(text)
        let problems = SpecProblem.ordered(reader.problems)
        guard let spec, problems.isEmpty else { throw SpecProblem.error(problems, file: file) }
        return spec
    }

    /// A source path that stays under its root: relative, no `..`, no empty or `.` parts.
    static func isConfined(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\\"), !path.contains("\0") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { $0 != ".." && !$0.isEmpty } || path == "."
    }
}

final class IndexSpecReader: SpecNodeReader {
    var efSearchGiven = false

    func read(_ yaml: String) -> IndexSpec? {
        guard let (root, top) = document(yaml, what: "a mapping with kind: index, name, sources") else { return nil }
        unknownKeys(top, ["kind", "name", "description", "sources", "chunking", "embeddings", "vector", "schedule"], "")
        func value(_ key: String) -> Node? { top.first { $0.key == key }?.value }
        if let kind = value("kind") {
            if text(kind, "kind") != "index" { problem(kind, "kind", "must be index") }
        } else {
            problem(line: root.mark?.line, "kind", "is required (kind: index)")
        }
        var name: String?
        if let node = value("name"), let s = text(node, "name") {
            if Self.isName(s) { name = s } else { problem(node, "name", "must start with a letter and hold letters, digits, _ or - (at most 64)") }
        } else if value("name") == nil {
            problem(line: root.mark?.line, "name", "is required")
        }
        var sources: [IndexSpec.Source] = []
        if let node = value("sources") {
            if let items = node.sequence, !items.isEmpty {
                for (i, item) in items.enumerated() {
                    if let s = source(item, "sources[\(i)]") { sources.append(s) }
                }
            } else {
                problem(node, "sources", "must list at least one source folder or file ({path: docs})")
            }
        } else {
            problem(line: root.mark?.line, "sources", "is required: the folders or files to index")
        }
        let chunking = value("chunking").flatMap { readChunking($0) } ?? IndexSpec.defaultChunking
        let embeddings = value("embeddings").flatMap { readEmbeddings($0) }
        let vector = value("vector").flatMap { readVector($0) } ?? HNSWParameters()
        var schedule: CronSchedule?
        if let node = value("schedule"), let s = text(node, "schedule") {
            do {
                schedule = try CronSchedule(parsing: s)
            } catch {
                problem(node, "schedule", error.message)
            }
        }
        guard let name else { return nil }
        var spec = IndexSpec(
            name: name, description: value("description").flatMap { text($0, "description") }, sources: sources, chunking: chunking,
            embeddings: embeddings, vector: vector, schedule: schedule)
        spec.automaticEfSearch = !efSearchGiven
        return spec
    }

    func source(_ node: Node, _ field: String) -> IndexSpec.Source? {
        if let path = node.scalar?.string {
            guard IndexSpec.isConfined(path) else {
                problem(node, field, "must be a relative path without '..'")
                return nil
            }
            return IndexSpec.Source(path: path, include: [], exclude: [], textField: "text")
        }
        guard let p = pairs(node, field, what: "a path, or a mapping {path, include, exclude, text_field}") else { return nil }
        unknownKeys(p, ["path", "include", "exclude", "text_field"], field)
        func value(_ key: String) -> Node? { p.first { $0.key == key }?.value }
        guard let pathNode = value("path"), let path = text(pathNode, "\(field).path") else {
            problem(value("path") ?? node, "\(field).path", "is required")
            return nil
        }
        guard IndexSpec.isConfined(path) else {
            problem(pathNode, "\(field).path", "must be a relative path without '..'")
            return nil
        }
        func globs(_ key: String) -> [String] {
            guard let n = value(key) else { return [] }
            return (n.sequence ?? [n]).compactMap { text($0, "\(field).\(key)") }
        }
        return IndexSpec.Source(
            path: path, include: globs("include"), exclude: globs("exclude"), textField: value("text_field").flatMap { text($0, "\(field).text_field") } ?? "text")
    }

    func readChunking(_ node: Node) -> ChunkingStrategy? {
        guard let p = pairs(node, "chunking", what: "a mapping {strategy: tokens|headings|sentences, ...}") else { return nil }
        func value(_ key: String) -> Node? { p.first { $0.key == key }?.value }
        func number(_ key: String, _ fallback: Int) -> Int {
            guard let n = value(key) else { return fallback }
            guard let i = int(n) else {
                problem(n, "chunking.\(key)", "must be a whole number")
                return fallback
            }
            return i
        }
        let strategy = value("strategy").flatMap { text($0, "chunking.strategy") } ?? "tokens"
        let result: ChunkingStrategy
        switch strategy {
        case "tokens":
            unknownKeys(p, ["strategy", "size", "overlap"], "chunking")
            let size = number("size", 256)
            result = .tokens(size: size, overlap: number("overlap", min(32, size / 8)))
        case "headings":
            unknownKeys(p, ["strategy", "max_tokens"], "chunking")
            result = .headings(maxTokens: number("max_tokens", 400))
        case "sentences":
            unknownKeys(p, ["strategy", "max_tokens", "overlap_sentences"], "chunking")
            result = .sentences(maxTokens: number("max_tokens", 256), overlapSentences: number("overlap_sentences", 1))
        default:
            problem(value("strategy"), "chunking.strategy", "must be tokens, headings or sentences")
            return nil
        }
        do {
            try result.validate()
        } catch {
            problem(node, "chunking", "\(error)")
            return nil
        }
        return result
    }

    func readEmbeddings(_ node: Node) -> IndexSpec.Embeddings? {
        guard let p = pairs(node, "embeddings", what: "a mapping {route, batch}") else { return nil }
        unknownKeys(p, ["route", "batch"], "embeddings")
        func value(_ key: String) -> Node? { p.first { $0.key == key }?.value }
        guard let routeNode = value("route"), let route = text(routeNode, "embeddings.route") else {
            problem(value("route") ?? node, "embeddings.route", "is required: the gateway's embeddings route")
            return nil
        }
        var batch = 64
        if let n = value("batch") {
            if let i = int(n), (1...2048).contains(i) { batch = i } else { problem(n, "embeddings.batch", "must be a whole number from 1 to 2048") }
        }
        return IndexSpec.Embeddings(route: route, batch: batch)
    }

    func readVector(_ node: Node) -> HNSWParameters? {
        guard let p = pairs(node, "vector", what: "a mapping {m, ef_construction, ef_search}") else { return nil }
        unknownKeys(p, ["m", "ef_construction", "ef_search"], "vector")
        func value(_ key: String) -> Node? { p.first { $0.key == key }?.value }
        var parameters = HNSWParameters()
        for (key, range) in [("m", 2...128), ("ef_construction", 8...4096), ("ef_search", 1...4096)] {
            guard let n = value(key) else { continue }
            guard let i = int(n), range.contains(i) else {
                problem(n, "vector.\(key)", "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                continue
            }
            switch key {
            case "m": parameters.m = i
            case "ef_construction": parameters.efConstruction = i
            default:
                parameters.efSearch = i
                efSearchGiven = true
            }
        }
        return parameters
    }
}
