import Foundation
import LoomCore
import Testing

@testable import LoomServer

/// The fast reader for `log-metric` and `log-batch` bodies must mean exactly what the general
/// parser means: whenever it accepts a body, both give the same values; when it declines, the
/// general parser decides.
@Suite("Fast request bodies")
struct FastBodiesTests {
    static let runID = "0123456789abcdef0123456789abcdef"

    /// Bodies the fast path must take (so that the benchmarked path is the fast one).
    static let plainMetrics: [String] = [
        #"{"run_id": "\#(runID)", "key": "loss", "value": 0.25, "timestamp": 1700000000000, "step": 3}"#,
        #"{"run_uuid":"\#(runID)","key":"acc","value":-1.5e-3,"timestamp":"1700000000001","step":"-2"}"#,
        #"  {"key": "k", "value": 0, "timestamp": 0, "run_id": "\#(runID)"}  "#,
        #"{"run_id": "\#(runID)", "key": "x", "value": "NaN", "timestamp": 5, "model_id": null, "extra": {"a": [1, true, null]}}"#,
        #"{"run_id": "\#(runID)", "key": "näme/ü", "value": 1E2, "timestamp": 5, "dataset_name": "d", "dataset_digest": "abc"}"#,
        #"{"run_id": "", "run_uuid": "\#(runID)", "key": "x", "value": "-Infinity", "timestamp": 5, "step": 9223372036854775807}"#,
    ]

    /// Bodies the fast path may decline; whatever it says must agree with the general parser.
    static let oddMetrics: [String] = [
        #"{"run_id": "\#(runID)", "key": "a\"b", "value": 1, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 01, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1., "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": .5, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": +1, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1e400, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": "1.5", "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": null, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": true, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": 1.0}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": " 7 "}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": 99999999999999999999}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": 1, "step": null}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1}"#,
        #"{"run_id": "\#(runID)", "value": 1, "timestamp": 1}"#,
        #"{"key": "k", "value": 1, "timestamp": 1}"#,
        #"{"run_id": 5, "key": "k", "value": 1, "timestamp": 1}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": 1,}"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": 1} x"#,
        #"{"run_id": "\#(runID)", "key": "k", "value": 1, "timestamp": 1"#,
        #"{"run_id": "\#(runID)", "key": "k", "key": "k2", "value": 1, "timestamp": 1}"#,
        #"[1, 2]"#,
        "",
        "{\"run_id\": \"\(runID)\", \"key\": \"k\u{1}\", \"value\": 1, \"timestamp\": 1}",
    ]

    static let plainBatches: [String] = [
        #"{"run_id": "\#(runID)", "metrics": [{"key": "b0", "value": 0.5, "timestamp": 1, "step": 1}, {"key": "b1", "value": 2, "timestamp": 1, "step": 1}]}"#,
        #"{"run_id": "\#(runID)", "params": [{"key": "lr", "value": "0.01"}], "tags": [{"key": "t", "value": ""}]}"#,
        #"{"run_id": "\#(runID)", "metrics": [], "params": null, "tags": []}"#,
        #"{"run_id": "\#(runID)"}"#,
    ]

    static let oddBatches: [String] = [
        #"{"run_id": "\#(runID)", "params": [{"key": "lr", "value": 0.01}]}"#,
        #"{"run_id": "\#(runID)", "tags": [{"key": "t"}]}"#,
        #"{"run_id": "\#(runID)", "metrics": [{"key": "b0", "value": 0.5}]}"#,
        #"{"run_id": "\#(runID)", "metrics": {"key": "b0"}}"#,
        #"{"run_id": "\#(runID)", "metrics": [{"key": "a", "value": 1, "timestamp": 1}], "metrics": [{"key": "b", "value": 2, "timestamp": 2}]}"#,
        #"{"metrics": []}"#,
        #"{"run_id": "\#(runID)", "metrics": [1]}"#,
    ]

    @Test func plainBodiesTakeTheFastPath() {
        for body in Self.plainMetrics {
            #expect(FastBodies.metric(Data(body.utf8)) != nil, "\(body)")
        }
        for body in Self.plainBatches {
            #expect(FastBodies.batch(Data(body.utf8)) != nil, "\(body)")
        }
    }

    @Test func metricBodiesAgreeWithTheGeneralParser() {
        for body in Self.plainMetrics + Self.oddMetrics {
            let data = Data(body.utf8)
            guard let fast = FastBodies.metric(data) else { continue }
            let general = Result { () throws -> (String, Metric) in
                let parsed = try JSONBody.parse(data)
                return (try MLflowController.runID(parsed), try MLflowController.metric(parsed, path: ""))
            }
            guard case .success(let (runID, metric)) = general else {
                Issue.record("the fast path accepted a body the general parser refuses: \(body)")
                continue
            }
            #expect(fast.runID == runID, "\(body)")
            #expect(Self.same(fast.metric, metric), "\(body)")
        }
    }

    @Test func batchBodiesAgreeWithTheGeneralParser() {
        for body in Self.plainBatches + Self.oddBatches {
            let data = Data(body.utf8)
            guard let fast = FastBodies.batch(data) else { continue }
            let general = Result { () throws -> (String, [Metric], [LoomCore.Param], [LoomCore.Tag]) in
                let parsed = try JSONBody.parse(data)
                let metrics = try parsed.objects("metrics").map { try MLflowController.metric($0, path: "") }
                return (try MLflowController.runID(parsed), metrics, try parsed.tags("params"), try parsed.tags("tags"))
            }
            guard case .success(let (runID, metrics, params, tags)) = general else {
                Issue.record("the fast path accepted a body the general parser refuses: \(body)")
                continue
            }
            #expect(fast.runID == runID, "\(body)")
            #expect(fast.metrics.count == metrics.count && zip(fast.metrics, metrics).allSatisfy { Self.same($0.metric, $1) }, "\(body)")
            #expect(fast.params.map { [$0.key, $0.value] } == params.map { [$0.key, $0.value] }, "\(body)")
            #expect(fast.tags.map { [$0.key, $0.value] } == tags.map { [$0.key, $0.value] }, "\(body)")
        }
    }

    /// Numbers take a shortcut when their digits and exponent are small (see
    /// `HotJSONReader.exactDouble`); whichever way they go, the value must be the one the
    /// general parser reads, to the last bit, and the exact one.
    @Test func numbersReadAsTheGeneralParserReadsThem() throws {
        var rng = SystemRandomNumberGenerator()
        var texts = ["0", "-0", "0.0", "1", "-1", "0.1", "0.25", "1e22", "1e23", "9007199254740993", "9007199254740992",
                     "123456789012345678", "1.7976931348623157e308", "5e-324", "2.2250738585072014e-308",
                     "0.30000000000000004", "1E-22", "1e-23", "4.35", "100e-2", "0.000001", "-12.5E+3"]
        for _ in 0..<2000 {
            let d = Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)  // finite
            let small = Double(Int64.random(in: -1_000_000...1_000_000, using: &rng)) / 1000
            texts.append("\(d)")
            texts.append("\(small)")
            texts.append(String(format: "%.6f", small))
            texts.append(String(format: "%.3e", small))
            texts.append(String(format: "%.17g", Double.random(in: -1e6...1e6, using: &rng)))
        }
        for text in texts {
            let body = #"{"run_id": "\#(Self.runID)", "key": "k", "value": \#(text), "timestamp": \#(text.contains(where: { ".eE".contains($0) }) ? "1" : text)}"#
            let data = Data(body.utf8)
            let general = try MLflowController.metric(try JSONBody.parse(data), path: "")
            let fast = try #require(FastBodies.metric(data), "\(body)")
            #expect(fast.value.bitPattern == general.value.bitPattern, "\(text)")
            // Both read the number exactly (JSONSerialization, on Linux, did not).
            #expect(general.value == Double(text)!, "\(text)")
            #expect(fast.timestamp == general.timestamp, "\(text)")
        }
    }

    static func same(_ a: Metric, _ b: Metric) -> Bool {
        a.key == b.key && a.timestamp == b.timestamp && a.step == b.step && a.modelID == b.modelID
            && a.datasetName == b.datasetName && a.datasetDigest == b.datasetDigest
            && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
    }
}
