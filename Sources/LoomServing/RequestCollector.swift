import Foundation
import LoomCore
import Logging
import Metrics
import NIOCore
import Synchronization

/// Where collected records go: files in the artifact store (LoomServer implements it).
public protocol CollectionSink: Sendable {
    /// Stores `bytes` as the file at `path`, relative to the artifact store's root.
    func store(_ path: String, _ bytes: ByteBuffer) async throws
}

/// One scored request as collected: what came in, what went out, who answered, how fast.
public struct CollectedRecord: Sendable {
    public var workspace: String
    public var endpoint: String
    public var deployment: String
    public var correlationID: String
    public var time: Millis
    public var latencyNanos: Int64
    public var status: Int
    /// A mirrored copy's answer (never returned to the caller).
    public var mirrored: Bool
    public var request: ByteBuffer
    public var response: ByteBuffer

    public init(
        workspace: String, endpoint: String, deployment: String, correlationID: String, time: Millis, latencyNanos: Int64, status: Int,
        mirrored: Bool, request: ByteBuffer, response: ByteBuffer
    ) {
        self.workspace = workspace
        self.endpoint = endpoint
        self.deployment = deployment
        self.correlationID = correlationID
        self.time = time
        self.latencyNanos = latencyNanos
        self.status = status
        self.mirrored = mirrored
        self.request = request
        self.response = response
    }
}

/// Writes sampled requests and responses to the artifact store as time-partitioned JSON Lines,
/// off the request path: `offer` only enqueues (never waits, never fails the request); a
/// background task writes a file per endpoint and hour every `flushInterval` or `maxBatch`
/// records. When the queue holds `capacity` records or `maxQueuedBytes`, new samples are
/// dropped and counted instead (docs/deployment.md, "Request collection").
///
/// Files: `collected/WORKSPACE/ENDPOINT/YYYY/MM/DD/HH/REPLICA-FIRSTMILLIS-SEQ.jsonl`; labels
/// posted later: `collected/WORKSPACE/ENDPOINT/labels/YYYY/MM/DD/HH/...jsonl`.
public final class RequestCollector: Sendable {
    enum Item: Sendable {
        case record(CollectedRecord)
        case tick
    }

    let sink: any CollectionSink
    let replica: String
    let maxBatch: Int
    let maxQueuedBytes: Int
    let flushInterval: Duration
    let logger: Logger
    let stream: AsyncStream<Item>
    let continuation: AsyncStream<Item>.Continuation
    let queuedBytes = Atomic<Int>(0)
    let sequence = Atomic<Int>(0)
    /// Totals since start, for tests and `loom endpoint show`.
    let collectedCount = Atomic<Int>(0)
    let droppedCount = Atomic<Int>(0)
    let writeFailures: Counter

    public init(
        sink: any CollectionSink, replica: String = String(Identifiers.newHexID().prefix(8)), capacity: Int = 10_000, maxQueuedBytes: Int = 64 << 20,
        maxBatch: Int = 5_000, flushInterval: Duration = .seconds(2), logger: Logger
    ) {
        self.sink = sink
        self.replica = replica
        self.maxBatch = maxBatch
        self.maxQueuedBytes = maxQueuedBytes
        self.flushInterval = flushInterval
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(max(1, capacity)))
        writeFailures = Counter(label: "loom_collector_write_failures_total")
    }

    /// Records taken and dropped since start.
    public var totals: (collected: Int, dropped: Int) { (collectedCount.load(ordering: .relaxed), droppedCount.load(ordering: .relaxed)) }

    /// Enqueues a record; false when it was dropped (the queue is full).
    @discardableResult
    public func offer(_ record: CollectedRecord) -> Bool {
        let size = record.request.readableBytes + record.response.readableBytes + 256
        guard queuedBytes.wrappingAdd(size, ordering: .relaxed).newValue <= maxQueuedBytes else {
            queuedBytes.wrappingSubtract(size, ordering: .relaxed)
            droppedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        switch continuation.yield(.record(record)) {
        case .enqueued:
            collectedCount.wrappingAdd(1, ordering: .relaxed)
            return true
        case .dropped, .terminated:
            queuedBytes.wrappingSubtract(size, ordering: .relaxed)
            droppedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        @unknown default:
            return false
        }
    }

    /// Writes what is queued until `finish` is called, then what is left.
    public func run() async {
        let ticker = Task { [continuation, flushInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: flushInterval)
                continuation.yield(.tick)
            }
        }
        defer { ticker.cancel() }
        var pending: [CollectedRecord] = []
        for await item in stream {
            switch item {
            case .record(let r):
                pending.append(r)
                if pending.count >= maxBatch {
                    await write(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            case .tick:
                if !pending.isEmpty {
                    await write(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
        if !pending.isEmpty { await write(pending) }
    }

    /// Stops taking records; `run` writes what is queued and returns.
    public func finish() {
        continuation.finish()
    }

    /// One file per workspace, endpoint and hour of the batch.
    func write(_ records: [CollectedRecord]) async {
        var groups: [String: [CollectedRecord]] = [:]
        for r in records {
            groups[Self.folder(workspace: r.workspace, endpoint: r.endpoint, time: r.time), default: []].append(r)
        }
        for (folder, group) in groups.sorted(by: { $0.key < $1.key }) {
            var out = ByteBuffer()
            var bytes = 0
            for r in group {
                Self.line(r, into: &out)
                bytes += r.request.readableBytes + r.response.readableBytes + 256
            }
            let seq = sequence.wrappingAdd(1, ordering: .relaxed).oldValue
            let path = "\(folder)/\(replica)-\(group[0].time)-\(seq).jsonl"
            do {
                try await sink.store(path, out)
            } catch {
                writeFailures.increment()
                droppedCount.wrappingAdd(group.count, ordering: .relaxed)
                logger.error("could not write collected requests", metadata: ["path": "\(path)", "records": "\(group.count)", "error": "\(error)"])
            }
            queuedBytes.wrappingSubtract(bytes, ordering: .relaxed)
        }
    }

    /// `collected/WORKSPACE/ENDPOINT/YYYY/MM/DD/HH`.
    public static func folder(workspace: String, endpoint: String, time: Millis, labels: Bool = false) -> String {
        let date = Date(timeIntervalSince1970: Double(time) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let c = calendar.dateComponents([.year, .month, .day, .hour], from: date)
        func two(_ n: Int?) -> String { n.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        return "collected/\(workspace)/\(endpoint)/\(labels ? "labels/" : "")\(c.year ?? 1970)/\(two(c.month))/\(two(c.day))/\(two(c.hour))"
    }

    static func iso(_ time: Millis) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(time) / 1000))
    }

    /// One JSON line: the request and response inline when they are JSON, as text otherwise.
    static func line(_ r: CollectedRecord, into out: inout ByteBuffer) {
        out.writeString("{\"time\":\"\(iso(r.time))\",\"time_ms\":\(r.time),\"endpoint\":\(JSONValue.quoted(r.endpoint)),")
        out.writeString("\"deployment\":\(JSONValue.quoted(r.deployment)),\"correlation_id\":\(JSONValue.quoted(r.correlationID)),")
        let latency = Double(r.latencyNanos) / 1_000_000
        out.writeString("\"status\":\(r.status),\"latency_ms\":\((latency * 1000).rounded() / 1000),\"mirrored\":\(r.mirrored),")
        embed("request", r.request, into: &out)
        out.writeStaticString(",")
        embed("response", r.response, into: &out)
        out.writeStaticString("}\n")
    }

    static func embed(_ key: String, _ body: ByteBuffer, into out: inout ByteBuffer) {
        let valid = body.readableBytes > 0 && body.withUnsafeReadableBytes { raw in (try? JSONValue.parse(raw)) != nil }
        if valid {
            // Valid JSON goes in as it is, minus line breaks (one record per line).
            out.writeString("\"\(key)\":")
            body.withUnsafeReadableBytes { raw in
                for byte in raw where byte != 0x0A && byte != 0x0D { out.writeInteger(byte) }
            }
        } else {
            out.writeString("\"\(key)_text\":\(JSONValue.quoted(String(decoding: body.readableBytesView, as: UTF8.self)))")
        }
    }
}
