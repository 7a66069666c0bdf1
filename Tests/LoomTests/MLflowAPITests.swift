import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomCore
import LoomServer
import LoomStore
import LoomTesting
import NIOCore
import Testing

/// MLflow-compatible API: shapes, statuses and bad input, over the real router in-process.
@Suite("MLflow API")
struct MLflowAPITests {
    @Test func errorsHaveMLflowCodesAndStatuses() async throws {
        try await withTestApp { client, _, _ in
            var (status, body) = try await client.json(.get, "/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef")
            #expect(status == .notFound)
            #expect(body["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: "{not json")
            #expect(status == .badRequest)
            #expect(body["error_code"] as? String == "BAD_REQUEST")
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: "[1,2]")
            #expect(status == .badRequest)
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": 123}"#)
            #expect(status == .badRequest)
            #expect(body["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "dup"}"#)
            #expect(status == .ok)
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "dup"}"#)
            #expect(status == .badRequest)
            #expect(body["error_code"] as? String == "RESOURCE_ALREADY_EXISTS")
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/runs/search", body: #"{"experiment_ids": ["0"], "filter": "metrics.acc >"}"#)
            #expect(status == .badRequest)
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/runs/search", body: #"{"experiment_ids": ["0"], "page_token": "%%%"}"#)
            #expect(status == .badRequest)
            (status, body) = try await client.json(.get, "/api/2.0/mlflow/no/such/route")
            #expect(status == .notFound)
            #expect(body["error_code"] as? String == "ENDPOINT_NOT_FOUND")
            (status, body) = try await client.json(.get, "/api/2.0/mlflow/experiments/get?experiment_id=abc")
            #expect(status == .badRequest)
            // Bytes that are not UTF-8 (a key among them: Foundation's JSON5 scanner traps on
            // those) are a 400, on every JSON route, and the server goes on.
            let notUTF8 = ByteBuffer(bytes: [0x7B, 0xFF, 0x41, 0x10, 0xFE, 0xE9, 0x65, 0xD3, 0x22, 0xC1, 0x07, 0x79, 0xC3])
            for uri in ["/api/v1/models", "/api/2.0/mlflow/experiments/create"] {
                let code = try await client.execute(uri: uri, method: .post, headers: [.contentType: "application/json"], body: notUTF8) { $0.status }
                #expect(code == .badRequest, "\(uri)")
            }
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "after"}"#)
            #expect(status == .ok)
        }
    }

    @Test func oversizedBodiesAreRefused() async throws {
        try await withTestApp { client, _, _ in
            let big = String(repeating: "x", count: 17 << 20)
            let (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "\#(big)"}"#)
            #expect(status == .contentTooLarge)
            #expect(body["error_code"] as? String == "REQUEST_LIMIT_EXCEEDED")
        }
    }

    @Test func badBatchChangesNothing() async throws {
        try await withTestApp { client, services, _ in
            let (_, created) = try await client.json(.post, "/api/2.0/mlflow/runs/create", body: #"{"experiment_id": "0"}"#)
            let runID = try #require(((created["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
            let bad = #"{"run_id": "\#(runID)", "metrics": [{"key": "ok", "value": 1, "timestamp": 1}, {"key": "bad", "value": "abc", "timestamp": 1}], "params": [{"key": "p", "value": "1"}]}"#
            let (status, _) = try await client.json(.post, "/api/2.0/mlflow/runs/log-batch", body: bad)
            #expect(status == .badRequest)
            let run = try await services.tracking.run(id: runID)
            #expect(run.metrics.isEmpty && run.params.isEmpty)
            let tooMany = (0..<101).map { #"{"key": "p\#($0)", "value": "v"}"# }.joined(separator: ",")
            let (status2, body2) = try await client.json(.post, "/api/2.0/mlflow/runs/log-batch", body: #"{"run_id": "\#(runID)", "params": [\#(tooMany)]}"#)
            #expect(status2 == .badRequest)
            #expect((body2["message"] as? String)?.contains("at most 100 params") == true)
            #expect(try await services.tracking.run(id: runID).params.isEmpty)
        }
    }

    @Test func metricsRoundTripIncludingNaN() async throws {
        try await withTestApp { client, _, _ in
            let (_, created) = try await client.json(.post, "/api/2.0/mlflow/runs/create", body: #"{"experiment_id": "0", "run_name": "r"}"#)
            let runID = try #require(((created["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String)
            var (status, _) = try await client.json(.post, "/api/2.0/mlflow/runs/log-metric", body: #"{"run_id": "\#(runID)", "key": "loss", "value": "NaN", "timestamp": 5, "step": "2"}"#)
            #expect(status == .ok)
            (status, _) = try await client.json(.post, "/api/2.0/mlflow/runs/log-metric", body: #"{"run_id": "\#(runID)", "key": "acc", "value": NaN, "timestamp": 5}"#)
            #expect(status == .ok)
            let (_, history) = try await client.json(.get, "/api/2.0/mlflow/metrics/get-history?run_id=\(runID)&metric_key=loss")
            let points = try #require(history["metrics"] as? [[String: Any]])
            #expect(points.count == 1)
            #expect(points[0]["value"] as? String == "NaN")
            #expect(points[0]["step"] as? Int == 2)
        }
    }

    @Test func artifactPathsCannotEscapeTheRoot() async throws {
        try await withTestApp { client, services, _ in
            let root = URL(fileURLWithPath: services.artifacts.location)
            let outside = root.deletingLastPathComponent().appendingPathComponent("escaped.txt")
            for raw in ["../escaped.txt", "%2e%2e/escaped.txt", "%252e%252e/escaped.txt", "a/..%2f..%2fescaped.txt", "a/%2e%2e/%2e%2e/escaped.txt", "a\\..\\x"] {
                let status = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/\(raw)", method: .put, body: ByteBuffer(string: "pwned")) { $0.status }
                #expect(status == .badRequest || status == .notFound, "\(raw) → \(status)")
            }
            #expect(!FileManager.default.fileExists(atPath: outside.path))
            // A symlink planted inside the tree cannot be followed.
            try FileManager.default.createDirectory(at: root.appendingPathComponent("0"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("0/link"), withDestinationURL: URL(fileURLWithPath: "/etc"))
            let read = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/link/passwd", method: .get) { $0.status }
            #expect(read == .badRequest)
            let write = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/link/x", method: .put, body: ByteBuffer(string: "x")) { $0.status }
            #expect(write == .badRequest)
            // Normal uploads stream to disk and come back byte for byte.
            let payload = String(repeating: "0123456789", count: 100_000)
            let put = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/dir/data.txt", method: .put, body: ByteBuffer(string: payload)) { $0 }
            #expect(put.status == .ok)
            #expect(put.headers[HTTPField.Name("X-Loom-Digest")!]?.hasPrefix("sha256:") == true)
            let got = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/dir/data.txt", method: .get) { String(buffer: $0.body) }
            #expect(got == payload)
            let (_, listing) = try await client.json(.get, "/api/2.0/mlflow-artifacts/artifacts?path=0/run/artifacts")
            let files = try #require(listing["files"] as? [[String: Any]])
            #expect(files.count == 1 && files[0]["path"] as? String == "dir" && files[0]["is_dir"] as? Bool == true)
        }
    }

    @Test func artifactSizeLimitIsEnforced() async throws {
        try await withTestApp(maxArtifactBytes: 1000) { client, services, _ in
            let status = try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/big.bin", method: .put, body: ByteBuffer(repeating: 1, count: 5000)) { $0.status }
            #expect(status == .contentTooLarge)
            let left = try await services.artifacts.list(try .init("0", allowRoot: true))
            #expect(left.isEmpty, "a refused upload leaves no file behind")
        }
    }

    @Test func healthReadyAndMetrics() async throws {
        try await withTestApp { client, _, _ in
            #expect(try await client.execute(uri: "/health", method: .get) { String(buffer: $0.body) } == "OK")
            let (status, body) = try await client.json(.get, "/ready")
            #expect(status == .ok && body["status"] as? String == "ready")
            _ = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "m"}"#)
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains("loom_http_requests_total"))
            #expect(metrics.contains("loom_store_write_batch_size"))
            #expect(metrics.contains("route=\"/api/2.0/mlflow/experiments/create\""))
        }
    }
}
