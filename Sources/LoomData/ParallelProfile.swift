import Dispatch
import Foundation
import LoomCore
import Synchronization

/// Reads CSV data on every core: one thread parses records into batches while the calling thread
/// hands each batch to workers that run at once (`DispatchQueue.concurrentPerform`), each owning
/// part of the work (some columns, some rules) and seeing every record in order.
public enum BatchPipeline {
    static let batchRows = 4096
    /// Workers besides the parsing thread: one core each, leaving one to parsing
    /// (`LOOM_DATA_LANES` overrides).
    public static var defaultLanes: Int {
        if let text = ProcessInfo.processInfo.environment["LOOM_DATA_LANES"], let n = Int(text), n >= 1 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
    }

    /// `workers`: made from the header. Returns what the reader read (digest, size).
    static func run(_ files: [TableFile], workers make: ([String]) throws -> [any BatchWorker]) throws -> (TableContent, columns: [String]?) {
        let queue = BatchQueue()
        let producer = Thread {
            do {
                var sink = BatchingSink(queue: queue)
                let content = try TableReader.read(files, into: &sink)
                try sink.flush()
                queue.finish(.success(content))
            } catch {
                queue.finish(.failure(error))
            }
        }
        producer.stackSize = 1 << 22
        producer.start()
        defer { queue.cancel() }
        guard let names = try queue.columns() else { return (try queue.content(), nil) }
        let workers = try make(names)
        while let batch = try queue.pop() {
            DispatchQueue.concurrentPerform(iterations: workers.count) { w in workers[w].consume(batch) }
        }
        return (try queue.content(), names)
    }
}

/// Part of the work on every batch.
protocol BatchWorker: Sendable {
    func consume(_ batch: RowBatch)
}

/// Profiles CSV data on every core (see `BatchPipeline`): the columns are shared out between
/// workers; each column is profiled by one worker, in row order, so the profile is the one
/// `Profiler` makes on one thread, exactly. JSON Lines (whose columns may appear mid-stream) is
/// profiled on one thread.
public enum ParallelProfile {
    public static func run(_ files: [TableFile], lanes: Int = BatchPipeline.defaultLanes) throws -> (TableContent, DatasetProfile) {
        if files.first?.format != .csv || lanes < 1 || ProcessInfo.processInfo.activeProcessorCount < 2 {
            var profiler = Profiler()
            let content = try TableReader.read(files, into: &profiler)
            return (content, profiler.profile())
        }
        var groups: [ColumnGroup] = []
        let (content, names) = try BatchPipeline.run(files) { names in
            groups = ColumnGroup.split(names, lanes)
            return groups
        }
        return (content, ColumnGroup.profile(groups, columns: names?.count ?? 0))
    }
}

/// Validates CSV data on every core (see `BatchPipeline`): the rules are shared out between
/// workers (and, for `schema` rules, the columns between profiling workers). Each rule sees every
/// record in order, so the report is the one `Validator` makes on one thread.
public enum ParallelValidate {
    public static func run(
        _ files: [TableFile], suite: ExpectationSuite, now: Date = Date(), lanes: Int = BatchPipeline.defaultLanes
    ) throws -> ValidationReport {
        if files.first?.format != .csv || lanes < 1 || ProcessInfo.processInfo.activeProcessorCount < 2 {
            var validator = Validator(suite: suite, now: now)
            _ = try TableReader.read(files, into: &validator)
            return validator.report()
        }
        let all = suite.expectations
        let shares = (0..<min(lanes, all.count)).map { g in Array(stride(from: g, to: all.count, by: min(lanes, all.count))) }
        let needsProfile = all.contains { $0.rule == .schema }
        var ruleGroups: [RuleGroup] = []
        var columnGroups: [ColumnGroup] = []
        let (_, names) = try BatchPipeline.run(files) { names in
            ruleGroups = try shares.map { try RuleGroup(indices: $0, suite: suite, now: now, columns: names) }
            if needsProfile { columnGroups = ColumnGroup.split(names, lanes) }
            return ruleGroups + columnGroups
        }
        guard let names else { return Validator(suite: suite, now: now).report() }
        let profile = needsProfile ? ColumnGroup.profile(columnGroups, columns: names.count) : nil
        var results = [ExpectationResult?](repeating: nil, count: all.count)
        var rows: Int64 = 0
        for g in ruleGroups {
            let report = g.report(profile: profile)
            rows = report.rows
            for (k, r) in report.results.enumerated() { results[g.indices[k]] = r }
        }
        let merged = results.compactMap { $0 }
        return ValidationReport(passed: merged.allSatisfy(\.passed), rows: rows, results: merged)
    }
}

/// Some of the rules of a suite, checked by one worker.
final class RuleGroup: BatchWorker {
    let indices: [Int]
    private let state: Mutex<Validator>

    init(indices: [Int], suite: ExpectationSuite, now: Date, columns: [String]) throws {
        self.indices = indices
        var v = Validator(suite: ExpectationSuite(expectations: indices.map { suite.expectations[$0] }), now: now, profiles: false)
        try v.begin(columns: columns)
        state = Mutex(v)
    }

    func consume(_ batch: RowBatch) {
        state.withLock { v in
            for r in 0..<batch.count { v.check(BatchRecord(batch: batch, index: r)) }
        }
    }

    func report(profile: DatasetProfile?) -> ValidationReport {
        state.withLock { $0.report(profile: profile) }
    }
}

/// A record of a batch, read in place.
struct BatchRecord: RecordView {
    let batch: RowBatch
    let index: Int

    var count: Int { batch.columns }
    var line: Int { batch.lines[index] }
    var file: String { batch.file }
    func kind(_ i: Int) -> FieldKind { batch.kinds[index * batch.columns + i] }
    func withBytes<T>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        let f = index * batch.columns + i
        let start = f == 0 ? 0 : batch.ends[f - 1]
        return try batch.bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<batch.ends[f]])) }
    }
    func string(_ i: Int) -> String? {
        kind(i) == .null ? nil : withBytes(i) { String(decoding: $0, as: UTF8.self) }
    }
}

/// Records of one file, one after another in one buffer.
struct RowBatch: Sendable {
    let columns: Int
    let file: String
    var bytes: [UInt8] = []
    /// Where each field ends in `bytes`, row after row.
    var ends: [Int] = []
    var kinds: [FieldKind] = []
    var lines: [Int] = []

    init(columns: Int, file: String) {
        self.columns = columns
        self.file = file
        bytes.reserveCapacity(1 << 20)
        ends.reserveCapacity(columns * BatchPipeline.batchRows)
        kinds.reserveCapacity(columns * BatchPipeline.batchRows)
        lines.reserveCapacity(BatchPipeline.batchRows)
    }

    var count: Int { lines.count }
}

/// Some of the columns, profiled by one worker.
final class ColumnGroup: BatchWorker {
    let indices: [Int]
    private let state: Mutex<[ColumnProfiler]>
    private let counted = Mutex<Int64>(0)

    init(indices: [Int], names: [String]) {
        self.indices = indices
        state = Mutex(indices.map { ColumnProfiler(name: names[$0]) })
    }

    var rows: Int64 { counted.withLock { $0 } }

    func consume(_ batch: RowBatch) {
        counted.withLock { $0 += Int64(batch.count) }
        state.withLock { columns in
            columns.withUnsafeMutableBufferPointer { profilers in
                batch.bytes.withUnsafeBufferPointer { bytes in
                    batch.ends.withUnsafeBufferPointer { ends in
                        batch.kinds.withUnsafeBufferPointer { kinds in
                            let width = batch.columns
                            // A column at a time: its profiler stays in cache for the batch.
                            for (k, c) in indices.enumerated() {
                                for r in 0..<batch.count {
                                    let i = r * width + c
                                    let start = i == 0 ? 0 : ends[i - 1]
                                    profilers[k].add(kinds[i], UnsafeBufferPointer(rebasing: bytes[start..<ends[i]])) { (batch.lines[r], batch.file) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func take() -> [ColumnProfiler] { state.withLock { $0 } }

    /// The columns dealt out round-robin to `lanes` groups.
    static func split(_ names: [String], _ lanes: Int) -> [ColumnGroup] {
        let n = max(1, min(lanes, names.count))
        return (0..<n).map { g in ColumnGroup(indices: Array(stride(from: g, to: names.count, by: n)), names: names) }
    }

    /// The profile the groups gathered.
    static func profile(_ groups: [ColumnGroup], columns: Int) -> DatasetProfile {
        var all = [ColumnProfiler?](repeating: nil, count: columns)
        var rows: Int64 = 0
        for g in groups {
            rows = g.rows
            for (k, c) in g.take().enumerated() { all[g.indices[k]] = c }
        }
        return Profiler(rows: rows, columns: all.compactMap { $0 }).profile()
    }
}

/// Collects parsed records into batches and hands them to the queue.
struct BatchingSink: RowSink {
    let queue: BatchQueue
    private var batch: RowBatch?
    private var columns = 0

    init(queue: BatchQueue) { self.queue = queue }

    mutating func begin(columns names: [String]) throws {
        columns = names.count
        queue.setColumns(names)
    }

    /// The `Row.source` of the rows in `batch` (a batch holds one file's rows).
    private var source = -1

    mutating func consume(_ row: Row) throws {
        if batch == nil || source != row.source {
            try flush()
            batch = RowBatch(columns: columns, file: row.file)
            source = row.source
        }
        let offset = batch!.bytes.count
        batch!.bytes.append(contentsOf: row.bytes)
        batch!.ends.append(contentsOf: row.ends.lazy.map { offset + $0 })
        batch!.kinds.append(contentsOf: row.kinds)
        batch!.lines.append(row.line)
        if batch!.lines.count == BatchPipeline.batchRows { try flush() }
    }

    mutating func flush() throws {
        guard let b = batch else { return }
        batch = nil
        source = -1
        if b.count > 0 { try queue.push(b) }
    }
}

/// A bounded hand-over of batches from the parsing thread to the profiling one.
final class BatchQueue: Sendable {
    private struct State {
        var columns: [String]?
        var batches: [RowBatch] = []
        var result: Result<TableContent, any Error>?
        var cancelled = false
    }
    private let state = Mutex(State())
    private let items = DispatchSemaphore(value: 0)
    private let space = DispatchSemaphore(value: 3)
    private let header = DispatchSemaphore(value: 0)

    func setColumns(_ names: [String]) {
        state.withLock { $0.columns = names }
        header.signal()
    }

    /// Blocks until the header is known; nil when the producer ended first.
    func columns() throws -> [String]? {
        header.wait()
        return state.withLock { $0.columns }
    }

    /// Blocks while three batches wait; throws once the consumer has gone.
    func push(_ batch: RowBatch) throws {
        space.wait()
        let cancelled = state.withLock { s -> Bool in
            if !s.cancelled { s.batches.append(batch) }
            return s.cancelled
        }
        if cancelled { throw CancellationError() }
        items.signal()
    }

    func finish(_ result: Result<TableContent, any Error>) {
        state.withLock { $0.result = result }
        header.signal()
        items.signal()
    }

    /// The next batch, or nil at the end; rethrows the producer's error.
    func pop() throws -> RowBatch? {
        while true {
            items.wait()
            let (batch, result) = state.withLock { s -> (RowBatch?, Result<TableContent, any Error>?) in
                s.batches.isEmpty ? (nil, s.result) : (s.batches.removeFirst(), nil)
            }
            if let batch {
                space.signal()
                return batch
            }
            if let result {
                items.signal()  // later calls see the end too
                if case .failure(let error) = result { throw error }
                return nil
            }
        }
    }

    func content() throws -> TableContent {
        guard let result = state.withLock({ $0.result }) else { throw LoomError.internalError("the reader has not finished") }
        return try result.get()
    }

    /// The consumer is gone: let a waiting producer go.
    func cancel() {
        state.withLock { $0.cancelled = true }
        space.signal()
    }
}

/// Runs blocking data work on a thread of its own, so that it never holds one of the few threads
/// of Swift's cooperative pool.
public enum DataWork {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let t = Thread { c.resume(with: Result { try body() }) }
            t.stackSize = 1 << 22
            t.start()
        }
    }
}
