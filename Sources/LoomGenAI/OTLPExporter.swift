import AsyncHTTPClient
import Foundation
import LoomCore
import Logging
import NIOCore
import NIOHTTP1

/// Sends finished gateway traces to an OpenTelemetry collector over OTLP/HTTP with the JSON
/// encoding (`POST {endpoint}/v1/traces`), each call as a server span with its steps as child
/// spans and the GenAI semantic conventions' attributes. The traces are finished records by the
/// time they are sent, so this is a batch of JSON, not a tracer: swift-otel's exporter lives
/// behind its tracer and would cost every clean build (CI) several minutes more for it.
public final class OTLPExporter: Sendable {
    let url: String
    let client: HTTPClient
    let logger: Logger

    public init(endpoint: String, client: HTTPClient, logger: Logger) {
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        url = base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
        self.client = client
        self.logger = logger
    }

    public func export(_ traces: [GatewayTrace]) async {
        guard !traces.isEmpty else { return }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: Self.body(traces).jsonBytes))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 1 << 20)
            if response.status.code >= 300 {
                logger.warning("gateway: the OTLP collector at \(url) answered \(response.status.code) to \(traces.count) traces")
            }
        } catch {
            logger.warning("gateway: \(traces.count) traces not sent to the OTLP collector at \(url): \(error)")
        }
    }

    static func attribute(_ key: String, _ value: JSONValue) -> JSONValue {
        let v: JSONValue = switch value {
        case .string(let s): .object(["stringValue": .string(s)])
        case .bool(let b): .object(["boolValue": .bool(b)])
        case .number(let d, let raw):
            if let raw, let i = Int64(raw) { .object(["intValue": .string(String(i))]) } else { .object(["doubleValue": .number(d, raw: nil)]) }
        default: .object(["stringValue": .string(value.jsonString)])
        }
        return .object(["key": .string(key), "value": v])
    }

    static func nanos(_ millis: Int64, plusMicros micros: Int64) -> JSONValue { .string(String(millis * 1_000_000 + micros * 1000)) }

    /// The `ExportTraceServiceRequest` for `traces`.
    static func body(_ traces: [GatewayTrace]) -> JSONValue {
        var spans: [JSONValue] = []
        for t in traces {
            let root = String(t.id.prefix(16))
            var attributes: [JSONValue] = [
                attribute("gen_ai.operation.name", .string(t.task == "embeddings" ? "embeddings" : "chat")),
                attribute("gen_ai.request.model", .string(t.route)),
                attribute("gen_ai.usage.input_tokens", .int(t.promptTokens)),
                attribute("gen_ai.usage.output_tokens", .int(t.completionTokens)),
                attribute("http.response.status_code", .int(Int64(t.status))),
                attribute("loom.workspace", .string(t.workspace)),
                attribute("loom.cost", .number(t.cost, raw: nil)),
                attribute("loom.stream", .bool(t.stream)),
            ]
            if let p = t.provider { attributes.append(attribute("gen_ai.provider.name", .string(p))) }
            if let m = t.model { attributes.append(attribute("gen_ai.response.model", .string(m))) }
            if !t.key.isEmpty { attributes.append(attribute("loom.gateway_key", .string(t.key))) }
            var status: [String: JSONValue] = ["code": .int(t.status >= 400 ? 2 : 1)]
            if let e = t.error { status["message"] = .string(e) }
            spans.append(.object([
                "traceId": .string(t.id), "spanId": .string(root), "name": .string("gateway \(t.task) \(t.route)"), "kind": .int(2),
                "startTimeUnixNano": nanos(t.startTime, plusMicros: 0), "endTimeUnixNano": nanos(t.startTime, plusMicros: t.durationMicros),
                "attributes": .array(attributes), "status": .object(status),
            ]))
            let children = (try? JSONValue.parse(Array(t.spansJSON.utf8)))?.arrayValue ?? []
            for (i, child) in children.enumerated() {
                let start = Int64(child["start_us"]?.doubleValue ?? 0)
                let duration = Int64(child["duration_us"]?.doubleValue ?? 0)
                let attrs = (child["attributes"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { attribute("loom." + $0.key, $0.value) }
                let spanID = String(t.id.suffix(12)) + String(format: "%04x", i + 1)
                spans.append(.object([
                    "traceId": .string(t.id), "spanId": .string(spanID), "parentSpanId": .string(root), "name": .string(child["name"]?.stringValue ?? "step"),
                    "kind": .int(1), "startTimeUnixNano": nanos(t.startTime, plusMicros: start), "endTimeUnixNano": nanos(t.startTime, plusMicros: start + duration),
                    "attributes": .array(attrs),
                ]))
            }
        }
        return .object(["resourceSpans": .array([.object([
            "resource": .object(["attributes": .array([attribute("service.name", .string("loom"))])]),
            "scopeSpans": .array([.object(["scope": .object(["name": .string("loom.gateway")]), "spans": .array(spans)])]),
        ])])])
    }
}
