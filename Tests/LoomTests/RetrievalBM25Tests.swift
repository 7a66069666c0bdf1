import Foundation
import Testing
import LoomGenAI

/// A direct transcription of rank_bm25.BM25Okapi (dictionary based) used as
/// the reference for the postings-based index.
struct ReferenceBM25 {
    let k1 = 1.5, b = 0.75, epsilon = 0.25
    var frequencies: [[String: Int]] = []
    var lengths: [Int] = []
    var idf: [String: Double] = [:]
    var averageLength = 0.0

    init(_ corpus: [[String]]) {
        var documentFrequency: [(String, Int)] = []
        var position: [String: Int] = [:]
        for document in corpus {
            lengths.append(document.count)
            var counts: [String: Int] = [:]
            var order: [String] = []
            for word in document {
                if counts[word] == nil { order.append(word) }
                counts[word, default: 0] += 1
            }
            frequencies.append(counts)
            for word in order {
                if let index = position[word] {
                    documentFrequency[index].1 += 1
                } else {
                    position[word] = documentFrequency.count
                    documentFrequency.append((word, 1))
                }
            }
        }
        averageLength = Double(lengths.reduce(0, +)) / Double(corpus.count)
        let n = Double(corpus.count)
        var sum = 0.0
        var negative: [String] = []
        for (word, count) in documentFrequency {
            let value = log(n - Double(count) + 0.5) - log(Double(count) + 0.5)
            idf[word] = value
            sum += value
            if value < 0 { negative.append(word) }
        }
        let floor = epsilon * (sum / Double(idf.count))
        for word in negative { idf[word] = floor }
    }

    func scores(_ query: [String]) -> [Double] {
        var result = [Double](repeating: 0, count: lengths.count)
        for term in query {
            let termIDF = idf[term] ?? 0
            for (document, counts) in frequencies.enumerated() {
                let tf = Double(counts[term] ?? 0)
                let norm = k1 * (1 - b + b * Double(lengths[document]) / averageLength)
                result[document] += termIDF * (tf * (k1 + 1) / (tf + norm))
            }
        }
        return result
    }
}

@Suite struct BM25Tests {
    static let corpus = [
        "hello there good man", "it is quite windy in london", "how is the weather today",
    ].map { $0.split(separator: " ").map(String.init) }

    private func build(_ corpus: [[String]]) -> BM25Index {
        var builder = BM25Builder()
        for (expected, document) in corpus.enumerated() {
            #expect(builder.add(terms: document) == expected)
        }
        return builder.build()
    }

    @Test func matchesRankBM25ReadmeExample() {
        let index = build(Self.corpus)
        let scores = index.scores(["windy", "london"])
        // rank_bm25 README: array([0., 0.93729472, 0.])
        #expect(abs(scores[1] - 0.93729472) < 1e-8)
        #expect(scores[0] == 0 && scores[2] == 0)
        // By hand: idf = ln(2.5) - ln(1.5); avgdl = 5; |d1| = 6.
        let idf = log(2.5) - log(1.5)
        let norm = 1.5 * (1 - 0.75 + 0.75 * 6 / 5)
        #expect(abs(scores[1] - 2 * idf * (2.5 / (1 + norm))) < 1e-15)
    }

    @Test func negativeIDFUsesEpsilonTimesAverageIDF() throws {
        let index = build(Self.corpus)
        // "is" occurs in 2 of 3 documents: raw idf ln(1.5) - ln(2.5) < 0.
        // 14 distinct terms: 13 with idf ln(2.5)-ln(1.5), one with the negative value.
        let positive = log(2.5) - log(1.5)
        let average = (13 * positive - positive) / 14
        #expect(abs(index.averageIDF - average) < 1e-15)
        let floor = 0.25 * average
        #expect(abs(try #require(index.idf(of: "is")) - floor) < 1e-15)
        let scores = index.scores(["is"])
        #expect(abs(scores[1] - floor * 2.5 / (1 + 1.5 * (0.25 + 0.75 * 6 / 5))) < 1e-15)
        #expect(abs(scores[2] - floor * 2.5 / (1 + 1.5)) < 1e-15)
        #expect(index.search(["is"], k: 10).map(\.id) == [2, 1])
    }

    @Test func matchesReferenceOnRandomCorpus() {
        var random = TestRandom(seed: 3)
        let vocabulary = (0..<40).map { "w\($0)" }
        let corpus: [[String]] = (0..<300).map { _ in
            let length = Int(random.next() % 25)
            return (0..<length).map { _ in
                // Skewed choice so some terms occur in more than half of the documents.
                let pick = min(Int(random.next() % 40), Int(random.next() % 40))
                return vocabulary[pick]
            }
        }
        let index = build(corpus)
        let reference = ReferenceBM25(corpus)
        for _ in 0..<50 {
            let query = (0..<(1 + Int(random.next() % 4))).map { _ in vocabulary[Int(random.next() % 42) % 40] }
                + ["unknown"]
            let expected = reference.scores(query)
            let actual = index.scores(query)
            #expect(actual.count == expected.count)
            for (a, e) in zip(actual, expected) { #expect(abs(a - e) <= 1e-12 * max(1, abs(e))) }
            // search = the docs containing a query term, ranked by the same scores.
            let containing = Set(corpus.indices.filter { !Set(corpus[$0]).isDisjoint(with: query) })
            let ranked = containing.sorted { (actual[$0], -$0) > (actual[$1], -$1) }
            let hits = index.search(query, k: 15)
            #expect(hits.map(\.id) == Array(ranked.prefix(15)))
            for hit in hits { #expect(hit.score == actual[hit.id]) }
        }
    }

    @Test func duplicateQueryTermsCountEachTime() {
        let index = build(Self.corpus)
        let once = index.scores(["windy"])[1]
        let twice = index.scores(["windy", "windy"])[1]
        #expect(abs(twice - 2 * once) < 1e-15)
        #expect(index.search(["windy", "windy"], k: 1).first?.score == twice)
    }

    @Test func searchOrderingFilterAndLimits() {
        let corpus = [["a", "b"], ["a"], ["c"], ["a", "a", "b"], ["b"], ["a"]]
        let index = build(corpus)
        let hits = index.search(["a"], k: 10)
        #expect(Set(hits.map(\.id)) == [0, 1, 3, 5])
        for pair in zip(hits, hits.dropFirst()) {
            #expect(pair.0.score > pair.1.score || (pair.0.score == pair.1.score && pair.0.id < pair.1.id))
        }
        // Documents 1 and 5 are identical: equal scores, lower id first.
        let tied = hits.filter { $0.id == 1 || $0.id == 5 }
        #expect(tied.map(\.id) == [1, 5])
        #expect(tied[0].score == tied[1].score)
        #expect(index.search(["a"], k: 2).count == 2)
        #expect(index.search(["a"], k: 0).isEmpty)
        #expect(index.search(["zzz"], k: 5).isEmpty)
        let filtered = index.search(["a", "b"], k: 10, allow: { $0.isMultiple(of: 2) })
        #expect(filtered.map(\.id).sorted() == [0, 4])
    }

    @Test func emptyIndexAndEmptyDocuments() throws {
        let empty = BM25Builder().build()
        #expect(empty.search(["a"], k: 3).isEmpty)
        #expect(empty.scores(["a"]).isEmpty)
        let restored = try BM25Index(serialized: empty.serialized())
        #expect(restored.documentCount == 0)
        let withBlank = build([[], ["x"], []])
        #expect(withBlank.search(["x"], k: 3).map(\.id) == [1])
    }

    @Test func serializationRoundTripIncludingLargeFrequencies() throws {
        var corpus = Self.corpus
        corpus.append(Array(repeating: "huge", count: 70_000) + ["windy"])
        let index = build(corpus)
        let bytes = index.serialized()
        let restored = try BM25Index(serialized: bytes)
        #expect(restored.documentCount == index.documentCount)
        #expect(restored.termCount == index.termCount)
        for query in [["windy", "london"], ["is"], ["huge"], ["huge", "windy", "nothing"]] {
            #expect(restored.scores(query) == index.scores(query))
            #expect(restored.search(query, k: 3) == index.search(query, k: 3))
        }
        #expect(restored.serialized() == bytes)
        let reference = ReferenceBM25(corpus)
        #expect(abs(restored.scores(["huge"])[3] - reference.scores(["huge"])[3]) < 1e-12)
    }

    @Test func corruptSerializationThrows() {
        let bytes = build(Self.corpus).serialized()
        #expect(throws: SerializationError.self) { try BM25Index(serialized: []) }
        #expect(throws: SerializationError.self) { try BM25Index(serialized: Array(bytes.prefix(bytes.count / 2))) }
        #expect(throws: SerializationError.self) { try BM25Index(serialized: Array(bytes.dropLast())) }
        #expect(throws: SerializationError.self) { try BM25Index(serialized: Array("HNSW garbage bytes".utf8)) }
        for position in stride(from: 0, to: bytes.count, by: 7) {
            var corrupted = bytes
            corrupted[position] ^= 0x40
            #expect(throws: SerializationError.self) { try BM25Index(serialized: corrupted) }
        }
        var random = TestRandom(seed: 5)
        for _ in 0..<100 {
            let garbage = Array("BM25".utf8) + (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            #expect(throws: SerializationError.self) { try BM25Index(serialized: garbage) }
        }
    }
}
