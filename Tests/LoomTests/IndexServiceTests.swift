import Foundation
import LoomCore
import LoomTesting
import Testing

@testable import LoomGenAI

/// A TEST DOUBLE for a provider's embedding model (none is reachable here): each text becomes
/// the normalised counts of its words hashed into 32 buckets, so texts that share words are
/// near each other. Counts its calls.
final class HashedWordsEmbedder: TextEmbedder, @unchecked Sendable {
    let lock = NSLock()
    var texts = 0
    var failing = false

    func embed(_ texts: [String], route: String, workspace: String) async throws -> [[Float]] {
        let failing = lock.withLock {
            self.texts += texts.count
            return self.failing
        }
        if failing { throw LoomError(.badGateway, "provider down") }
        return texts.map { text in
            var v = [Float](repeating: 0, count: 32)
            for term in TextTokenizer.terms(text) {
                var h: UInt32 = 2166136261
                for b in term.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
                v[Int(h % 32)] += 1
            }
            if v.allSatisfy({ $0 == 0 }) { v[0] = 1 }
            return v
        }
    }
}

@Suite("Grounding indexes")
struct IndexServiceTests {
    static let spec = """
        kind: index
        name: docs
        sources:
          - path: corpus
            exclude: ["drafts/**"]
        chunking: {strategy: headings, max_tokens: 60}
        embeddings: {route: embed, batch: 3}
        """

    func write(_ root: URL, _ path: String, _ text: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func corpus(_ root: URL) throws {
        try write(root, "corpus/install.md", """
            ---
            lang: en
            ---
            # Install
            Download the binary and run loom server to start the tracking server.
            ## Linux
            On Linux install PostgreSQL from Debian packages when you outgrow SQLite.
            """)
        try write(root, "corpus/faq.html", "<html><head><title>FAQ</title><script>var x = 'hidden';</script></head><body><h1>Questions</h1><p>Rollbacks happen when a canary gate fails.</p></body></html>")
        try write(root, "corpus/notes.jsonl", """
            {"text": "Drift monitors compare live traffic with a reference window.", "title": "Drift", "lang": "de"}
            not json at all
            {"text": "Gateway keys are scoped to routes and a workspace.", "title": "Keys", "lang": "en"}
            """)
        try write(root, "corpus/drafts/secret.md", "# Draft\nunfinished thoughts about rollbacks")
        try write(root, "outside.md", "# Outside\nnot a source")
    }

    @Test func buildsQueriesReusesAndReportsStaleness() async throws {
        try await withTestStore(.sqlite) { t, tracking in
            let root = t.directory.appendingPathComponent("sources")
            try corpus(root)
            let embedder = HashedWordsEmbedder()
            let service = IndexService(store: tracking.store, artifacts: tracking.artifacts, embedder: embedder, sourcesRoot: root.path, logger: TestStore.logger)
            let (applied, changed) = try await service.apply(yaml: Self.spec, workspace: Workspace.defaultName, actor: "ann")
            #expect(applied.version == 1 && changed)

            let first = try await service.build(workspace: Workspace.defaultName, name: "docs", actor: "ann")
            #expect(first.changed && first.version.version == 1)
            // install.md (1), faq.html (1), notes.jsonl (2 records; its bad line reported); drafts excluded.
            #expect(first.version.documents == 4)
            #expect(first.parsedDocuments == 4 && first.reusedDocuments == 0)
            #expect(first.problems.contains { $0.contains("notes.jsonl#2") })
            #expect(first.embeddedChunks == Int(first.version.chunks) && embedder.texts == first.embeddedChunks)
            let documents = try await tracking.store.indexDocuments(workspace: Workspace.defaultName, index: "docs", version: 1)
            #expect(documents.map(\.source) == ["corpus/faq.html", "corpus/install.md", "corpus/notes.jsonl#1", "corpus/notes.jsonl#3"])
            #expect(documents.allSatisfy { $0.digest.hasPrefix("sha256:") })
            let details = try JSONValue.parse(Array(first.version.details.utf8))
            #expect(details["build"]?["recall_at_10"]?.doubleValue == 1)

            let lexical = try await service.query(workspace: Workspace.defaultName, name: "docs", text: "postgresql debian", mode: .bm25, k: 3)
            #expect(lexical.hits.first?.source == "corpus/install.md" && lexical.hits.first?.heading == "Install > Linux")
            #expect(!lexical.hits.contains { $0.text.contains("hidden") }, "script text is not indexed")
            let semantic = try await service.query(workspace: Workspace.defaultName, name: "docs", text: "canary gate rollbacks", mode: .vector, k: 1)
            #expect(semantic.hits.first?.source == "corpus/faq.html")
            let hybrid = try await service.query(workspace: Workspace.defaultName, name: "docs", text: "gateway keys routes", mode: .hybrid, k: 2)
            #expect(hybrid.hits.first?.title == "Keys" && hybrid.hits.first?.bm25Rank == 1 && hybrid.hits.first?.vectorRank != nil)
            let german = try await service.query(
                workspace: Workspace.defaultName, name: "docs", text: "traffic keys", mode: .bm25, k: 5, filter: MetadataFilter(["lang": .equals("de")]))
            #expect(german.hits.map(\.title) == ["Drift"])

            // Nothing changed: no new version, nothing embedded again.
            let before = embedder.texts
            let same = try await service.build(workspace: Workspace.defaultName, name: "docs", actor: "ann")
            #expect(!same.changed && same.version.version == 1 && embedder.texts == before)

            // One file changes: only it is parsed and embedded again.
            try await Task.sleep(for: .milliseconds(20))
            try write(root, "corpus/faq.html", "<html><body><h1>Questions</h1><p>Rollbacks happen when a canary gate fails twice.</p></body></html>")
            let pending = try await service.status(workspace: Workspace.defaultName, name: "docs")
            #expect(pending.changed == ["corpus/faq.html"] && pending.removed.isEmpty && pending.stalenessSeconds >= 0)
            let second = try await service.build(workspace: Workspace.defaultName, name: "docs", actor: "ann")
            #expect(second.changed && second.version.version == 2 && second.reusedDocuments == 3 && second.parsedDocuments == 1)
            #expect(embedder.texts - before == second.embeddedChunks && second.embeddedChunks == 1)
            #expect(try await service.status(workspace: Workspace.defaultName, name: "docs").changed.isEmpty)
            let old = try await service.query(workspace: Workspace.defaultName, name: "docs", text: "twice", mode: .bm25, k: 1, version: 1)
            let new = try await service.query(workspace: Workspace.defaultName, name: "docs", text: "twice", mode: .bm25, k: 1)
            #expect(old.hits.isEmpty && new.hits.first?.source == "corpus/faq.html", "version 1 stays what it was")

            // A new service (a restart) reads the versions back from the artifact store.
            let restarted = IndexService(store: tracking.store, artifacts: tracking.artifacts, embedder: embedder, sourcesRoot: root.path, logger: TestStore.logger)
            let again = try await restarted.query(workspace: Workspace.defaultName, name: "docs", text: "canary gate rollbacks", mode: .hybrid, k: 1)
            #expect(again.version.version == 2 && again.hits.first?.source == "corpus/faq.html")
        }
    }

    @Test func badInputIsRefusedWithTheFieldNamed() async throws {
        try await withTestStore(.sqlite) { t, tracking in
            let root = t.directory.appendingPathComponent("sources")
            try corpus(root)
            let embedder = HashedWordsEmbedder()
            let service = IndexService(store: tracking.store, artifacts: tracking.artifacts, embedder: embedder, sourcesRoot: root.path, logger: TestStore.logger)
            func refused(_ yaml: String, _ expected: String) async {
                do {
                    _ = try await service.apply(yaml: yaml, workspace: Workspace.defaultName, actor: "a")
                    Issue.record("accepted: \(yaml)")
                } catch let e as LoomError {
                    #expect(e.message.contains(expected), "\(e.message)")
                } catch {
                    Issue.record("\(error)")
                }
            }
            await refused("kind: index\nname: x\nsources: [../etc]\n", "sources[0]")
            await refused("kind: index\nname: x\nsources: [{path: /etc}]\n", "sources[0].path")
            await refused("kind: index\nname: x\nsources: [docs]\nchunking: {strategy: tokens, size: 10, overlap: 10}\n", "chunking")
            await refused("kind: index\nname: x\nsources: [docs]\nchunking: {strategy: pages}\n", "chunking.strategy")
            await refused("kind: index\nname: x\nsources: [docs]\nvector: {m: 1}\n", "vector.m")
            await refused("kind: index\nname: x\nsources: [docs]\nschedule: every day\n", "schedule")
            await refused("kind: index\nname: x\n", "sources")
            #expect(try await tracking.store.groundingIndexes(workspace: nil).isEmpty, "nothing was recorded")

            // A symbolic link out of the sources root is not followed.
            _ = try await service.apply(yaml: "kind: index\nname: linked\nsources: [corpus]\n", workspace: Workspace.defaultName, actor: "a")
            try FileManager.default.createSymbolicLink(
                atPath: root.appendingPathComponent("corpus/escape.md").path, withDestinationPath: t.directory.appendingPathComponent("sources/../store-outside.md").path)
            try "# Secret\nkept outside".write(to: t.directory.appendingPathComponent("store-outside.md"), atomically: true, encoding: .utf8)
            let built = try await service.build(workspace: Workspace.defaultName, name: "linked", actor: "a")
            let sources = try await tracking.store.indexDocuments(workspace: Workspace.defaultName, index: "linked", version: built.version.version).map(\.source)
            #expect(!sources.contains("corpus/escape.md") && sources.contains("corpus/install.md"))

            // A provider failure fails the build, recorded as a failed version; queries keep the last good one.
            _ = try await service.apply(yaml: Self.spec, workspace: Workspace.defaultName, actor: "a")
            embedder.failing = true
            await #expect(throws: LoomError.self) { try await service.build(workspace: Workspace.defaultName, name: "docs", actor: "a") }
            let versions = try await tracking.store.indexVersions(workspace: Workspace.defaultName, index: "docs")
            #expect(versions.map(\.status) == [.failed] && versions[0].error?.contains("provider down") == true)
            await #expect(throws: LoomError.self) {
                try await service.query(workspace: Workspace.defaultName, name: "docs", text: "x", mode: .bm25, k: 1)
            }
            await #expect(throws: LoomError.self) {
                try await service.query(workspace: Workspace.defaultName, name: "linked", text: "x", mode: .vector, k: 1)
            }
        }
    }

    /// Two replicas over one store: a scheduled index is built once per tick, by whichever
    /// takes the tick's lease; the next tick is built again (its content changed).
    @Test func replicasBuildAScheduledIndexOncePerTick() async throws {
        try await withTestStore(.sqlite) { t, tracking in
            let root = t.directory.appendingPathComponent("sources")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("docs"), withIntermediateDirectories: true)
            try "# One\nfirst text".write(to: root.appendingPathComponent("docs/one.md"), atomically: true, encoding: .utf8)
            let replicas = (0..<2).map { _ in
                IndexService(store: tracking.store, artifacts: tracking.artifacts, embedder: nil, sourcesRoot: root.path, logger: TestStore.logger)
            }
            _ = try await replicas[0].apply(yaml: "kind: index\nname: sched\nsources: [docs]\nschedule: '*/5 * * * *'\n", workspace: Workspace.defaultName, actor: "a")
            let start = Date(timeIntervalSince1970: 1_800_000_000)  // a multiple of five minutes
            for r in replicas { #expect(await r.refreshDue(now: start).isEmpty, "the first look only learns when the next tick is") }
            let tick = start.addingTimeInterval(301)
            let built = await replicas[0].refreshDue(now: tick).count + replicas[1].refreshDue(now: tick).count
            #expect(built == 1)
            #expect(try await tracking.store.indexVersions(workspace: Workspace.defaultName, index: "sched").count == 1)
            try "# Two\nsecond text".write(to: root.appendingPathComponent("docs/two.md"), atomically: true, encoding: .utf8)
            let next = tick.addingTimeInterval(300)
            let again = await replicas[1].refreshDue(now: next).count + replicas[0].refreshDue(now: next).count
            #expect(again == 1)
            #expect(try await tracking.store.indexVersions(workspace: Workspace.defaultName, index: "sched").first?.documents == 2)
        }
    }

    /// Left out of the spec, ef_search grows with the index; given, it is kept.
    @Test func efSearchGrowsWithTheIndexUnlessGiven() async throws {
        #expect(HNSWParameters.automaticEfSearch(count: 0) == 256)
        #expect(HNSWParameters.automaticEfSearch(count: 20_000) == 256)
        #expect(HNSWParameters.automaticEfSearch(count: 500_000) == 1024)
        #expect(HNSWParameters.automaticEfSearch(count: 1_000_000) == 2048)
        #expect(HNSWParameters.automaticEfSearch(count: 10_000_000) == 4096)
        try await withTestStore(.sqlite) { t, tracking in
            let root = t.directory.appendingPathComponent("sources")
            try corpus(root)
            let service = IndexService(
                store: tracking.store, artifacts: tracking.artifacts, embedder: HashedWordsEmbedder(), sourcesRoot: root.path, logger: TestStore.logger)
            _ = try await service.apply(yaml: Self.spec, workspace: Workspace.defaultName, actor: "a")
            let auto = try await service.build(workspace: Workspace.defaultName, name: "docs", actor: "a")
            let details = try JSONValue.parse(Array(auto.version.details.utf8))
            #expect(details["vector"]?["ef_search"]?.doubleValue == 256 && details["vector"]?["ef_search_automatic"] == .bool(true))
            _ = try await service.apply(yaml: Self.spec + "\nvector: {ef_search: 64}\n", workspace: Workspace.defaultName, actor: "a")
            let given = try await service.build(workspace: Workspace.defaultName, name: "docs", actor: "a")
            let d2 = try JSONValue.parse(Array(given.version.details.utf8))
            #expect(given.changed && d2["vector"]?["ef_search"]?.doubleValue == 64 && d2["vector"]?["ef_search_automatic"] == .bool(false))
        }
    }
}
