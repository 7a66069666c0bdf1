// loom-bench-baseline: the smallest Hummingbird 2 server that answers the same POST paths that the
// HTTP benchmark (bench/run.sh http) sends to Loom and to `mlflow server`, and `/invocations`, the
// upstream model server of the endpoint benchmark (bench/endpoint_bench.py). It reads the request
// body and returns a constant `{}`, so its throughput is the ceiling that the HTTP stack alone
// allows on this machine; Loom's figure is compared to it.
//
// Usage: loom-bench-baseline [PORT]      (or BENCH_PORT=...; default 8080). Binds 127.0.0.1.
import Foundation
import Hummingbird

let arguments = CommandLine.arguments
let port: Int = {
    if arguments.count > 1, let p = Int(arguments[1]) { return p }
    if let env = ProcessInfo.processInfo.environment["BENCH_PORT"], let p = Int(env) { return p }
    return 8080
}()

let router = Router()
let constant = ByteBuffer(string: "{}")

@Sendable func constantResponse(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
    // Read the body as a real handler must (Loom decodes it); cap it like a sane server would.
    _ = try await request.body.collect(upTo: 1 << 20)
    return Response(
        status: .ok,
        headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: constant))
}

// The endpoint benchmark's stand-in model server: a constant scoring answer.
let predictions = ByteBuffer(string: #"{"predictions": [0]}"#)
router.post("/invocations") { request, _ -> Response in
    _ = try await request.body.collect(upTo: 1 << 20)
    return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: predictions))
}
router.post("/api/2.0/mlflow/runs/log-metric", use: constantResponse)
router.post("/api/2.0/mlflow/runs/log-batch", use: constantResponse)
router.get("/health") { _, _ in "OK" }

let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "loom-bench-baseline"))
try await app.runService()
