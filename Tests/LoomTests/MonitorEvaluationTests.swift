import Foundation
import LoomCore
import LoomMonitoring
import Testing

@Suite("A monitor's pass over read data")
struct MonitorEvaluationTests {
    /// `n` rows: x ~ N(shift, 1) by a fixed sequence, plan from `plans`, an optional prediction.
    static func table(rows n: Int, shift: Double, plans: [String], prediction: [Double]? = nil, extra: [String: [Double]] = [:]) -> DriftTable {
        var g = SplitMix(seed: 7)
        var x: [Double] = []
        for _ in 0..<n { x.append(g.normal() + shift) }
        var counts: [String: Int] = [:]
        for i in 0..<n { counts[plans[i % plans.count], default: 0] += 1 }
        let levels = counts.keys.sorted()
        var names = ["x", "plan"]
        var columns: [DriftTable.Values] = [.numbers(NumberColumn(x, integral: false)), .texts(TextColumn(levels: levels, counts: levels.map { counts[$0]! }, missing: 0))]
        if let prediction {
            names.append("prediction")
            columns.append(.numbers(NumberColumn(prediction, integral: prediction.allSatisfy { $0 == $0.rounded() })))
        }
        for (name, values) in extra.sorted(by: { $0.key < $1.key }) {
            names.append(name)
            columns.append(.numbers(NumberColumn(values, integral: true)))
        }
        return DriftTable(names: names, columns: columns, rowCount: n)
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
        mutating func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
    }

    static let spec = try! MonitorSpec.parse(yaml: """
        name: m
        endpoint: e
        signals:
          - {type: data_drift}
          - {type: prediction_drift}
          - {type: data_quality}
          - {type: model_performance, metrics: {accuracy: {max_decrease: 0.1}, f1: {min: 0.5}}}
        """)

    @Test("the same distribution passes every signal; a shifted one fails drift and quality, naming what")
    func driftAndQuality() throws {
        let reference = Self.table(rows: 2000, shift: 0, plans: ["basic", "pro"], extra: ["churned": (0..<2000).map { Double($0 % 2) }])
        let same = Self.table(rows: 1500, shift: 0, plans: ["basic", "pro"], prediction: (0..<1500).map { Double($0 % 2) })
        var outcomes = MonitorEvaluation.evaluate(Self.spec, .init(reference: reference, current: same, target: "churned"))
        #expect(outcomes.map(\.signal) == ["data_drift", "prediction_drift", "data_quality", "model_performance"])
        #expect(outcomes.map(\.passed) == [true, true, true, true], "\(outcomes.map(\.summary))")
        #expect(outcomes[0].value == 0 && outcomes[0].rows == 1500)
        // The target is not a feature: two columns compared, x and plan.
        #expect(outcomes[0].summary.contains("of 2 columns"))
        #expect(outcomes[3].value == nil && outcomes[3].summary.contains("no labelled predictions"))

        let shifted = Self.table(rows: 1500, shift: 1.5, plans: ["basic", "pro", "enterprise"], prediction: (0..<1500).map { $0 % 5 == 0 ? 0 : 1 })
        outcomes = MonitorEvaluation.evaluate(Self.spec, .init(reference: reference, current: shifted, target: "churned"))
        #expect(outcomes[0].passed == false && outcomes[0].value == 1, "\(outcomes[0].summary)")
        #expect(outcomes[0].summary.contains("x") && outcomes[0].summary.contains("plan"))
        #expect(outcomes[1].passed == false, "predictions 80% ones against a 50/50 target: \(outcomes[1].summary)")
        // An unseen plan is out of the reference's range: quality fails at threshold 0.
        #expect(outcomes[2].passed == false && outcomes[2].summary.contains("plan"), "\(outcomes[2].summary)")
        let detail = try JSONValue.parse(Array(outcomes[0].detail.utf8))
        guard case .object(let o) = detail, case .array(let columns)? = o["columns"] else { Issue.record("no columns in \(outcomes[0].detail)"); return }
        #expect(columns.count == 2)
    }

    @Test("an empty window, a missing column and a misfit spec are outcomes, not crashes")
    func oddData() throws {
        let reference = Self.table(rows: 500, shift: 0, plans: ["a", "b"])
        let empty = DriftTable(names: [], columns: [], rowCount: 0)
        let outcomes = MonitorEvaluation.evaluate(Self.spec, .init(reference: reference, current: empty))
        #expect(outcomes.allSatisfy { $0.passed && $0.value == nil })
        #expect(outcomes[0].summary == "no production data in the window")

        // The window lost the x column: drift reports it as a finding, quality fails on it.
        let partial = DriftTable(names: ["plan"], columns: [.texts(TextColumn(levels: ["a", "b"], counts: [50, 50], missing: 0))], rowCount: 100)
        let q = MonitorEvaluation.evaluate(Self.spec, .init(reference: reference, current: partial))
        #expect(q[2].passed == false && q[2].summary.contains("missing from the window: x"), "\(q[2].summary)")
        #expect(q[1].summary.contains("no predictions"))

        // A method that does not fit the column's type fails the signal with the reason.
        let misfit = try MonitorSpec.parse(yaml: "name: m\nendpoint: e\nsignals: [{type: data_drift, methods: {plan: wasserstein}}]\n")
        let m = MonitorEvaluation.evaluate(misfit, .init(reference: reference, current: Self.table(rows: 300, shift: 0, plans: ["a", "b"])))
        #expect(m[0].passed == false && m[0].summary.hasPrefix("cannot be computed"), "\(m[0].summary)")
    }

    @Test("model performance: labels joined by correlation id, judged against rules and the version's metrics")
    func performance() {
        let window = Self.table(rows: 10, shift: 0, plans: ["a"], prediction: (0..<10).map { Double($0 % 2) })
        let predictions = (0..<10).map { ModelPerformance.Prediction(correlationID: "c\($0)", row: 0, value: .number(Double($0 % 2), raw: nil)) }
        // 8 of 10 right.
        var labels: [String: JSONValue] = [:]
        for i in 0..<10 { labels["c\(i)"] = .number(Double(i < 8 ? i % 2 : 1 - i % 2), raw: nil) }
        let good = MonitorEvaluation.evaluate(Self.spec, .init(reference: window, current: window, predictions: predictions, labels: labels, baselineMetrics: ["accuracy": 0.85]))
        #expect(good[3].passed && good[3].value == 0.8, "\(good[3].summary)")
        let worse = MonitorEvaluation.evaluate(Self.spec, .init(reference: window, current: window, predictions: predictions, labels: labels, baselineMetrics: ["accuracy": 0.95]))
        #expect(!worse[3].passed && worse[3].summary.contains("accuracy fell"), "\(worse[3].summary)")
        let unknown = MonitorEvaluation.evaluate(Self.spec, .init(reference: window, current: window, predictions: predictions, labels: labels))
        #expect(!unknown[3].passed && unknown[3].summary.contains("no accuracy to compare with"))
    }
}
