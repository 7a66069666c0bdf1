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
        // The checkpointer may hold a quiet moment (see ``Checkpointer``): wait for its end, and
        // hand it one when it asks while this transaction is open.
        let checkpointer = self.checkpointer.withLock { $0 }
        await checkpointer?.beginWrite()
        defer { checkpointer?.endWrite() }
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

    /// How many times the checkpointer saw the log start over.
    var logRestarts: Int { checkpointer.withLock { $0?.restarts ?? 0 } }
    /// The most frames the checkpointer saw in the log.
    var largestLogFrames: Int64 { checkpointer.withLock { $0?.largestLog ?? 0 } }
    /// Checkpoints the checkpointer ran while it held a quiet moment (no write transaction open).
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
/// each, the whole tail of the write latency. So once the log holds `restartFrames` frames (and
/// grows), the checkpointer takes a *quiet moment*: a span with no
/// write transaction open. Write transactions announce themselves (``beginWrite()``,
/// ``endWrite()``); when none is open the checkpointer takes the moment at once, otherwise the
/// transaction that is open hands it over as it ends, and the next one waits until the
/// checkpointer has copied the frames left. That next transaction then starts the log over
/// (unless a reader still reads old frames; a later round then succeeds). Under full `log-batch`
/// load on the benchmark machine that is a pause of 5–15 ms (mostly the two fsyncs; rarely up to
/// 50 ms) about six times a second, instead of 10–35 ms on every commit once the log is full;
/// when writes are sparse it costs nothing.
///
/// The hand-over does not depend on scheduling: an earlier version asked the write batcher to
/// park between two batches and gave up after 100 ms, which a busy machine (the parallel test
/// run) sometimes let pass without the batcher coming round.
final class Checkpointer: Sendable {
    private struct State {
        var stopping = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Write transactions open (one at a time in practice: the writer connection is serial).
        var openWrites = 0
        /// The checkpointer waits for the open write transaction to end.
        var quietRequested = false
        /// The checkpointer holds a quiet moment: no write transaction may begin.
        var quiet = false
        /// Write transactions waiting for the quiet moment to end.
        var blockedWrites: [CheckedContinuation<Void, Never>] = []
        /// Times the log was seen to start over.
        var restarts = 0
        /// The most frames seen in the log.
        var largestLog: Int64 = 0
        /// Checkpoints run in a quiet moment.
        var quietCheckpoints = 0
    }
    private let state = Mutex(State())
    /// Signalled when an ending write transaction hands the quiet moment over.
    private let handedOver = DispatchSemaphore(value: 0)
    static let busyInterval: useconds_t = 10_000
    static let idleInterval: useconds_t = 200_000
    /// How long the checkpointer waits for an open write transaction to end.
    static let quietWait: DispatchTimeInterval = .milliseconds(100)
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
                // Only while the log grows. A quiet moment costs little even when this
                // checkpoint copied every frame: commits may have landed since.
                if log >= restartFrames, log != lastLog, takeQuietMoment() {
                    defer { endQuietMoment() }
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

    /// Takes a quiet moment: at once when no write transaction is open, else when the open one
    /// ends, if that happens within ``quietWait``. False when it did not.
    private func takeQuietMoment() -> Bool {
        let now = state.withLock { s -> Bool in
            guard s.openWrites > 0 else {
                s.quiet = true
                return true
            }
            s.quietRequested = true
            return false
        }
        if now { return true }
        if handedOver.wait(timeout: .now() + Self.quietWait) == .success { return true }
        // Withdraw the request, unless the transaction handed the moment over just now.
        let handedMeanwhile = state.withLock { s -> Bool in
            if s.quiet { return true }
            s.quietRequested = false
            return false
        }
        if handedMeanwhile { handedOver.wait() }  // its signal is already there
        return handedMeanwhile
    }

    /// Ends the quiet moment and lets the waiting write transactions begin.
    private func endQuietMoment() {
        let blocked = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.quiet = false
            s.quietRequested = false
            defer { s.blockedWrites = [] }
            s.openWrites += s.blockedWrites.count
            return s.blockedWrites
        }
        for w in blocked { w.resume() }
    }

    /// Called before a write transaction begins: waits while the checkpointer holds a quiet moment.
    func beginWrite() async {
        let begun = state.withLock { s -> Bool in
            guard !s.quiet else { return false }
            s.openWrites += 1
            return true
        }
        if begun { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let begunNow = state.withLock { s -> Bool in
                guard !s.quiet else {
                    s.blockedWrites.append(c)
                    return false
                }
                s.openWrites += 1
                return true
            }
            if begunNow { c.resume() }
        }
    }

    /// Called after a write transaction ended (committed or rolled back): hands the quiet moment
    /// over when the checkpointer asked for it.
    func endWrite() {
        let handOver = state.withLock { s -> Bool in
            s.openWrites -= 1
            guard s.openWrites == 0, s.quietRequested, !s.quiet else { return false }
            s.quietRequested = false
            s.quiet = true
            return true
        }
        if handOver { handedOver.signal() }
    }

    private func finish() {
        let (waiters, blocked) = state.withLock { s in
            s.finished = true
            s.quiet = false
            s.quietRequested = false
            s.openWrites += s.blockedWrites.count
            defer { s.waiters = []; s.blockedWrites = [] }
            return (s.waiters, s.blockedWrites)
        }
        for w in blocked { w.resume() }
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
