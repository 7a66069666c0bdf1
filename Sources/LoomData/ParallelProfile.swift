import Dispatch
import Foundation
import LoomCore
import Synchronization

/// Reads CSV data on every core: one thread reads the files ahead, one parses records into
/// batches (`CSVBatchParser`), and the calling thread hands each batch to workers that run at
/// once (`DispatchQueue.concurrentPerform`), each owning part of the work (some columns, some
/// rules) and seeing every record in order.
public enum BatchPipeline {
    /// Workers: one per core (reading and parsing take a fraction of a core; `LOOM_DATA_LANES`
    /// overrides).
    public static var defaultLanes: Int {
        if let text = ProcessInfo.processInfo.environment["LOOM_DATA_LANES"], let n = Int(text), n >= 1 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    /// `workers`: made from the header. Returns what the reader read (digest, size; nil when not
    /// `digesting`).
    static func run(
        _ files: [TableFile], digesting: Bool = true, workers make: ([String]) throws -> [any BatchWorker]
    ) throws -> (TableContent?, columns: [String]?) {
        let queue = BatchQueue()
        let producer = Thread {
            do {
                queue.finish(.success(try CSVBatchReader.read(files, into: queue, digesting: digesting)))
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
        if !files.allSatisfy({ $0.format == .csv }) || lanes < 1 || ProcessInfo.processInfo.activeProcessorCount < 2 {
            var profiler = Profiler()
            let content = try TableReader.read(files, into: &profiler)
            return (content, profiler.profile())
        }
        var groups: [ColumnGroup] = []
        let (content, names) = try BatchPipeline.run(files) { names in
            groups = ColumnGroup.split(names, lanes)
            return groups
        }
        guard let content else { throw LoomError.internalError("the reader made no digest") }
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
        if !files.allSatisfy({ $0.format == .csv }) || lanes < 1 || ProcessInfo.processInfo.activeProcessorCount < 2 {
            var validator = Validator(suite: suite, now: now)
            _ = try TableReader.read(files, into: &validator)
            return validator.report()
        }
        let all = suite.expectations
        let shares = (0..<min(lanes, all.count)).map { g in Array(stride(from: g, to: all.count, by: min(lanes, all.count))) }
        let needsProfile = all.contains { $0.rule == .schema }
        var ruleGroups: [RuleGroup] = []
        var columnGroups: [ColumnGroup] = []
        // The digest is not part of a validation report: the file is not hashed.
        let (_, names) = try BatchPipeline.run(files, digesting: false) { names in
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
        state.withLock { $0.check(batch) }
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
    var line: Int { batch.line(index) }
    var file: String { batch.file }
    func kind(_ i: Int) -> FieldKind { batch.kind(index * batch.columns + i) }
    func withBytes<T>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try body(batch.field(index * batch.columns + i))
    }
    func string(_ i: Int) -> String? {
        kind(i) == .null ? nil : withBytes(i) { String(decoding: $0, as: UTF8.self) }
    }
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
                let width = batch.columns
                let rows = batch.count
                // A column at a time: its profiler stays in cache for the batch. (The closure
                // names where the first text is; it holds the batch without retaining it, the
                // batch outliving the call.)
                for (k, c) in indices.enumerated() {
                    var i = c
                    for r in 0..<rows {
                        let b = batch.field(i)
                        profilers[k].add(FieldKinds.of(b), b) { [unowned(unsafe) batch] in (batch.line(r), batch.file) }
                        i += width
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

/// Reads CSV files into batches and hands them to the queue: a thread of its own reads the
/// files ahead (and digests them), this one parses.
enum CSVBatchReader {
    private enum Event: Sendable {
        case bytes(ByteBlock, Int)
        case end(digest: String, size: Int64)
    }

    static func read(_ files: [TableFile], into queue: BatchQueue, digesting: Bool) throws -> TableContent? {
        guard !files.isEmpty else { throw LoomError.invalidParameter("no files to read") }
        let events = HandOff<Event>(capacity: 4)
        let reader = Thread {
            do {
                for file in files {
                    let (digest, size) = try FileBytes.blocks(file.path, digesting: digesting) { try events.push(.bytes($0, $1)) }
                    try events.push(.end(digest: digest, size: size))
                }
                events.finish(nil)
            } catch {
                events.finish(error)
            }
        }
        reader.start()
        defer { events.cancel() }

        var columns: [String]?
        var digests: [TableContent.FileDigest] = []
        var parser = CSVBatchParser(delimiter: TableReader.delimiter(of: files[0]), file: files[0].relativePath, columns: nil)
        func push(_ batch: RowBatch?) throws {
            if columns == nil, let header = parser.header {
                columns = header
                queue.setColumns(header)
            }
            if let batch { try queue.push(batch) }
        }
        while let event = try events.pop() {
            switch event {
            case .bytes(let block, let length):
                try push(try parser.feed(block, offset: FileBytes.headroom, length: length))
            case .end(let digest, let size):
                try push(try parser.finish())
                let file = files[digests.count]
                digests.append(.init(path: file.relativePath, digest: digest, size: size))
                if digests.count < files.count {
                    let next = files[digests.count]
                    parser = CSVBatchParser(delimiter: TableReader.delimiter(of: next), file: next.relativePath, columns: columns)
                }
            }
        }
        return digesting ? TableContent(files: digests, format: .csv) : nil
    }
}

/// A bounded hand-over of values from one thread to another, in order: `push` blocks while
/// `capacity` values wait; `pop` blocks until one comes, and returns nil at the end (or throws
/// the producer's error). Once the consumer has gone (`cancel`), `push` throws.
final class HandOff<Value: Sendable>: Sendable {
    private struct State {
        var values: [Value] = []
        var ended = false
        var failure: (any Error)?
        var cancelled = false
    }
    private let state = Mutex(State())
    private let items = DispatchSemaphore(value: 0)
    private let space: DispatchSemaphore

    init(capacity: Int) { space = DispatchSemaphore(value: capacity) }

    func push(_ value: Value) throws {
        space.wait()
        let cancelled = state.withLock { s -> Bool in
            if !s.cancelled { s.values.append(value) }
            return s.cancelled
        }
        if cancelled { throw CancellationError() }
        items.signal()
    }

    /// The end of the values (`error`: the producer failed).
    func finish(_ error: (any Error)?) {
        state.withLock {
            $0.ended = true
            $0.failure = error
        }
        items.signal()
    }

    func pop() throws -> Value? {
        while true {
            items.wait()
            let (value, ended, failure) = state.withLock { s -> (Value?, Bool, (any Error)?) in
                s.values.isEmpty ? (nil, s.ended, s.failure) : (s.values.removeFirst(), false, nil)
            }
            if let value {
                space.signal()
                return value
            }
            if ended {
                items.signal()  // later calls see the end too
                if let failure { throw failure }
                return nil
            }
        }
    }

    /// The consumer is gone: let a waiting producer go.
    func cancel() {
        state.withLock { $0.cancelled = true }
        space.signal()
    }
}

/// The hand-over of batches from the parsing thread to the workers, with the header first and
/// what was read at the end.
final class BatchQueue: Sendable {
    private let batches = HandOff<RowBatch>(capacity: 3)
    private let state = Mutex<(columns: [String]?, result: Result<TableContent?, any Error>?)>((nil, nil))
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

    func push(_ batch: RowBatch) throws { try batches.push(batch) }

    func finish(_ result: Result<TableContent?, any Error>) {
        state.withLock { $0.result = result }
        header.signal()
        if case .failure(let error) = result { batches.finish(error) } else { batches.finish(nil) }
    }

    /// The next batch, or nil at the end; rethrows the producer's error.
    func pop() throws -> RowBatch? { try batches.pop() }

    func content() throws -> TableContent? {
        guard let result = state.withLock({ $0.result }) else { throw LoomError.internalError("the reader has not finished") }
        return try result.get()
    }

    /// The consumer is gone: let a waiting producer go.
    func cancel() { batches.cancel() }
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
