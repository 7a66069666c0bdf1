import Crypto
import Foundation
import Logging
import LoomArtifacts
import LoomCore
import LoomData
import LoomSpec
import LoomStore
import Synchronization

/// Embeds texts through a route: the gateway, in the server and the CLI.
public protocol TextEmbedder: Sendable {
    /// One vector per text, in order.
    func embed(_ texts: [String], route: String, workspace: String) async throws -> [[Float]]
}

/// How a query finds chunks.
public enum RetrievalMode: String, Sendable, Codable, CaseIterable {
    /// Okapi BM25 over the chunks' words: needs no provider.
    case bm25
    /// Cosine similarity of the query's embedding to the chunks' (HNSW).
    case vector
    /// Both, fused by reciprocal rank (k = 60).
    case hybrid
}

/// A chunk a query found.
public struct IndexHit: Sendable, Codable, Equatable {
    public var chunk: Int
    public var score: Double
    public var source: String
    public var title: String
    public var heading: String?
    public var ordinal: Int
    public var text: String
    public var metadata: [String: String]
    /// Its rank (1-based) in the BM25 and the vector results, when it was in them.
    public var bm25Rank: Int?
    public var vectorRank: Int?
}

/// What a build did.
public struct IndexBuild: Sendable {
    public var version: IndexVersion
    /// False when nothing changed since the latest version (which is returned, not a new one).
    public var changed: Bool
    public var reusedDocuments: Int
    public var parsedDocuments: Int
    public var embeddedChunks: Int
    public var problems: [String]
}

/// How far an index is behind its sources.
public struct IndexStatus: Sendable {
    public var latest: IndexVersion?
    /// Files added or changed since the latest version, and files removed.
    public var changed: [String]
    public var removed: [String]
    /// Seconds since the newest source change not yet indexed (0: none).
    public var stalenessSeconds: Double
}

/// Grounding indexes (docs/indexes.md): specs applied by name, immutable versions built from
/// source folders, and queries by BM25, vector or hybrid retrieval with metadata filters.
/// Versions live in the artifact store (`indexes/<workspace>/<name>/<build>/`) and are loaded
/// on first use; the most recently used stay in memory.
public final class IndexService: Sendable {
    let store: any MetadataStore
    let artifacts: any ArtifactStore
    let embedder: (any TextEmbedder)?
    /// Where a server reads sources from (`LOOM_SOURCES_ROOT`); nil: only builds given a root.
    public let sourcesRoot: String?
    let logger: Logger
    let loaded = Mutex<[String: (index: LoadedIndex, used: UInt64)]>([:])
    let useClock = Atomic<UInt64>(0)
    /// Loaded versions kept.
    let keep: Int
    /// When each scheduled index builds next (by workspace, name and cron expression).
    let schedule = Mutex<[String: Date?]>([:])
    /// Who this service is to the schedules' leases (replicas sharing a store build each tick once).
    let owner = "indexes-" + UUID().uuidString.prefix(12).lowercased()

    public init(
        store: any MetadataStore, artifacts: any ArtifactStore, embedder: (any TextEmbedder)?, sourcesRoot: String?, logger: Logger, keep: Int = 8
    ) {
        self.store = store
        self.artifacts = artifacts
        self.embedder = embedder
        self.sourcesRoot = sourcesRoot
        self.logger = logger
        self.keep = keep
    }

    // MARK: Specs

    public func apply(yaml: String, workspace: String, actor: String) async throws -> (GroundingIndex, changed: Bool) {
        let spec = try IndexSpec.parse(yaml: yaml)
        let now = Clock.nowMillis()
        return try await store.applyGroundingIndex(GroundingIndex(
            workspace: workspace, name: spec.name, specText: yaml, createdBy: actor, creationTime: now, lastUpdatedTime: now))
    }

    public func index(workspace: String, name: String) async throws -> (GroundingIndex, IndexSpec) {
        guard let index = try await store.groundingIndex(workspace: workspace, name: name) else {
            throw LoomError.notFound("No index named \(name) in workspace \(workspace)")
        }
        return (index, try IndexSpec.parse(yaml: index.specText))
    }

    /// The latest version that built.
    public func latest(workspace: String, name: String) async throws -> IndexVersion? {
        try await store.indexVersions(workspace: workspace, index: name).first { $0.status == .ready }
    }

    /// The workspace's indexes with their latest built version, by name.
    public func list(workspace: String) async throws -> [(index: GroundingIndex, latest: IndexVersion?)] {
        var out: [(GroundingIndex, IndexVersion?)] = []
        for i in try await store.groundingIndexes(workspace: workspace) {
            out.append((i, try await latest(workspace: workspace, name: i.name)))
        }
        return out
    }

    /// An index's versions, newest first (failed builds included).
    public func versions(workspace: String, name: String) async throws -> [IndexVersion] {
        _ = try await index(workspace: workspace, name: name)
        return try await store.indexVersions(workspace: workspace, index: name)
    }

    /// One version with its documents.
    public func version(workspace: String, name: String, number: Int64) async throws -> (IndexVersion, [IndexDocument]) {
        guard let version = try await store.indexVersion(workspace: workspace, index: name, version: number) else {
            throw LoomError.notFound("Index \(name) has no version \(number)")
        }
        return (version, try await store.indexDocuments(workspace: workspace, index: name, version: number))
    }

    // MARK: Build

    /// Builds a new version from the sources under `root` (the server's sources root when nil):
    /// files whose digest is unchanged since the latest version keep their chunks and vectors;
    /// the rest are parsed, chunked and embedded. Nothing changed: the latest version, as it is.
    public func build(workspace: String, name: String, actor: String, root: String? = nil) async throws -> IndexBuild {
        let started = ContinuousClock.now
        let (index, spec) = try await index(workspace: workspace, name: name)
        guard let root = root ?? sourcesRoot else {
            throw LoomError.invalidParameter(
                "This server reads no source folders: start it with LOOM_SOURCES_ROOT set to the folder the index sources are under")
        }
        if spec.embeddings != nil, embedder == nil { throw LoomError.unavailable("Index \(name) embeds its chunks, and no gateway is available here") }
        let fingerprint = Self.fingerprint(spec)
        let previous = try await latest(workspace: workspace, name: name)
        var reusable: LoadedIndex?
        if let previous, (try? Self.details(previous))?["fingerprint"]?.stringValue == fingerprint {
            reusable = try? await load(previous)
        }

        let (files, sourceProblems) = IndexSources(root: root).files(spec.sources)
        var problems = sourceProblems
        var documents: [IndexContent.Document] = []
        var chunks: [IndexContent.Chunk] = []
        var vectors: [[Float]?] = []
        var reused = 0, parsed = 0
        let previousByFile = reusable.map(Self.documentsByFile) ?? [:]
        for file in files {
            let bytes: [UInt8], digest: String
            do {
                (bytes, digest) = try IndexSources.read(file)
            } catch {
                problems.append("\(file.path): \((error as? LoomError)?.message ?? "cannot be read: \(error)")")
                continue
            }
            if let reusable, let kept = previousByFile[file.path], kept.digest == digest {
                for d in kept.documents {
                    let position = documents.count
                    documents.append(reusable.content.documents[d])
                    for c in reusable.chunksOf[d] {
                        var chunk = reusable.content.chunks[c]
                        chunk.document = position
                        chunks.append(chunk)
                        vectors.append(reusable.vector(c))
                    }
                }
                reused += kept.documents.count
                continue
            }
            let result = DocumentParser(jsonlTextField: file.textField).parse(bytes, path: file.path)
            problems += result.problems.map(\.description)
            for doc in result.documents {
                let position = documents.count
                documents.append(IndexContent.Document(source: doc.source, digest: digest, title: doc.title, metadata: doc.metadata, modifiedTime: file.modified))
                for piece in Chunker.chunk(doc.text, strategy: spec.chunking) {
                    chunks.append(IndexContent.Chunk(document: position, ordinal: piece.ordinal, text: piece.text, heading: piece.heading))
                    vectors.append(nil)
                }
                parsed += 1
            }
        }
        guard !documents.isEmpty else {
            throw LoomError.invalidParameter("Index \(name): its sources hold no readable documents" + (problems.isEmpty ? "" : " (\(problems.prefix(5).joined(separator: "; ")))"))
        }

        let v = spec.vector
        let contentDigest = Self.contentDigest(documents, fingerprint: fingerprint + "|\(v.m),\(v.efConstruction),\(v.efSearch),\(v.seed)")
        if let previous, previous.contentDigest == contentDigest {
            return IndexBuild(version: previous, changed: false, reusedDocuments: reused, parsedDocuments: parsed, embeddedChunks: 0, problems: problems)
        }

        var embedded = 0
        var dimension = 0
        if let e = spec.embeddings, let embedder {
            let missing = vectors.indices.filter { vectors[$0] == nil }
            var start = 0
            while start < missing.count {
                let batch = Array(missing[start..<min(start + e.batch, missing.count)])
                start += batch.count
                let out: [[Float]]
                do {
                    out = try await embedder.embed(batch.map { chunks[$0].text }, route: e.route, workspace: workspace)
                } catch {
                    let message = "embedding chunks through route \(e.route) failed: \((error as? LoomError)?.message ?? "\(error)")"
                    _ = try? await store.addIndexVersion(
                        IndexVersion(workspace: workspace, index: name, specVersion: index.version, status: .failed, createdBy: actor,
                                     creationTime: Clock.nowMillis(), error: message), documents: [])
                    throw LoomError(.badGateway, "Index \(name): \(message)")
                }
                guard out.count == batch.count else { throw LoomError(.badGateway, "Index \(name): route \(e.route) answered \(out.count) vectors for \(batch.count) texts") }
                for (i, v) in zip(batch, out) { vectors[i] = v }
                embedded += batch.count
            }
            dimension = vectors.first??.count ?? 0
            guard dimension > 0, vectors.allSatisfy({ $0?.count == dimension }) else {
                throw LoomError(.badGateway, "Index \(name): route \(e.route) answered vectors of different lengths (a changed embedding model needs a changed spec)")
            }
        }

        // The indexes are built on a thread of their own: a large build takes minutes of CPU,
        // which must not hold one of the cooperative pool's few threads.
        let content = IndexContent(documents: documents, chunks: chunks)
        var chosen = spec.vector
        // Left out of the spec, ef_search grows with the index (recall at a fixed ef falls as it grows).
        if spec.automaticEfSearch { chosen.efSearch = HNSWParameters.automaticEfSearch(count: content.chunks.count) }
        let parameters = chosen
        let (allVectors, width) = (vectors, dimension)
        let built = try await DataWork.run { () throws -> (bm25: BM25Index, hnsw: HNSWIndex?, recall: (value: Double, sample: Int)?, files: [(String, [UInt8])]) in
            var bm25Builder = BM25Builder()
            for c in content.chunks { _ = bm25Builder.add(terms: TextTokenizer.terms(c.text)) }
            let bm25 = bm25Builder.build()
            var hnsw: HNSWIndex?
            var recall: (value: Double, sample: Int)?
            if width > 0 {
                var graph = try HNSWIndex(dimension: width, parameters: parameters)
                for v in allVectors { _ = try graph.add(v ?? []) }
                hnsw = graph
                recall = Self.recall(graph)
            }
            var files = [("content.bin", content.serialized()), ("bm25.bin", bm25.serialized())]
            if let hnsw { files.append(("hnsw.bin", hnsw.serialized())) }
            return (bm25, hnsw, recall, files)
        }
        let (bm25, hnsw, recall) = (built.bm25, built.hnsw, built.recall)
        let buildID = Identifiers.newHexID()
        let folder = "indexes/\(workspace)/\(name)/\(buildID)"
        for (file, bytes) in built.files { _ = try await artifacts.write(try ArtifactPath(folder + "/" + file), bytes: bytes) }

        let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
        var build: [String: JSONValue] = [
            "seconds": .number(seconds, raw: nil), "reused_documents": .int(Int64(reused)), "parsed_documents": .int(Int64(parsed)),
            "embedded_chunks": .int(Int64(embedded)),
        ]
        if let recall {
            build["recall_at_10"] = .number(recall.value, raw: nil)
            build["recall_sample"] = .int(Int64(recall.sample))
        }
        let details: JSONValue = .object([
            "fingerprint": .string(fingerprint),
            "chunking": Self.chunkingJSON(spec.chunking),
            "embeddings": spec.embeddings.map { .object(["route": .string($0.route), "dimension": .int(Int64(dimension))]) } ?? .null,
            "vector": .object([
                "m": .int(Int64(parameters.m)), "ef_construction": .int(Int64(parameters.efConstruction)), "ef_search": .int(Int64(parameters.efSearch)),
                "ef_search_automatic": .bool(spec.automaticEfSearch),
            ]),
            "build": .object(build),
            "problems": .array(problems.prefix(200).map { .string($0) }),
        ])
        var chunkCounts: [Int: Int64] = [:]
        for c in chunks { chunkCounts[c.document, default: 0] += 1 }
        let rows = documents.enumerated().map { i, d in
            IndexDocument(source: d.source, digest: d.digest, title: d.title, metadata: d.metadata, chunks: chunkCounts[i] ?? 0, modifiedTime: d.modifiedTime)
        }
        let version = try await store.addIndexVersion(
            IndexVersion(
                workspace: workspace, index: name, specVersion: index.version, status: .ready, createdBy: actor, creationTime: Clock.nowMillis(),
                documents: Int64(documents.count), chunks: Int64(chunks.count), contentDigest: contentDigest, artifactPath: folder,
                details: details.jsonString, newestSourceTime: documents.map(\.modifiedTime).max()),
            documents: rows)
        remember(LoadedIndex(content: content, bm25: bm25, hnsw: hnsw, embeddingRoute: spec.embeddings?.route), key: Self.key(version))
        logger.info("index \(workspace)/\(name) version \(version.version): \(documents.count) documents, \(chunks.count) chunks (\(reused) reused, \(parsed) parsed, \(embedded) embedded)")
        return IndexBuild(version: version, changed: true, reusedDocuments: reused, parsedDocuments: parsed, embeddedChunks: embedded, problems: problems)
    }

    /// What must match for a version's chunks and vectors to be reused: the chunking and the
    /// embedding route.
    static func fingerprint(_ spec: IndexSpec) -> String {
        "\(chunkingJSON(spec.chunking).jsonString)|\(spec.embeddings?.route ?? "")"
    }

    public static func chunkingJSON(_ c: ChunkingStrategy) -> JSONValue {
        switch c {
        case .tokens(let size, let overlap): .object(["strategy": .string("tokens"), "size": .int(Int64(size)), "overlap": .int(Int64(overlap))])
        case .headings(let max): .object(["strategy": .string("headings"), "max_tokens": .int(Int64(max))])
        case .sentences(let max, let overlap): .object(["strategy": .string("sentences"), "max_tokens": .int(Int64(max)), "overlap_sentences": .int(Int64(overlap))])
        }
    }

    static func contentDigest(_ documents: [IndexContent.Document], fingerprint: String) -> String {
        var bytes = Array((fingerprint + "\n").utf8)
        for d in documents { bytes += Array("\(d.source)\t\(d.digest)\n".utf8) }
        return "sha256:" + Identifiers.hex(bytes: SHA256.hash(data: bytes))
    }

    static func details(_ version: IndexVersion) throws -> JSONValue {
        try JSONValue.parse(Array(version.details.utf8))
    }

    /// A loaded version's documents grouped by the file they came from (a JSON Lines file's
    /// records share it), with the file's digest.
    static func documentsByFile(_ index: LoadedIndex) -> [String: (digest: String, documents: [Int])] {
        var out: [String: (digest: String, documents: [Int])] = [:]
        for (i, d) in index.content.documents.enumerated() {
            let file = d.source.firstIndex(of: "#").map { String(d.source[..<$0]) } ?? d.source
            out[file, default: (d.digest, [])].documents.append(i)
        }
        return out
    }

    /// HNSW's recall@10 against exact search, over up to 100 of the index's own vectors as
    /// queries. The exact search reads the graph's own (normalised) vectors: no second copy.
    static func recall(_ graph: HNSWIndex) -> (Double, Int) {
        let n = graph.count, d = graph.dimension
        let sample = min(100, n)
        guard sample > 0 else { return (1, 0) }
        var found = 0, wanted = 0
        graph.vectors.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { return }
            for q in 0..<sample {
                let query = (q * 7919) % n
                let v = Array(all[(query * d)..<((query + 1) * d)])
                var best: [(score: Float, id: Int)] = []
                v.withUnsafeBufferPointer { qp in
                    guard let qb = qp.baseAddress else { return }
                    for i in 0..<n {
                        let score = VectorMath.dot(qb, base + i * d, count: d)
                        if best.count < 10 || score > best[best.count - 1].score {
                            let at = best.firstIndex { $0.score < score } ?? best.count
                            best.insert((score, i), at: at)
                            if best.count > 10 { best.removeLast() }
                        }
                    }
                }
                let got = Set(graph.search(v, k: 10).map(\.id))
                found += best.filter { got.contains($0.id) }.count
                wanted += best.count
            }
        }
        return (wanted == 0 ? 1 : Double(found) / Double(wanted), sample)
    }

    // MARK: Query

    /// The `k` chunks of a version (the latest when nil) that best match `text`. `efSearch`
    /// replaces the version's candidate list size for this query (vector and hybrid modes).
    public func query(
        workspace: String, name: String, text: String, mode: RetrievalMode, k: Int, filter: MetadataFilter? = nil, version: Int64? = nil,
        efSearch: Int? = nil
    ) async throws -> (version: IndexVersion, hits: [IndexHit]) {
        guard (1...1000).contains(k) else { throw LoomError.invalidParameter("k must be from 1 to 1000") }
        if let efSearch, !(1...10_000).contains(efSearch) { throw LoomError.invalidParameter("ef_search must be from 1 to 10000") }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw LoomError.invalidParameter("The query text is empty") }
        let chosen: IndexVersion
        if let version {
            guard let v = try await store.indexVersion(workspace: workspace, index: name, version: version), v.status == .ready else {
                throw LoomError.notFound("Index \(name) has no built version \(version)")
            }
            chosen = v
        } else {
            guard try await store.groundingIndex(workspace: workspace, name: name) != nil else {
                throw LoomError.notFound("No index named \(name) in workspace \(workspace)")
            }
            guard let v = try await latest(workspace: workspace, name: name) else {
                throw LoomError.invalidState("Index \(name) has no built version yet: build it first (loom index build \(name))")
            }
            chosen = v
        }
        let index = try await load(chosen)
        let allow: ((Int) -> Bool)? = filter.map { f in { id in f.matches(index.metadata[index.content.chunks[id].document]) } }
        let wide = mode == .hybrid ? max(k * 4, 50) : k
        var lexical: [ScoredHit] = []
        var semantic: [ScoredHit] = []
        if mode != .vector {
            lexical = index.bm25.search(TextTokenizer.terms(text), k: wide, allow: allow)
        }
        if mode != .bm25 {
            guard let hnsw = index.hnsw, let route = index.embeddingRoute else {
                throw LoomError.invalidParameter("Index \(name) version \(chosen.version) has no embeddings: query it with mode bm25, or add embeddings to its spec")
            }
            guard let embedder else { throw LoomError.unavailable("No gateway is available here to embed the query") }
            let vector: [Float]
            do {
                guard let first = try await embedder.embed([text], route: route, workspace: workspace).first else { throw LoomError(.badGateway, "no vector") }
                vector = first
            } catch {
                throw LoomError(.badGateway, "Embedding the query through route \(route) failed: \((error as? LoomError)?.message ?? "\(error)")")
            }
            guard vector.count == hnsw.dimension else {
                throw LoomError(.badGateway, "Route \(route) answered a vector of \(vector.count) numbers; the index holds \(hnsw.dimension): rebuild it")
            }
            semantic = hnsw.search(vector, k: wide, ef: efSearch, allow: allow)
        }
        let ranked: [ScoredHit]
        switch mode {
        case .bm25: ranked = lexical
        case .vector: ranked = semantic
        case .hybrid: ranked = ReciprocalRankFusion.fuse([lexical.map(\.id), semantic.map(\.id)], limit: k)
        }
        var lexicalRank: [Int: Int] = [:], semanticRank: [Int: Int] = [:]
        for (i, h) in lexical.enumerated() { lexicalRank[h.id] = i + 1 }
        for (i, h) in semantic.enumerated() { semanticRank[h.id] = i + 1 }
        let hits = ranked.prefix(k).map { h in
            let c = index.content.chunks[h.id]
            let d = index.content.documents[c.document]
            return IndexHit(
                chunk: h.id, score: h.score, source: d.source, title: d.title, heading: c.heading, ordinal: c.ordinal, text: c.text, metadata: d.metadata,
                bm25Rank: lexicalRank[h.id], vectorRank: semanticRank[h.id])
        }
        return (chosen, hits)
    }

    // MARK: Status

    /// The latest version and the source changes it does not hold yet.
    public func status(workspace: String, name: String, root: String? = nil) async throws -> IndexStatus {
        let (_, spec) = try await index(workspace: workspace, name: name)
        let latest = try await latest(workspace: workspace, name: name)
        guard let root = root ?? sourcesRoot else { return IndexStatus(latest: latest, changed: [], removed: [], stalenessSeconds: 0) }
        let (files, _) = IndexSources(root: root).files(spec.sources)
        var held: [String: (digest: String, modified: Millis)] = [:]
        if let latest {
            for d in try await store.indexDocuments(workspace: workspace, index: name, version: latest.version) {
                let file = d.source.firstIndex(of: "#").map { String(d.source[..<$0]) } ?? d.source
                held[file] = (d.digest, d.modifiedTime)
            }
        }
        var changed: [String] = []
        var newest: Millis?
        for f in files {
            if let h = held[f.path] {
                if h.modified == f.modified { continue }
                if let (_, digest) = try? IndexSources.read(f), digest == h.digest { continue }
            }
            changed.append(f.path)
            newest = max(newest ?? f.modified, f.modified)
        }
        let present = Set(files.map(\.path))
        let removed = held.keys.filter { !present.contains($0) }.sorted()
        let now = Clock.nowMillis()
        var staleness = newest.map { max(0, Double(now - $0) / 1000) } ?? 0
        if !removed.isEmpty, newest == nil { staleness = 0 }
        return IndexStatus(latest: latest, changed: changed, removed: removed, stalenessSeconds: staleness)
    }

    public func delete(workspace: String, name: String) async throws {
        let versions = try await store.indexVersions(workspace: workspace, index: name)
        guard try await store.deleteGroundingIndex(workspace: workspace, name: name) else {
            throw LoomError.notFound("No index named \(name) in workspace \(workspace)")
        }
        for v in versions where !v.artifactPath.isEmpty {
            try? await artifacts.delete(try ArtifactPath(v.artifactPath))
        }
        loaded.withLock { all in all = all.filter { !$0.key.hasPrefix("\(workspace)\u{1F}\(name)\u{1F}") } }
    }

    // MARK: Schedules

    /// Builds the indexes whose `schedule` fired since the last call (the first call only
    /// notes when each fires next). A build with no source change records nothing. Returns
    /// the builds that made a new version.
    @discardableResult
    public func refreshDue(now: Date = Date()) async -> [IndexVersion] {
        guard sourcesRoot != nil, let all = try? await store.groundingIndexes(workspace: nil) else { return [] }
        var due: [GroundingIndex] = []
        schedule.withLock { next in
            var seen: Set<String> = []
            for index in all {
                guard let cron = (try? IndexSpec.parse(yaml: index.specText))?.schedule else { continue }
                let key = "\(index.workspace)\u{1F}\(index.name)\u{1F}\(cron.expression)"
                seen.insert(key)
                if let entry = next[key] {
                    guard let at = entry, at <= now else { continue }
                    due.append(index)
                }
                next[key] = cron.next(after: now)
            }
            next = next.filter { seen.contains($0.key) }
        }
        var built: [IndexVersion] = []
        let nowMillis = Millis((now.timeIntervalSince1970 * 1000).rounded())
        for index in due {
            do {
                // One replica builds at each tick: the lease lasts until just before the next one (an hour at most).
                let next = (try? IndexSpec.parse(yaml: index.specText))?.schedule?.next(after: now)
                let until = min(nowMillis + 3_600_000, next.map { Millis(($0.timeIntervalSince1970 * 1000).rounded()) - 1000 } ?? nowMillis + 60_000)
                guard try await store.leaseIndexSchedule(workspace: index.workspace, name: index.name, owner: owner, until: max(until, nowMillis + 1000), now: nowMillis)
                else {
                    logger.debug("index \(index.workspace)/\(index.name): another replica builds this tick")
                    continue
                }
                let result = try await build(workspace: index.workspace, name: index.name, actor: "schedule")
                if result.changed { built.append(result.version) }
            } catch {
                logger.warning("index \(index.workspace)/\(index.name): scheduled build failed: \((error as? LoomError)?.message ?? "\(error)")")
            }
        }
        return built
    }

    // MARK: Loading

    static func key(_ v: IndexVersion) -> String { "\(v.workspace)\u{1F}\(v.index)\u{1F}\(v.version)" }

    func load(_ version: IndexVersion) async throws -> LoadedIndex {
        let key = Self.key(version)
        let tick = useClock.add(1, ordering: .relaxed).newValue
        if let hit = loaded.withLock({ all -> LoadedIndex? in
            guard let entry = all[key] else { return nil }
            all[key] = (entry.index, tick)
            return entry.index
        }) {
            return hit
        }
        let folder = version.artifactPath
        do {
            let content = try IndexContent(serialized: try await artifacts.readAll(try ArtifactPath(folder + "/content.bin"), limit: Int.max))
            let bm25 = try BM25Index(serialized: try await artifacts.readAll(try ArtifactPath(folder + "/bm25.bin"), limit: Int.max))
            let route = (try? Self.details(version))?["embeddings"]?["route"]?.stringValue
            var hnsw: HNSWIndex?
            if route != nil {
                hnsw = try HNSWIndex(serialized: try await artifacts.readAll(try ArtifactPath(folder + "/hnsw.bin"), limit: Int.max))
            }
            let index = LoadedIndex(content: content, bm25: bm25, hnsw: hnsw, embeddingRoute: route)
            remember(index, key: key)
            return index
        } catch let error as LoomError {
            throw error
        } catch {
            throw LoomError.internalError("Index \(version.index) version \(version.version) cannot be read from the artifact store: \(error)")
        }
    }

    func remember(_ index: LoadedIndex, key: String) {
        let tick = useClock.add(1, ordering: .relaxed).newValue
        loaded.withLock { all in
            all[key] = (index, tick)
            while all.count > keep, let oldest = all.min(by: { $0.value.used < $1.value.used })?.key { all[oldest] = nil }
        }
    }
}

/// One version in memory.
final class LoadedIndex: Sendable {
    let content: IndexContent
    let bm25: BM25Index
    let hnsw: HNSWIndex?
    let embeddingRoute: String?
    /// Each document's metadata with its `source` and `title` (what filters match).
    let metadata: [[String: String]]
    /// Each document's chunks, in order.
    let chunksOf: [[Int]]

    init(content: IndexContent, bm25: BM25Index, hnsw: HNSWIndex?, embeddingRoute: String?) {
        self.content = content
        self.bm25 = bm25
        self.hnsw = hnsw
        self.embeddingRoute = embeddingRoute
        metadata = content.documents.map { d in
            var m = d.metadata
            if m["source"] == nil { m["source"] = d.source }
            if m["title"] == nil { m["title"] = d.title }
            return m
        }
        var groups = [[Int]](repeating: [], count: content.documents.count)
        for (i, c) in content.chunks.enumerated() { groups[c.document].append(i) }
        chunksOf = groups
    }

    /// A chunk's stored (normalised) vector.
    func vector(_ chunk: Int) -> [Float]? {
        guard let hnsw else { return nil }
        let d = hnsw.dimension
        return Array(hnsw.vectors[(chunk * d)..<((chunk + 1) * d)])
    }
}
