import Foundation
import LoomCore
import LoomStore
import Synchronization

/// A gateway call's trace while it runs: spans are added as each step ends, and `finish`
/// makes the record the recorder writes. Shared by the call and, for a stream, by the relay
/// that ends it.
final class TraceBuilder: Sendable {
    struct Span {
        var name: String
        var startMicros: Int64
        var durationMicros: Int64
        var attributes: [String: JSONValue]
    }

    struct State {
        var route: String?
        var workspace: String
        var key: String
        var task: String
        var provider: String?
        var model: String?
        var stream = false
        var usage = TokenUsage()
        var cost = 0.0
        var input = ""
        /// The input as JSON, made text when the trace is written (not on the call's path).
        var inputValue: JSONValue?
        var output = ""
        /// A whole answer, read for what it says when the trace is written (not on the call's path).
        var outputAnswer: [UInt8]?
        /// Room for a call's usual spans (policies, an attempt or two) at once.
        var spans: [Span] = {
            var spans: [Span] = []
            spans.reserveCapacity(4)
            return spans
        }()
        var finished = false
    }

    let id: String
    let started: ContinuousClock.Instant
    let startMillis: Millis
    let state: Mutex<State>

    /// The longest input or output kept on a trace.
    static let textLimit = 16 << 10

    init(caller: GatewayCaller, task: String) {
        started = .now
        startMillis = Clock.nowMillis()
        // Time-ordered, so the trace table's key index grows at its end (a W3C trace id needs
        // only to be unique; a caller's `traceparent` id is kept as it is).
        id = caller.traceID ?? Identifiers.newTimeOrderedHexID(millis: startMillis)
        state = Mutex(State(workspace: caller.workspace, key: caller.key?.id ?? "", task: task))
    }

    func micros(_ instant: ContinuousClock.Instant) -> Int64 {
        let d = instant - started
        return d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    /// A span from `start` to now.
    func span(_ name: String, since start: ContinuousClock.Instant, _ attributes: [String: JSONValue] = [:]) {
        let s = micros(start), e = micros(.now)
        state.withLock { $0.spans.append(Span(name: name, startMicros: s, durationMicros: e - s, attributes: attributes)) }
    }

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }

    /// Requests up to this size keep their input as a value until the flush makes it text; a
    /// larger one's is made text (and cut) now, so that traces waiting for the flush take no
    /// more memory than their text would.
    static let deferLimit = 2 << 10

    /// The call's input, from a request body of `bodyBytes` bytes.
    func setInput(_ value: JSONValue, bodyBytes: Int) {
        if bodyBytes <= Self.deferLimit {
            update { $0.inputValue = value }
        } else {
            let text = Self.cut(value.jsonString)
            update {
                $0.input = text
                $0.inputValue = nil
            }
        }
    }

    /// The call's whole answer (OpenAI's shape): one up to `deferLimit` bytes is kept as it is
    /// and read for what it says when the trace is written; a larger one is read now.
    func setOutput(_ answer: [UInt8]) {
        if answer.count <= Self.deferLimit {
            update { $0.outputAnswer = answer }
        } else {
            let text = Gateway.answerText(answer)
            update {
                $0.output = text
                $0.outputAnswer = nil
            }
        }
    }

    /// The call's input as the client wrote it (its JSON text, when no policy changed it).
    func setInput(text: ArraySlice<UInt8>) {
        let input = Self.cut(String(decoding: text, as: UTF8.self))
        update {
            $0.input = input
            $0.inputValue = nil
        }
    }

    static func cut(_ text: String) -> String {
        guard text.utf8.count > textLimit else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: textLimit)
        while end > text.startIndex, end.samePosition(in: text.unicodeScalars) == nil { end = text.utf8.index(before: end) }
        return String(text[..<end]) + "…"
    }

    /// The finished record (nil when the call never reached a route, or it was finished already).
    /// Its input and spans are made JSON text when it is written (`FinishedTrace.record`), off
    /// the call's path.
    func finish(status: Int, error: String?) -> FinishedTrace? {
        let duration = micros(.now)
        return state.withLock { s -> FinishedTrace? in
            guard let route = s.route, !s.finished else { return nil }
            s.finished = true
            let trace = GatewayTrace(
                id: id, workspace: s.workspace, route: route, key: s.key, task: s.task, provider: s.provider, model: s.model, status: status,
                stream: s.stream, startTime: startMillis, durationMicros: duration, promptTokens: s.usage.prompt, completionTokens: s.usage.completion,
                cost: s.cost, input: Self.cut(s.input), output: Self.cut(s.output), error: error, spansJSON: "")
            return FinishedTrace(trace: trace, input: s.inputValue, answer: s.outputAnswer, spans: s.spans)
        }
    }

    /// The spans as JSON text: `[{"attributes":{...},"duration_us":N,"name":"...","start_us":N}]`,
    /// written straight from the spans (keys in the order `JSONValue` writes them).
    static func spansJSON(_ spans: [Span]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64 + spans.count * 128)
        out.append(UInt8(ascii: "["))
        for (i, span) in spans.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            if !span.attributes.isEmpty {
                out.append(contentsOf: #""attributes":"#.utf8)
                JSONValue.object(span.attributes).write(into: &out)
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: #""duration_us":"#.utf8)
            out.append(contentsOf: String(span.durationMicros).utf8)
            out.append(contentsOf: #","name":"#.utf8)
            JSONValue.writeString(span.name, into: &out)
            out.append(contentsOf: #","start_us":"#.utf8)
            out.append(contentsOf: String(span.startMicros).utf8)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }
}

/// A finished trace as the call leaves it: the record, with its input and spans still values.
struct FinishedTrace: Sendable {
    var trace: GatewayTrace
    var input: JSONValue?
    /// The whole answer, when what it says is still to be read.
    var answer: [UInt8]?
    var spans: [TraceBuilder.Span]?

    init(trace: GatewayTrace, input: JSONValue?, answer: [UInt8]? = nil, spans: [TraceBuilder.Span]?) {
        (self.trace, self.input, self.answer, self.spans) = (trace, input, answer, spans)
    }

    /// A record made already (one put back after a failed write).
    init(_ record: GatewayTrace) {
        (trace, input, answer, spans) = (record, nil, nil, nil)
    }

    /// The record as it is stored and exported.
    var record: GatewayTrace {
        var t = trace
        if let input { t.input = TraceBuilder.cut(input.jsonString) }
        if let answer { t.output = TraceBuilder.cut(Gateway.answerText(answer)) }
        if let spans { t.spansJSON = TraceBuilder.spansJSON(spans) }
        return t
    }
}

/// Finished traces waiting to be written in a batch (with the usage, every couple of seconds);
/// past `limit` waiting, new ones are dropped and counted rather than held without bound.
final class TraceRecorder: Sendable {
    let pending = Mutex<[FinishedTrace]>([])
    let dropped = Atomic<Int>(0)
    let limit: Int

    init(limit: Int = 100_000) {
        self.limit = limit
    }

    func add(_ trace: FinishedTrace?) {
        guard let trace else { return }
        let kept = pending.withLock { list -> Bool in
            guard list.count < limit else { return false }
            list.append(trace)
            return true
        }
        if !kept { dropped.add(1, ordering: .relaxed) }
    }

    /// The traces finished so far, made records (here, on the writer's side, not the calls').
    func take() -> [GatewayTrace] {
        pending.withLock { list in defer { list.removeAll(keepingCapacity: true) }; return list }.map(\.record)
    }

    func restore(_ traces: [GatewayTrace]) {
        pending.withLock { list in list = Array((traces.map(FinishedTrace.init) + list).prefix(limit)) }
    }
}

/// W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; its trace id.
enum TraceParent {
    static func traceID(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: "-")
        guard parts.count == 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16,
            parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase }), parts[1] != String(repeating: "0", count: 32)
        else { return nil }
        return String(parts[1])
    }
}
