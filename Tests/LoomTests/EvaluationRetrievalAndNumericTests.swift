import Testing
@testable import LoomGenAI

@Suite struct RetrievalTests {
    func retrievalRow(_ retrieved: [String]?, _ relevant: [String]?) -> EvaluationRow {
        EvaluationRow(question: "q", answer: "a", retrieved: retrieved, relevant: relevant)
    }

    @Test func ndcgWithHitsAtRanksOneAndThree() {
        // DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
        // IDCG (2 relevant) = 1 + 1/log2(3) = 1.6309297535714575
        // nDCG = 1.5 / 1.6309297535714575 = 0.9197207891481876
        let result = evalRun(.ndcg(), retrievalRow(["a", "x", "b", "y"], ["a", "b"]))
        #expect(evalApprox(result.score, 0.9197207891481876, tolerance: 1e-12))
        #expect(evalApprox(result.details["dcg"], 1.5))
        #expect(evalApprox(result.details["idcg"], 1.6309297535714575))
    }

    @Test func ndcgCutsAtK() {
        // k = 2: DCG = 1 (rank 1 only), IDCG = 1 + 1/log2(3) → 0.6131471927654584.
        #expect(evalApprox(evalRun(.ndcg(k: 2), retrievalRow(["a", "x", "b"], ["a", "b"])).score, 0.6131471927654584))
        // 3 relevant, k = 1: IDCG uses min(k, 3) = 1 ideal hit; a hit at rank 1 is perfect.
        #expect(evalRun(.ndcg(k: 1), retrievalRow(["a"], ["a", "b", "c"])).score == 1)
        // A repeated id counts once, so nDCG cannot exceed 1.
        #expect(evalRun(.ndcg(), retrievalRow(["a", "a"], ["a"])).score == 1)
    }

    @Test func reciprocalRank() {
        // first relevant at rank 3 → 1/3; outside k = 2 → 0.
        let result = evalRun(.mrr(), retrievalRow(["x", "y", "a"], ["a"]))
        #expect(evalApprox(result.score, 1.0 / 3.0))
        #expect(result.details["rank"] == 3)
        #expect(evalRun(.mrr(k: 2), retrievalRow(["x", "y", "a"], ["a"])).score == 0)
    }

    @Test func hitRate() {
        #expect(evalRun(.hitRate(k: 2), retrievalRow(["x", "y", "a"], ["a"])).score == 0)
        #expect(evalRun(.hitRate(k: 3), retrievalRow(["x", "y", "a"], ["a"])).score == 1)
        #expect(evalRun(.hitRate(), retrievalRow([], ["a"])).score == 0)
    }

    @Test func missingLabelsAreErrors() {
        #expect(evalRun(.hitRate(), retrievalRow(["a"], [])).error == "no relevant ids labeled")
        #expect(evalRun(.ndcg(), retrievalRow(["a"], nil)).error == "no relevant ids labeled")
        #expect(evalRun(.mrr(), retrievalRow(nil, ["a"])).error == "row has no retrieved ids")
        #expect(evalRun(.mrr(k: 0), retrievalRow(["a"], ["a"])).error == "k must be at least 1, got 0")
    }
}

@Suite struct EmbeddingTests {
    @Test func cosineValues() throws {
        #expect(try CosineSimilarity.compute([1.0, 0], [0, 1]) == 0)
        #expect(evalApprox(try CosineSimilarity.compute([1.0, 2, 3], [2, 4, 6]), 1))
        #expect(evalApprox(try CosineSimilarity.compute([1.0, 0], [-1, 0]), -1))
        // (3·4 + 4·3) / (5·5) = 24/25
        #expect(evalApprox(try CosineSimilarity.compute([Float(3), 4], [4, 3]), 0.96, tolerance: 1e-7))
        // Huge components do not overflow: cos 45° = 1/√2.
        #expect(evalApprox(try CosineSimilarity.compute([1e200, 1e200], [1e200, 0]), 0.5.squareRoot()))
    }

    @Test func invalidVectorsAreErrors() {
        #expect(throws: CosineSimilarity.Failure.lengthMismatch(2, 3)) { try CosineSimilarity.compute([1.0, 2], [1, 2, 3]) }
        #expect(throws: CosineSimilarity.Failure.zeroVector) { try CosineSimilarity.compute([0.0, 0], [1, 2]) }
        #expect(throws: CosineSimilarity.Failure.nonFinite) { try CosineSimilarity.compute([Double.nan, 1], [1, 2]) }
        #expect(throws: CosineSimilarity.Failure.empty) { try CosineSimilarity.compute([Double](), []) }
    }

    @Test func evaluatorUsesRowEmbeddings() {
        var input = evalRow("a")
        input.answerEmbedding = [3, 4]
        input.expectedEmbedding = [4, 3]
        let result = evalRun(.embeddingSimilarity(threshold: 0.95), input)
        #expect(evalApprox(result.score, 0.96))
        #expect(result.passed == true)
        input.expectedEmbedding = [1, 2, 3]
        #expect(evalRun(.embeddingSimilarity(), input).error == "embedding lengths differ (2 vs 3)")
        input.expectedEmbedding = nil
        #expect(evalRun(.embeddingSimilarity(), input).error == "row has no expected embedding")
    }
}

@Suite struct MeasurementTests {
    @Test func latencyAndCostPassThrough() {
        var input = evalRow("a")
        input.latencyMs = 1200
        input.cost = 0.002
        let slow = evalRun(.latency(max: 1000), input)
        #expect(slow.score == 1200)
        #expect(slow.passed == false)
        #expect(slow.reason == "latency 1200 ms exceeds max 1000 ms")
        #expect(evalRun(.latency(), input).passed == nil)
        #expect(evalRun(.cost(max: 0.01), input).passed == true)
        #expect(evalRun(.cost(), input).score == 0.002)
    }

    @Test func missingOrNonFiniteMeasurementsAreErrors() {
        var input = evalRow("a")
        #expect(evalRun(.latency(), input).error == "row has no latency measurement")
        input.cost = .nan
        #expect(evalRun(.cost(), input).error == "cost is not a finite number")
    }
}
