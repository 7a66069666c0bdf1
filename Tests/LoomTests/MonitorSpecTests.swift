import Foundation
import LoomCore
import LoomMonitoring
import LoomSpec
import Testing

@Suite("Monitor specs")
struct MonitorSpecTests {
    static let full = """
        kind: monitor
        name: churn-drift
        description: watch the churn model
        endpoint: churn
        deployment: blue
        schedule: {every: 1h}
        window: {size: 2h, offset: 30m}
        reference: {dataset: churn-train@3}
        signals:
          - type: data_drift
            columns: [tenure, plan]
            drift_share: 0.3
            methods: {tenure: psi}
            thresholds: {tenure: 0.2}
            numerical_method: auto
          - {type: prediction_drift, name: outputs, categorical_method: chisquare}
          - {type: data_quality, thresholds: {null_rate: 0.01, out_of_range_rate: 0.05}}
          - type: model_performance
            task: classification
            metrics: {accuracy: {max_decrease: 0.05}, f1: {min: 0.7}}
        alerts:
          webhooks:
            - {url: "http://127.0.0.1:9/hook", secret_env: LOOM_HOOK_SECRET}
        actions:
          - on: [data_drift, model_performance]
            run_pipeline: {name: retrain, parameters: {rows: 1000, note: "drift"}}
            then_rollout: {strategy: canary, steps: [10, 50, 100], bake: 5m}
        """

    @Test("a full spec reads whole, every field where it belongs")
    func full() throws {
        let spec = try MonitorSpec.parse(yaml: Self.full)
        #expect(spec.name == "churn-drift")
        #expect(spec.endpoint == "churn")
        #expect(spec.deployment == "blue")
        #expect(spec.schedule == .every(3600))
        #expect(spec.window.size == 7200 && spec.window.offset == 1800 && !spec.window.isFixed)
        #expect(spec.window.bounds(now: 10_000_000) == (start: 10_000_000 - 1_800_000 - 7_200_000, end: 10_000_000 - 1_800_000))
        #expect(spec.reference == .dataset(name: "churn-train", version: 3))
        #expect(spec.signals.map(\.name) == ["data_drift", "outputs", "data_quality", "model_performance"])
        let drift = spec.signals[0]
        #expect(drift.columns == ["tenure", "plan"])
        #expect(drift.driftShare == 0.3)
        #expect(drift.methods == ["tenure": .psi])
        #expect(drift.thresholds == ["tenure": 0.2])
        #expect(drift.numericalMethod == nil)
        #expect(drift.categoricalMethod == .jensenshannon)
        #expect(spec.signals[1].kind == .predictionDrift && spec.signals[1].categoricalMethod == .chisquare && spec.signals[1].numericalMethod == .wasserstein)
        #expect(spec.signals[2].quality == DataQuality.Thresholds(nullRate: 0.01, typeErrorRate: 0, outOfRangeRate: 0.05))
        #expect(spec.signals[3].metrics == ["accuracy": .init(maxDecrease: 0.05), "f1": .init(min: 0.7)])
        #expect(spec.signals[3].task == .classification)
        #expect(spec.webhooks == [.init(url: "http://127.0.0.1:9/hook", secretEnv: "LOOM_HOOK_SECRET")])
        let action = try #require(spec.actions.first)
        #expect(action.on == ["data_drift", "model_performance"])
        #expect(action.pipeline == "retrain")
        #expect(action.parameters["note"] == .string("drift"))
        guard case .number(let rows, _)? = action.parameters["rows"] else { Issue.record("rows is not a number"); return }
        #expect(rows == 1000)
        guard case .object(let rollout)? = action.rollout else { Issue.record("no rollout"); return }
        #expect(rollout["strategy"] == .string("canary"))
    }

    @Test("Azure ML's defaults: the three default signals, a window of the interval, the reference from lineage")
    func defaults() throws {
        let spec = try MonitorSpec.parse(yaml: "name: m\nendpoint: e\nschedule: {every: 15m}\n")
        #expect(spec.signals.map(\.kind) == [.dataDrift, .predictionDrift, .dataQuality])
        #expect(spec.signals[0].numericalMethod == .wasserstein && spec.signals[0].categoricalMethod == .jensenshannon)
        #expect(spec.signals[0].driftShare == 0.5)
        #expect(spec.signals[2].quality == DataQuality.Thresholds())
        #expect(spec.window.size == 900 && spec.window.offset == 0)
        #expect(spec.reference == .lineage)
        #expect(spec.actions.isEmpty && spec.webhooks.isEmpty)
        let perf = try MonitorSpec.parse(yaml: "name: m\nendpoint: e\nsignals: [{type: model_performance}]\n")
        #expect(perf.signals[0].metrics == ["accuracy": .init(min: 0.9)])
        #expect(perf.schedule == nil && perf.window.size == 86400)
        #expect(try MonitorSpec.parse(yaml: "name: m\nendpoint: e\nschedule: {every: 90d}\n").window.size == 31 * 86400, "the default window is capped")
        // A recent-production reference ends twice the production window back unless told.
        let recent = try MonitorSpec.parse(yaml: "name: m\nendpoint: e\nwindow: {size: 1h}\nreference: {window: {size: 7d}}\n")
        #expect(recent.reference == .window(size: 7 * 86400, offset: 7200))
        let fixed = try MonitorSpec.parse(
            yaml: "name: m\nendpoint: e\nwindow: {type: fixed, start: '2026-11-01T00:00:00Z', end: '2026-11-02T00:00:00Z'}\n")
        #expect(fixed.window.isFixed)
        #expect(fixed.window.bounds(now: 0) == (start: 1_793_491_200_000, end: 1_793_577_600_000))
    }

    @Test("every problem is named by its field and line", arguments: [
        ("name: m\nendpoint: e\ncolour: blue\n", "line 3, colour: unknown key"),
        ("endpoint: e\n", "name: is required"),
        ("name: m\n", "endpoint: is required"),
        ("name: 9m\nendpoint: e\n", "name: must start with a letter"),
        ("kind: pipeline\nname: m\nendpoint: e\n", "kind: must be monitor"),
        ("name: m\nendpoint: e\nschedule: {every: 10s}\n", "schedule.every: must be a duration from 1m to 366d"),
        ("name: m\nendpoint: e\nschedule: {cron: '61 * * * *'}\n", "schedule.cron:"),
        ("name: m\nendpoint: e\nschedule: {every: 1h, cron: '0 * * * *'}\n", "schedule: give one of every"),
        ("name: m\nendpoint: e\nwindow: {size: soon}\n", "window.size: must be a duration"),
        // Durations past a year would overflow milliseconds: refused, not a trap.
        ("name: m\nendpoint: e\nwindow: {size: 1e300d}\n", "window.size: must be a duration above 0, at most 366d"),
        ("name: m\nendpoint: e\nwindow: {size: 40d}\n", "window.size: a window covers at most 31d"),
        ("name: m\nendpoint: e\nwindow: {type: fixed, start: '2026-01-01T00:00:00Z', end: '2026-03-01T00:00:00Z'}\n", "window.end: a fixed window covers at most 31d"),
        ("name: m\nendpoint: e\nreference: {window: {size: 60d}}\n", "reference.window.size: a window covers at most 31d"),
        ("name: m\nendpoint: e\nwindow: {offset: 400d}\n", "window.offset: must be a duration of at most 366d"),
        ("name: m\nendpoint: e\nschedule: {every: 1e30h}\n", "schedule.every: must be a duration from 1m to 366d"),
        ("name: m\nendpoint: e\nreference: {window: {size: 1e30s}}\n", "reference.window.size: must be a duration above 0, at most 366d"),
        ("name: m\nendpoint: e\nwindow: {type: fixed, start: '2026-11-01T00:00:00Z'}\n", "window: a fixed window gives start and end"),
        ("name: m\nendpoint: e\nwindow: {type: fixed, start: '2026-11-02T00:00:00Z', end: '2026-11-01T00:00:00Z'}\n", "window.end: must be after"),
        ("name: m\nendpoint: e\nreference: {dataset: d, window: {size: 1d}}\n", "reference: give one of dataset or window"),
        ("name: m\nendpoint: e\nreference: {dataset: d@x}\n", "reference.dataset: NAME@VERSION"),
        ("name: m\nendpoint: e\nsignals: []\n", "signals: must be a list"),
        ("name: m\nendpoint: e\nsignals: [{type: vibes}]\n", "signals[0].type: unknown signal vibes"),
        ("name: m\nendpoint: e\nsignals: [{type: data_drift, methods: {a: magic}}]\n", "signals[0].methods.a: unknown method magic"),
        ("name: m\nendpoint: e\nsignals: [{type: data_drift, drift_share: 2}]\n", "signals[0].drift_share: must be a number in (0, 1]"),
        ("name: m\nendpoint: e\nsignals: [{type: data_quality, thresholds: {null_rate: 1.5}}]\n", "signals[0].thresholds.null_rate: must be a rate"),
        ("name: m\nendpoint: e\nsignals: [{type: data_quality, drift_share: 0.5}]\n", "signals[0].drift_share: unknown key"),
        ("name: m\nendpoint: e\nsignals: [{type: model_performance, metrics: {fun: {min: 1}}}]\n", "signals[0].metrics.fun: unknown metric"),
        ("name: m\nendpoint: e\nsignals: [{type: model_performance, metrics: {f1: {}}}]\n", "signals[0].metrics.f1: give min, max"),
        ("name: m\nendpoint: e\nsignals: [{type: data_drift}, {type: data_drift}]\n", "signals[1].name: data_drift is given twice"),
        ("name: m\nendpoint: e\nalerts: {webhooks: [{url: 'ftp://x/y'}]}\n", "alerts.webhooks[0].url: must be an http"),
        ("name: m\nendpoint: e\nalerts: {webhooks: [{url: 'http://x/y', secret_env: 'my secret'}]}\n", "alerts.webhooks[0].secret_env: must be the name"),
        ("name: m\nendpoint: e\nactions: [{on: [nope], run_pipeline: {name: p}}]\n", "actions[0].on: no signal is named nope"),
        ("name: m\nendpoint: e\nactions: [{on: [data_drift]}]\n", "actions[0].run_pipeline: is required"),
        ("name: m\nendpoint: e\n: : :\n", "not valid YAML"),
    ])
    func problems(yaml: String, expected: String) {
        do {
            _ = try MonitorSpec.parse(yaml: yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.code == .invalidParameter)
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test("all problems at once, in the file's order")
    func allAtOnce() {
        let problems = MonitorSpec.check(yaml: "name: m\nendpoint: e\nwindow: {size: x}\nsignals: [{type: vibes}]\nextra: 1\n")
        #expect(problems.map(\.field) == ["window.size", "signals[0].type", "extra"])
        #expect(problems.map(\.line) == [3, 4, 5])
    }
}
