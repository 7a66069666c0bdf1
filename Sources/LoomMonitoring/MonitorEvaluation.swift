import Foundation
import LoomCore

/// One pass of a monitor over data already read: each signal of the spec judged, with a headline
/// figure, a verdict, a line for people and the whole result as JSON. Reading the data (the
/// production window, the reference, labels, the model version's metrics) is the caller's.
public enum MonitorEvaluation {
    public struct Inputs: Sendable {
        /// The reference data: a training dataset, or an earlier production window.
        public var reference: DriftTable
        /// The production window: features and `prediction` columns.
        public var current: DriftTable
        /// The feature columns data drift and quality look at when a signal names none (nil: the
        /// reference's columns but its `prediction` ones and `target`).
        public var features: [String]?
        /// The reference's column that predictions are compared with when it has no
        /// `prediction` columns (a training dataset's target).
        public var target: String?
        /// The window's answers with their correlation ids, and labels by correlation id.
        public var predictions: [ModelPerformance.Prediction]
        public var labels: [String: JSONValue]
        /// The model version's own metrics (its training run's), for `max_decrease` rules.
        public var baselineMetrics: [String: Double]

        public init(
            reference: DriftTable, current: DriftTable, features: [String]? = nil, target: String? = nil,
            predictions: [ModelPerformance.Prediction] = [], labels: [String: JSONValue] = [:], baselineMetrics: [String: Double] = [:]
        ) {
            self.reference = reference
            self.current = current
            self.features = features
            self.target = target
            self.predictions = predictions
            self.labels = labels
            self.baselineMetrics = baselineMetrics
        }
    }

    public struct Outcome: Sendable {
        public var signal: String
        public var kind: MonitorSpec.SignalKind
        public var rows: Int
        public var value: Double?
        public var passed: Bool
        /// Nothing to judge: an empty window, no labels yet, no predictions to compare.
        public var skipped = false
        public var summary: String
        /// The signal's result as JSON text.
        public var detail: String

        public init(
            signal: String, kind: MonitorSpec.SignalKind, rows: Int, value: Double?, passed: Bool, skipped: Bool = false, summary: String, detail: String
        ) {
            self.signal = signal
            self.kind = kind
            self.rows = rows
            self.value = value
            self.passed = passed
            self.skipped = skipped
            self.summary = summary
            self.detail = detail
        }
    }

    /// The table signals' outcomes (generation signals are scored by the server, which calls
    /// their judges: `GenerationSignal`).
    public static func evaluate(_ spec: MonitorSpec, _ inputs: Inputs) -> [Outcome] {
        spec.signals.compactMap { signal in
            switch signal.kind {
            case .dataDrift: dataDrift(signal, inputs)
            case .predictionDrift: predictionDrift(signal, inputs)
            case .dataQuality: dataQuality(signal, inputs)
            case .modelPerformance: modelPerformance(signal, inputs)
            case .generationQuality, .generationSafety: nil
            }
        }
    }

    static func isPrediction(_ name: String) -> Bool {
        name == CollectedWindow.prediction || name.hasPrefix(CollectedWindow.prediction + ".")
    }

    /// The feature columns a signal looks at.
    static func features(_ signal: MonitorSpec.Signal, _ inputs: Inputs) -> [String] {
        if let columns = signal.columns { return columns }
        let names = inputs.features ?? inputs.reference.names
        return names.filter { !isPrediction($0) && $0 != inputs.target && inputs.reference.column($0) != nil }
    }

    static func options(_ signal: MonitorSpec.Signal, columns: [String]) -> DriftOptions {
        var o = DriftOptions()
        o.driftShare = signal.driftShare
        o.methods = signal.methods
        o.thresholds = signal.thresholds
        o.numericalMethod = signal.numericalMethod
        o.categoricalMethod = signal.categoricalMethod
        o.columns = columns
        return o
    }

    static func skipped(_ signal: MonitorSpec.Signal, rows: Int, _ why: String) -> Outcome {
        Outcome(signal: signal.name, kind: signal.kind, rows: rows, value: nil, passed: true, skipped: true, summary: why, detail: json(["skipped": .string(why)]))
    }

    static func failed(_ signal: MonitorSpec.Signal, rows: Int, _ error: LoomError) -> Outcome {
        // A spec that does not fit the data (a column the reference lacks, a method for the
        // wrong type) fails the signal, so that someone looks.
        Outcome(
            signal: signal.name, kind: signal.kind, rows: rows, value: nil, passed: false, summary: "cannot be computed: \(error.message)",
            detail: json(["error": .string(error.message)]))
    }

    static func dataDrift(_ signal: MonitorSpec.Signal, _ inputs: Inputs) -> Outcome {
        let rows = inputs.current.rowCount
        guard rows > 0 else { return skipped(signal, rows: 0, "no production data in the window") }
        let columns = features(signal, inputs)
        guard !columns.isEmpty else { return skipped(signal, rows: rows, "no feature columns to compare") }
        return drift(signal, reference: inputs.reference, current: inputs.current, columns: columns, what: "columns")
    }

    static func drift(_ signal: MonitorSpec.Signal, reference: DriftTable, current: DriftTable, columns: [String], what: String) -> Outcome {
        do {
            let result = try DriftAnalysis.run(reference: reference, current: current, options: options(signal, columns: columns))
            // The result as `loom drift --json` writes it, with each column's distributions for
            // the report's plots.
            var detail = encodeObject(result)
            if let distributions = result.distributions, let parsed = try? JSONValue.parse(Array(encode(distributions).utf8)) {
                detail["distributions"] = parsed
            }
            let drifted = result.columns.filter(\.drifted).map(\.name)
            let summary = result.datasetDrifted
                ? "\(drifted.count) of \(result.numberOfColumns) \(what) drifted (share \(format(result.shareDrifted)) ≥ \(format(signal.driftShare))): \(drifted.prefix(8).joined(separator: ", "))"
                : "\(drifted.count) of \(result.numberOfColumns) \(what) drifted (share \(format(result.shareDrifted)) < \(format(signal.driftShare)))"
            return Outcome(
                signal: signal.name, kind: signal.kind, rows: current.rowCount, value: result.shareDrifted, passed: !result.datasetDrifted,
                summary: summary, detail: json(detail))
        } catch {
            return failed(signal, rows: current.rowCount, error)
        }
    }

    static func predictionDrift(_ signal: MonitorSpec.Signal, _ inputs: Inputs) -> Outcome {
        let rows = inputs.current.rowCount
        guard rows > 0 else { return skipped(signal, rows: 0, "no production data in the window") }
        let current = inputs.current.names.filter(isPrediction)
        guard !current.isEmpty else { return skipped(signal, rows: rows, "the window has no predictions") }
        let referenced = inputs.reference.names.filter(isPrediction)
        if !referenced.isEmpty {
            let columns = signal.columns ?? referenced.filter { current.contains($0) }
            guard !columns.isEmpty else { return skipped(signal, rows: rows, "the reference's predictions share no column with the window's") }
            return drift(signal, reference: inputs.reference, current: inputs.current, columns: columns, what: "prediction columns")
        }
        // A training dataset: its target stands for the predictions it taught.
        guard let target = inputs.target, let values = inputs.reference.column(target), current.contains(CollectedWindow.prediction) else {
            return skipped(signal, rows: rows, "the reference has no predictions or target to compare with")
        }
        let reference = DriftTable(names: [CollectedWindow.prediction], columns: [values], rowCount: inputs.reference.rowCount)
        return drift(signal, reference: reference, current: inputs.current, columns: [CollectedWindow.prediction], what: "prediction columns")
    }

    static func dataQuality(_ signal: MonitorSpec.Signal, _ inputs: Inputs) -> Outcome {
        let rows = inputs.current.rowCount
        guard rows > 0 else { return skipped(signal, rows: 0, "no production data in the window") }
        let columns = features(signal, inputs)
        let result = DataQuality.run(reference: inputs.reference, current: inputs.current, thresholds: signal.quality, columns: columns)
        // Columns the window lacks are a quality failure too: every value of them is missing.
        let absent = columns.filter { inputs.current.column($0) == nil }
        let worst = result.columns.map { max($0.nullRate, $0.typeErrorRate, $0.outOfRangeRate) }.max() ?? 0
        let failing = result.columns.filter { !$0.passed }
        var parts = failing.prefix(6).map { "\($0.name): \($0.violations.joined(separator: ", "))" }
        if !absent.isEmpty { parts.append("missing from the window: \(absent.joined(separator: ", "))") }
        let passed = result.passed && absent.isEmpty
        let summary = passed ? "\(result.columns.count) columns within thresholds (worst rate \(format(worst)))" : parts.joined(separator: "; ")
        var detail = encodeObject(result)
        detail["missing_columns"] = .array(absent.map { .string($0) })
        return Outcome(
            signal: signal.name, kind: signal.kind, rows: rows, value: absent.isEmpty ? worst : 1, passed: passed, summary: summary,
            detail: json(detail))
    }

    static func modelPerformance(_ signal: MonitorSpec.Signal, _ inputs: Inputs) -> Outcome {
        let rows = inputs.current.rowCount
        guard let result = ModelPerformance.compute(inputs.predictions, labels: inputs.labels, task: signal.task) else {
            return skipped(signal, rows: rows, "no labelled predictions in the window yet")
        }
        var violations: [String] = []
        var judged: [String: JSONValue] = [:]
        // The headline figure: the first rule's metric (accuracy by default).
        var value: Double?
        for (metric, rule) in signal.metrics.sorted(by: { $0.key < $1.key }) {
            guard let v = result.metrics[metric] else {
                violations.append("\(metric) cannot be computed for \(result.task.rawValue)")
                continue
            }
            if value == nil || metric == "accuracy" { value = v }
            let baseline = inputs.baselineMetrics[metric]
            var notes: [String] = []
            if let min = rule.min, v < min { notes.append("\(metric) \(format(v)) < \(format(min))") }
            if let max = rule.max, v > max { notes.append("\(metric) \(format(v)) > \(format(max))") }
            if rule.maxDecrease != nil || rule.maxIncrease != nil {
                if let baseline {
                    if let d = rule.maxDecrease, baseline - v > d {
                        notes.append("\(metric) fell \(format(baseline - v)) from the model's \(format(baseline)) (allowed \(format(d)))")
                    }
                    if let d = rule.maxIncrease, v - baseline > d {
                        notes.append("\(metric) rose \(format(v - baseline)) from the model's \(format(baseline)) (allowed \(format(d)))")
                    }
                } else {
                    notes.append("\(metric): the model version has no \(metric) to compare with")
                }
            }
            violations += notes
            judged[metric] = .object([
                "value": .number(v, raw: nil), "baseline": baseline.map { .number($0, raw: nil) } ?? .null, "passed": .bool(notes.isEmpty),
            ])
        }
        var detail = encodeObject(result)
        detail["rules"] = .object(judged)
        let summary = violations.isEmpty
            ? "\(result.rows) labelled rows: " + signal.metrics.keys.sorted().compactMap { m in result.metrics[m].map { "\(m) \(format($0))" } }.joined(separator: ", ")
            : violations.joined(separator: "; ")
        return Outcome(signal: signal.name, kind: signal.kind, rows: rows, value: value, passed: violations.isEmpty, summary: summary, detail: json(detail))
    }

    static func format(_ v: Double) -> String {
        String(format: "%.4g", v)
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func encodeObject<T: Encodable>(_ value: T) -> [String: JSONValue] {
        guard let parsed = try? JSONValue.parse(Array(encode(value).utf8)), case .object(let o) = parsed else { return [:] }
        return o
    }

    static func json(_ object: [String: JSONValue]) -> String {
        encode(JSONValue.object(object))
    }
}
