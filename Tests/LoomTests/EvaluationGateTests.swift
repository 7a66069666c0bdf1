import Foundation
import Testing
@testable import LoomGenAI

@Suite struct AggregateTests {
    @Test func statisticsSkipErrors() {
        let results = [
            EvaluatorResult(name: "em", score: 1, passed: true),
            EvaluatorResult(name: "em", score: 0, passed: false),
            EvaluatorResult(name: "em", score: 1, passed: true),
            EvaluatorResult.failure("em", "row has no expected answer"),
        ]
        // scores [0, 1, 1]: mean 2/3, median 1; pass rate 2 of 3 verdicts.
        let aggregate = Aggregates.aggregate(results)
        #expect(aggregate.count == 4)
        #expect(aggregate.errors == 1)
        #expect(evalApprox(aggregate.mean, 2.0 / 3.0))
        #expect(aggregate.min == 0)
        #expect(aggregate.max == 1)
        #expect(aggregate.p50 == 1)
        #expect(evalApprox(aggregate.passRate, 2.0 / 3.0))
    }

    @Test func evenMedianGroupingAndEmpty() {
        let results = [4.0, 1, 3, 2].map { EvaluatorResult(name: "f1", score: $0) }
            + [EvaluatorResult.failure("other", "boom")]
        let byName = Aggregates.byName(results)
        #expect(byName["f1"]?.p50 == 2.5)
        #expect(byName["f1"]?.passRate == nil)
        #expect(byName["other"] == Aggregate(count: 1, errors: 1, mean: nil, min: nil, max: nil, p50: nil, passRate: nil))
    }

    @Test func encodesSnakeCase() throws {
        let aggregate = Aggregate(count: 1, errors: 0, mean: 1, min: 1, max: 1, p50: 1, passRate: 1)
        let text = String(decoding: try JSONEncoder().encode(aggregate), as: UTF8.self)
        #expect(text.contains(#""pass_rate":1"#))
        let result = EvaluatorResult(name: "x", score: 0.5, details: ["precision": 1])
        let resultText = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
        #expect(try JSONDecoder().decode(EvaluatorResult.self, from: Data(resultText.utf8)) == result)
        let rowJSON = #"{"question": "q", "answer": "a", "latency_ms": 12.5, "expected_embedding": [1, 0]}"#
        let decodedRow = try JSONDecoder().decode(EvaluationRow.self, from: Data(rowJSON.utf8))
        #expect(decodedRow.latencyMs == 12.5)
        #expect(decodedRow.expectedEmbedding == [1, 0])
    }
}

@Suite struct GateTests {
    @Test func parsesOperatorsAndStatistics() throws {
        let gate = try Gate(parsing: "groundedness=4.0, hit_rate>=0.8,latency.p50<=800,cost<0.01,em>0.5,json.pass_rate=0.9,")
        #expect(gate.conditions == [
            GateCondition(metric: "groundedness", op: .atLeast, threshold: 4),
            GateCondition(metric: "hit_rate", op: .atLeast, threshold: 0.8),
            GateCondition(metric: "latency", statistic: .p50, op: .atMost, threshold: 800),
            GateCondition(metric: "cost", op: .lessThan, threshold: 0.01),
            GateCondition(metric: "em", op: .greaterThan, threshold: 0.5),
            GateCondition(metric: "json", statistic: .passRate, op: .atLeast, threshold: 0.9),
        ])
        #expect(try Gate(parsing: "  ").conditions.isEmpty)
        // An unknown suffix stays part of the metric name.
        #expect(try Gate(parsing: "v1.score=1").conditions.first?.metric == "v1.score")
    }

    @Test func parseErrorsAreClear() {
        #expect(throws: GateParseError(message: "bad gate 'x=': threshold is not a number")) { try Gate(parsing: "x=") }
        #expect(throws: GateParseError(message: "bad gate '=3': missing metric name")) { try Gate(parsing: "a=1,=3") }
        #expect(throws: GateParseError(message: "bad gate 'foo': missing operator (use =, >=, <=, <, >)")) { try Gate(parsing: "foo") }
        #expect(throws: GateParseError(message: "bad gate 'a=nan': threshold is not a number")) { try Gate(parsing: "a=nan") }
        #expect(throws: GateParseError(message: "bad gate 'a==3': threshold is not a number")) { try Gate(parsing: "a==3") }
    }

    @Test func checksAgainstAggregates() throws {
        func aggregate(mean: Double?, p50: Double? = nil) -> Aggregate {
            Aggregate(count: 2, errors: 0, mean: mean, min: mean, max: mean, p50: p50 ?? mean, passRate: nil)
        }
        let aggregates = [
            "groundedness": aggregate(mean: 4.2),
            "hit_rate": aggregate(mean: 0.7),
            "latency": aggregate(mean: 900, p50: 750),
            "em": aggregate(mean: 0.8),
            "broken": aggregate(mean: nil),
        ]
        let gate = try Gate(parsing: "groundedness=4,hit_rate=0.8,latency.p50<=800,cost<0.01,em=0.8,em>0.8,broken=1,em.pass_rate=0.5")
        let outcomes = gate.check(aggregates: aggregates)
        #expect(outcomes.map(\.passed) == [true, false, true, false, true, false, false, false])
        #expect(outcomes[1].actual == 0.7)
        #expect(outcomes[2].actual == 750)
        #expect(outcomes[3].reason == "metric not computed")
        #expect(outcomes[3].actual == nil)
        #expect(outcomes[6].reason == "no value for mean")
        #expect(outcomes[7].reason == "no value for pass_rate")
        #expect(!Gate.allPassed(outcomes))
        #expect(Gate.allPassed(try Gate(parsing: "groundedness>=4").check(aggregates: aggregates)))
    }
}

@Suite struct VariantComparisonTests {
    @Test func meansDeltasAndRowWinners() {
        let a: [String: [EvaluatorResult]] = [
            "r1": [EvaluatorResult(name: "em", score: 1), EvaluatorResult(name: "f1", score: 0.5)],
            "r2": [EvaluatorResult(name: "em", score: 0), EvaluatorResult(name: "f1", score: 0.8)],
        ]
        let b: [String: [EvaluatorResult]] = [
            "r1": [EvaluatorResult(name: "em", score: 1), EvaluatorResult(name: "f1", score: 0.9)],
            "r2": [EvaluatorResult(name: "em", score: 1), EvaluatorResult(name: "f1", score: 0.8)],
            "r3": [EvaluatorResult(name: "em", score: 1), EvaluatorResult.failure("f1", "no expected")],
        ]
        let comparison = VariantComparison(a: a, b: b, metric: "f1")
        // em: A mean (1 + 0)/2 = 0.5, B mean 1 → delta 0.5.
        #expect(comparison.metrics.map(\.metric) == ["em", "f1"])
        #expect(comparison.metrics[0].meanA == 0.5)
        #expect(comparison.metrics[0].delta == 0.5)
        // f1: A (0.5 + 0.8)/2 = 0.65, B (0.9 + 0.8)/2 = 0.85 → delta 0.2.
        #expect(evalApprox(comparison.metrics[1].delta, 0.2))
        #expect(comparison.rows.map(\.winner) == [.b, .tie, .undecided])
        #expect(comparison.rows.map(\.rowId) == ["r1", "r2", "r3"])
        #expect(comparison.winsB == 1 && comparison.winsA == 0 && comparison.ties == 1)
    }

    @Test func lowerIsBetterForLatency() {
        let a = ["r1": [EvaluatorResult(name: "latency", score: 300)]]
        let b = ["r1": [EvaluatorResult(name: "latency", score: 200)]]
        #expect(VariantComparison(a: a, b: b, metric: "latency", higherIsBetter: false).rows.first?.winner == .b)
        #expect(VariantComparison(a: a, b: b, metric: "latency").rows.first?.winner == .a)
    }
}
