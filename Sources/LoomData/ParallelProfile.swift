import Dispatch
import Foundation
import LoomCore
import Synchronization

/// Profiles CSV data on every core: one thread parses records into batches while the calling
/// thread profiles each batch with the columns shared out between `lanes` workers
/// (`DispatchQueue.concurrentPerform`). Each column is profiled by one worker, in row order, so
/// the profile is the one `Profiler` makes on one thread, exactly. JSON Lines (whose columns may
/// appear mid-stream) is profiled on one thread.
public enum ParallelProfile {
    public static let batchRows = 4096

    public static func run(_ files: [TableFile], lanes: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> (TableContent, DatasetProfile) {
        if files.first?.format != .csv || lanes < 2 {
            var profiler = Profiler()
            let content = try TableReader.read(files, into: &profiler)
            return (content, profiler.profile())
        }
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
        guard let names = try queue.columns() else {
            // The producer failed before the header, or the files were empty.
            return (try queue.content(), Profiler().profile())
        }
        let groups = (0..<min(lanes, names.count)).map { g in
            ColumnGroup(indices: Array(stride(from: g, to: names.count, by: min(lanes, names.count))), names: names)
        }
        var rows: Int64 = 0
        while let batch = try queue.pop() {
            DispatchQueue.concurrentPerform(iterations: groups.count) { g in groups[g].consume(batch) }
            rows += Int64(batch.count)
        }
        let content = try queue.content()
        var columns = [ColumnProfiler?](repeating: nil, count: names.count)
        for g in groups {
            for (k, c) in g.take().enumerated() { columns[g.indices[k]] = c }
        }
        return (content, Profiler(rows: rows, columns: columns.compactMap { $0 }).profile())
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
        ends.reserveCapacity(columns * ParallelProfile.batchRows)
        kinds.reserveCapacity(columns * ParallelProfile.batchRows)
        lines.reserveCapacity(ParallelProfile.batchRows)
    }

    var count: Int { lines.count }
}

/// Some of the columns, profiled by one worker.
final class ColumnGroup: Sendable {
    let indices: [Int]
    private let state: Mutex<[ColumnProfiler]>

    init(indices: [Int], names: [String]) {
        self.indices = indices
        state = Mutex(indices.map { ColumnProfiler(name: names[$0]) })
    }

    func consume(_ batch: RowBatch) {
        state.withLock { columns in
            batch.bytes.withUnsafeBufferPointer { bytes in
                for r in 0..<batch.count {
                    let base = r * batch.columns
                    for (k, c) in indices.enumerated() {
                        let start = base + c == 0 ? 0 : batch.ends[base + c - 1]
                        let end = batch.ends[base + c]
                        columns[k].add(batch.kinds[base + c], UnsafeBufferPointer(rebasing: bytes[start..<end])) { (batch.lines[r], batch.file) }
                    }
                }
            }
        }
    }

    func take() -> [ColumnProfiler] { state.withLock { $0 } }
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

    mutating func consume(_ row: Row) throws {
        if batch == nil || batch!.file != row.file { try flush() }
        if batch == nil { batch = RowBatch(columns: columns, file: row.file) }
        let offset = batch!.bytes.count
        batch!.bytes.append(contentsOf: row.bytes)
        for e in row.ends { batch!.ends.append(offset + e) }
        batch!.kinds.append(contentsOf: row.kinds)
        batch!.lines.append(row.line)
        if batch!.count == ParallelProfile.batchRows { try flush() }
    }

    mutating func flush() throws {
        guard let b = batch else { return }
        batch = nil
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
