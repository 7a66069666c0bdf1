// loom-test-llm-double: a TEST DOUBLE of the LLM providers, not a model. It stands in for OpenAI,
// Azure OpenAI and Anthropic in Loom's tests and benchmarks of its LLM gateway, since no real
// provider is reachable from the test machines. It speaks their wire formats (JSON and SSE streams,
// error shapes, API-key headers) and answers deterministically: a chat answer is "echo: " + the
// last user message, cut to `max_tokens` words; token counts are word counts; embeddings are unit
// vectors derived from a hash of the text; with tools it calls the first tool with {"echo": text}.
//
// Routes (the key is env LLM_DOUBLE_KEY, default `test-key`):
//   GET  /v1/models                                      OpenAI, Authorization: Bearer <key>
//   POST /v1/chat/completions                            OpenAI, Bearer
//   POST /v1/embeddings                                  OpenAI, Bearer
//   POST /openai/deployments/{d}/chat/completions         Azure, api-key: <key> (the model is d)
//   POST /openai/deployments/{d}/embeddings               Azure, api-key
//   POST /v1/messages                                    Anthropic, x-api-key: <key>
//   GET  /double/requests    the last 100 provider requests (method, path, query, headers with auth
//                            values replaced by "present", authorized, model, body), oldest first
//   GET  /double/streams     how many streams were written to their end, and how many were cut
//                            short because the client went away
//   POST /double/reset       clears the per-model counters, the recorded requests and the stream counts
//   GET  /health             "OK"
//
// Behaviour on demand, chosen by the model name (all that survives a gateway's routing), for chat,
// embeddings and messages alike; the directives may be combined in one name:
//   fail-<status>            always <status> in the provider's error shape (429/503: Retry-After: 1)
//   flaky-<n>-<status>       the first n requests for this exact model name fail so, then succeed
//   retry-after-<secs>-<n>   the first n requests answer 429 with Retry-After: <secs>, then succeed
//   slow-<ms>                waits <ms> before answering (before the first byte of a stream)
//   stream-slow-<ms>         waits <ms> between stream events
// Counters run from the start or the last /double/reset.
//
// Usage: loom-test-llm-double [PORT]      (or LLM_DOUBLE_PORT=...; default 8090; 0 picks a free port).
// Binds 127.0.0.1 and prints `listening on 127.0.0.1:PORT` once it is listening.
import Foundation
import Hummingbird

let arguments = CommandLine.arguments
let port: Int = {
    if arguments.count > 1, let p = Int(arguments[1]) { return p }
    if let env = ProcessInfo.processInfo.environment["LLM_DOUBLE_PORT"], let p = Int(env) { return p }
    return 8090
}()

let router = Router()

// OpenAI.
router.get("/v1/models") { request, _ in try await listModels(request) }
router.post("/v1/chat/completions") { request, _ in try await chatCompletions(request, keys: .bearer) }
router.post("/v1/embeddings") { request, _ in try await embeddings(request, keys: .bearer) }
router.post("/v1/moderations") { request, _ in try await moderations(request) }

// Azure OpenAI: the deployment stands for the model; `api-version` is accepted whatever it is.
router.post("/openai/deployments/{deployment}/chat/completions") { request, context in
    try await chatCompletions(request, keys: .azure, deployment: context.parameters.get("deployment"))
}
router.post("/openai/deployments/{deployment}/embeddings") { request, context in
    try await embeddings(request, keys: .azure, deployment: context.parameters.get("deployment"))
}

// Anthropic.
router.post("/v1/messages") { request, _ in try await messages(request) }

// Inspection for the tests.
router.get("/double/requests") { _, _ in
    jsonResponse(.array(DoubleState.shared.recorded()))
}
router.get("/double/streams") { _, _ in
    let counts = DoubleState.shared.streamCounts()
    return jsonResponse(["completed": .int(counts.completed), "aborted": .int(counts.aborted)])
}
router.post("/double/reset") { _, _ in
    DoubleState.shared.reset()
    return jsonResponse(["reset": true])
}
router.get("/health") { _, _ in "OK" }

let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "loom-test-llm-double"),
    onServerRunning: { channel in
        // Unbuffered, so that a script waiting for this line sees it at once.
        let line = "listening on 127.0.0.1:\(channel.localAddress?.port ?? port)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    })
try await app.runService()
