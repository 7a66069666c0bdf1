import Foundation
import LoomCore
import Logging
import SQLKit
import Synchronization

/// The embedded default: one SQLite file in WAL mode, one writer connection and a pool of
/// readers (WAL lets them read while the writer commits).
public final class SQLiteBackend: SQLBackend {
    /// How hard a commit is made durable.
    public enum Durability: String, Sendable {
        /// `synchronous=NORMAL` in WAL mode: a committed write survives a crash of the process
        /// (kill -9) but may be lost on power failure. The default.
        case process
        /// `synchronous=FULL`: every commit is fsynced; survives power loss.
        case full
    }

    public let engine = SQLEngine.sqlite
    public let path: String
    private let writer: SQLiteHandle
    private let idleReaders = Mutex<[SQLiteHandle]>([])
    private let closed = Mutex(false)
    private let logger: Logger
    private let checkpointer = Mutex<Checkpointer?>(nil)
    static let keptReaders = 8

    private init(path: String, writer: SQLiteHandle, logger: Logger) {
        self.path = path
        self.writer = writer
        self.logger = logger
    }

    /// The log length (in 4 KiB frames, 16 MiB) at which the checkpointer asks for a quiet moment
    /// to restart it (see ``Checkpointer``).
    public static let defaultWALRestartFrames: Int64 = 4096

    /// Opens (creating if needed) the database file at `path`.
    /// `walRestartFrames`: see ``Checkpointer``; tests make it small.
    public static func open(path: String, durability: Durability = .process, logger: Logger, walRestartFrames: Int64 = defaultWALRestartFrames) async throws -> SQLiteBackend {
        let dir = (path as NSString).deletingLastPathComponent
        do {
            if !dir.isEmpty {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
            let writer = try SQLiteHandle(path: path)
            try writer.exec("PRAGMA journal_mode = WAL")
            try writer.exec(durability == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            try writer.exec("PRAGMA foreign_keys = ON")
            try writer.exec("PRAGMA temp_store = MEMORY")
            // A small page cache for the writer, on purpose. When a B-tree page splits, SQLite
            // parks a page under the number of the lock page (1 GiB / page size) for a moment,
            // and at the next commit it then truncates the cache by scanning the whole of it.
            // With 64 MiB (16k pages) that scan was 10% of the server's CPU under log-batch;
            // with 4 MiB it costs a few microseconds. The writer touches few pages per commit
            // (the right edges of indexes); readers keep their own, larger caches.
            try writer.exec("PRAGMA cache_size = -4096")
            // A background connection checkpoints continuously (see `startCheckpointer`), so the
            // commit that crosses the auto-checkpoint threshold (~40 MiB of log, a safety net that
            // also resets the log) finds little left to copy and sync. Measured: p99 of
            // log-metric under 16 connections went from 17 ms (default threshold, no background
            // checkpoints) to 6 ms.
            try writer.exec("PRAGMA wal_autocheckpoint = 10000")
            try writer.exec("PRAGMA journal_size_limit = 67108864")
            let backend = SQLiteBackend(path: path, writer: writer, logger: logger)
            backend.startCheckpointer(restartFrames: walRestartFrames)
            return backend
        } catch {
            throw LoomError.unavailable("cannot open SQLite database at \(path): \(error)")
        }
    }

    func checkoutReader() throws -> SQLiteHandle {
        if let idle = idleReaders.withLock({ $0.popLast() }) { return idle }
        let reader = try SQLiteHandle(path: path)
        try reader.exec("PRAGMA temp_store = MEMORY")
        try reader.exec("PRAGMA cache_size = -16000")
        return reader
    }

    func checkin(_ reader: SQLiteHandle) {
        let keep = idleReaders.withLock { idle -> Bool in
            guard idle.count < Self.keptReaders else { return false }
            idle.append(reader)
            return true
        }
        if !keep { reader.close() }
    }

    public func withReader<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        guard !closed.withLock({ $0 }) else { throw LoomError.unavailable("the store is closed") }
        let reader = try checkoutReader()
        defer { checkin(reader) }
        return try await body(DirectSQLiteDatabase(handle: reader, logger: logger))
    }

    public func withWriteTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        guard !closed.withLock({ $0 }) else { throw LoomError.unavailable("the store is closed") }
        let db = DirectSQLiteDatabase(handle: writer, logger: logger)
        try writer.exec("BEGIN IMMEDIATE")
        do {
            let result = try await body(db)
            try writer.exec("COMMIT")
            return result
        } catch {
            try? writer.exec("ROLLBACK")
            throw error
        }
    }

    public func classify(_ error: any Error) -> LoomError? {
        guard let e = error as? SQLiteFailure else { return nil }
        switch e.code {
        case 2067, 1555:  // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
            return .alreadyExists("the entity already exists")
        case 787:  // SQLITE_CONSTRAINT_FOREIGNKEY
            return .notFound("a referenced entity does not exist")
        default:
            break
        }
        switch e.primaryCode {
        case 19: return .alreadyExists("the entity already exists")  // other constraints
        case 5, 6, 10, 13, 14, 8: return .unavailable("the database is busy or unavailable: \(e.message)")  // BUSY, LOCKED, IOERR, FULL, CANTOPEN, READONLY
        default: return nil
        }
    }

    /// Lets the checkpointer finish a checkpoint while no write transaction is open, when it
    /// asks for that (see ``Checkpointer``). The write batcher calls this between batches.
    public func beforeWriteBatch() async {
        guard let checkpointer = checkpointer.withLock({ $0 }) else { return }
        await checkpointer.parkIfRequested()
    }

    /// How many times the checkpointer saw the log start over.
    var logRestarts: Int { checkpointer.withLock { $0?.restarts ?? 0 } }
    /// The most frames the checkpointer saw in the log.
    var largestLogFrames: Int64 { checkpointer.withLock { $0?.largestLog ?? 0 } }
    /// Checkpoints the checkpointer ran while the write batcher was parked for it.
    var quietCheckpoints: Int { checkpointer.withLock { $0?.quietCheckpoints ?? 0 } }

    /// Starts checkpointing in the background (see ``Checkpointer``).
    func startCheckpointer(restartFrames: Int64) {
        checkpointer.withLock { $0 = Checkpointer(path: path, restartFrames: restartFrames, logger: logger) }
    }

    public func ping() async throws {
        try await withReader { db in _ = try await db.raw("SELECT 1 AS one").all() }
    }

    public func shutdown() async {
        guard closed.withLock({ c in defer { c = true }; return !c }) else { return }
        if let checkpointer = checkpointer.withLock({ t in defer { t = nil }; return t }) {
            await checkpointer.stop()
        }
        for r in idleReaders.withLock({ r in defer { r = [] }; return r }) { r.close() }
        try? writer.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        writer.close()
    }
}

/// Copies the write-ahead log into the database file in the background without blocking anyone
/// (PASSIVE), so that the writer's commits rarely pay for a checkpoint.
///
/// Small, frequent checkpoints: each one ends with an fsync of the database file, and on ext4
/// the writer's appends to the log stall while a large flush commits. Checkpointing every 10 ms
/// under load rather than every 50 ms took the `log-batch` p99 on the benchmark machine from
/// 28–31 ms to 19–22 ms with no loss of throughput; when the log stops growing the thread backs
/// off to 200 ms. It runs on a thread of its own: a checkpoint waits on fsync, which must not hold
/// one of the few threads of Swift's cooperative pool that serve requests.
///
/// Restarting the log. SQLite starts writing the log from its beginning again only when a write
/// transaction begins with every frame already checkpointed. Under a steady stream of commits a
/// background checkpoint never catches up (commits land while it copies), so the log grew to the
/// writer's auto-checkpoint limit and from then on commits checkpointed themselves: 10–35 ms
/// each, the whole tail of the write latency. So once the log holds `restartFrames` frames the
/// checkpointer asks the write batcher for a quiet moment: the batcher parks between two batches
/// (``parkIfRequested()``), the checkpointer copies the frames left and releases it, and the next
/// transaction starts the log over (unless a reader still reads old frames; a later round then
/// succeeds). Under full `log-batch` load on the benchmark machine that is a pause of 5–15 ms
/// (mostly the two fsyncs; rarely up to 50 ms) about six times a second, instead of 10–35 ms on
/// every commit once the log is full; when writes are sparse it costs nothing.
final class Checkpointer: Sendable {
    private struct State {
        var stopping = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// The checkpointer wants the writer parked between batches.
        var quietRequested = false
        /// The write batcher, parked at the checkpointer's request.
        var parked: CheckedContinuation<Void, Never>?
        /// Times the log was seen to start over.
        var restarts = 0
        /// The most frames seen in the log.
        var largestLog: Int64 = 0
        /// Checkpoints run while the write batcher was parked.
        var quietCheckpoints = 0
    }
    private let state = Mutex(State())
    private let parkedSignal = DispatchSemaphore(value: 0)
    static let busyInterval: useconds_t = 10_000
    static let idleInterval: useconds_t = 200_000
    let restartFrames: Int64

    init(path: String, restartFrames: Int64, logger: Logger) {
        self.restartFrames = restartFrames
        let thread = Thread { [self] in
            run(path: path, logger: logger)
        }
        thread.name = "loom-sqlite-checkpoint"
        thread.start()
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    /// How many times the log was seen to start over, and the most frames seen in it.
    var restarts: Int { state.withLock { $0.restarts } }
    var largestLog: Int64 { state.withLock { $0.largestLog } }
    var quietCheckpoints: Int { state.withLock { $0.quietCheckpoints } }

    /// `PRAGMA wal_checkpoint(PASSIVE)`: frames in the log and frames checkpointed.
    private static func checkpoint(_ handle: SQLiteHandle) throws -> (busy: Bool, log: Int64, done: Int64) {
        var busy = false, log: Int64 = 0, done: Int64 = 0
        try handle.run("PRAGMA wal_checkpoint(PASSIVE)", []) { row in
            if row.values.count > 2, case .integer(let b) = row.values[0], case .integer(let l) = row.values[1], case .integer(let d) = row.values[2] {
                (busy, log, done) = (b != 0, l, d)
            }
        }
        return (busy, log, done)
    }

    private func run(path: String, logger: Logger) {
        defer { finish() }
        guard let handle = try? SQLiteHandle(path: path, busyTimeoutMilliseconds: 1000) else {
            logger.warning("could not open the checkpoint connection; the writer checkpoints by itself")
            return
        }
        defer { handle.close() }
        var interval = Self.busyInterval
        var lastLog: Int64 = -1
        while !stopping {
            usleep(interval)
            if stopping { break }
            do {
                let (_, log, _) = try Self.checkpoint(handle)
                state.withLock { s in
                    if log < lastLog { s.restarts += 1 }
                    s.largestLog = max(s.largestLog, log)
                }
                // Only while writes go on: an idle writer restarts the log by itself with its
                // next transaction, as this checkpoint has just copied every frame.
                if log >= restartFrames, log != lastLog, waitForQuiet() {
                    // Copy the frames left while no transaction is open; the writer's next
                    // transaction then finds the log fully checkpointed and starts it over
                    // (unless a reader still reads old frames; then a later round succeeds).
                    defer { releaseWriter() }
                    _ = try Self.checkpoint(handle)
                    state.withLock { $0.quietCheckpoints += 1 }
                }
                interval = log == lastLog ? Self.idleInterval : Self.busyInterval
                lastLog = log
            } catch {
                logger.debug("checkpoint skipped", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Asks the write batcher to park and waits up to 100 ms for it. True when it is parked.
    private func waitForQuiet() -> Bool {
        state.withLock { $0.quietRequested = true }
        if parkedSignal.wait(timeout: .now() + .milliseconds(100)) == .success { return true }
        // Withdraw the request, unless the batcher parked just now.
        let parkedMeanwhile = state.withLock { s -> Bool in
            if s.parked != nil { return true }
            s.quietRequested = false
            return false
        }
        if parkedMeanwhile { parkedSignal.wait() }  // its signal is already there
        return parkedMeanwhile
    }

    private func releaseWriter() {
        let parked = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.quietRequested = false
            defer { s.parked = nil }
            return s.parked
        }
        parked?.resume()
    }

    /// Called by the write batcher between batches: parks until the checkpointer is done when it
    /// asked for a quiet moment, returns at once otherwise.
    func parkIfRequested() async {
        guard state.withLock({ $0.quietRequested && !$0.stopping }) else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let parked = state.withLock { s -> Bool in
                guard s.quietRequested, !s.stopping, s.parked == nil else { return false }
                s.parked = c
                return true
            }
            if parked { parkedSignal.signal() } else { c.resume() }
        }
    }

    private func finish() {
        let (waiters, parked) = state.withLock { s in
            s.finished = true
            s.quietRequested = false
            defer { s.waiters = []; s.parked = nil }
            return (s.waiters, s.parked)
        }
        parked?.resume()
        for w in waiters { w.resume() }
    }

    /// Stops the thread and waits until its connection is closed.
    func stop() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                s.stopping = true
                if !s.finished { s.waiters.append(c) }
                return s.finished
            }
            if done { c.resume() }
        }
    }
}
