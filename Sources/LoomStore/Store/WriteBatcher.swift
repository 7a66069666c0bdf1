import LoomCore
import Logging
import Metrics
import SQLKit

/// Group commit: concurrent writes are queued and applied together in one transaction, so that
/// throughput does not collapse to one commit (one fsync) per request.
///
/// Each write runs inside a savepoint when it shares its batch with others, so one write's failure
/// (a duplicate name, say) rolls back that write alone. A write's caller resumes only after the
/// batch's COMMIT returned: an acknowledged write is durable.
actor WriteBatcher {
    private struct Pending {
        let op: @Sendable (any SQLDatabase) async throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private let backend: any SQLBackend
    private let logger: Logger
    private let maxBatch: Int
    private var queue: [Pending] = []
    private var draining = false
    private var closed = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    // Created on first use so that they bind to the metrics backend bootstrapped at start-up.
    private lazy var batchSize = Recorder(label: "loom_store_write_batch_size", aggregate: true)
    private lazy var commitTimer = Metrics.Timer(label: "loom_store_write_batch_seconds")

    init(backend: any SQLBackend, logger: Logger, maxBatch: Int = 512) {
        self.backend = backend
        self.logger = logger
        self.maxBatch = maxBatch
    }

    /// Queues `op` and returns its result once the transaction holding it has committed.
    func submit<T: Sendable>(_ op: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        guard !closed else { throw LoomError.unavailable("the store is shutting down") }
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            queue.append(Pending(op: { db in try await op(db) }, continuation: continuation))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
        return result as! T
    }

    /// Refuses new writes and waits until every queued write has finished.
    func close() async {
        closed = true
        if !draining && queue.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    private func drain() async {
        while !queue.isEmpty {
            let take = min(queue.count, maxBatch)
            let batch = Array(queue.prefix(take))
            queue.removeFirst(take)
            await execute(batch)
        }
        draining = false
        let waiters = idleWaiters
        idleWaiters = []
        for w in waiters { w.resume() }
    }

    private func execute(_ batch: [Pending]) async {
        batchSize.record(batch.count)
        let started = ContinuousClock.now
        let ops = batch.map(\.op)
        let backend = self.backend
        do {
            let outcomes: [Result<any Sendable, any Error>] = try await backend.withWriteTransaction { db in
                if ops.count == 1 {
                    // Alone in its batch: the transaction itself isolates the write.
                    return [.success(try await ops[0](db))]
                }
                var outcomes: [Result<any Sendable, any Error>] = []
                outcomes.reserveCapacity(ops.count)
                for (i, op) in ops.enumerated() {
                    try await db.raw("SAVEPOINT \(unsafeRaw: "w\(i)")").run()
                    do {
                        let value = try await op(db)
                        try await db.raw("RELEASE SAVEPOINT \(unsafeRaw: "w\(i)")").run()
                        outcomes.append(.success(value))
                    } catch {
                        if backend.classify(error)?.code == .unavailable { throw error }
                        try await db.raw("ROLLBACK TO SAVEPOINT \(unsafeRaw: "w\(i)")").run()
                        try await db.raw("RELEASE SAVEPOINT \(unsafeRaw: "w\(i)")").run()
                        outcomes.append(.failure(error))
                    }
                }
                return outcomes
            }
            commitTimer.recordNanoseconds(Int64((ContinuousClock.now - started).nanoseconds))
            for (pending, outcome) in zip(batch, outcomes) {
                pending.continuation.resume(with: outcome.mapError { self.translate($0) })
            }
        } catch {
            // The transaction failed as a whole (single op failed, or connection/commit failed).
            let translated = translate(error)
            if batch.count > 1, translated.code != .unavailable {
                logger.warning("write batch failed, retrying writes one by one", metadata: ["error": "\(translated)"])
                for pending in batch {
                    await executeAlone(pending)
                }
                return
            }
            for pending in batch { pending.continuation.resume(throwing: translated) }
        }
    }

    private func executeAlone(_ pending: Pending) async {
        do {
            let op = pending.op
            let value = try await backend.withWriteTransaction { db in try await op(db) }
            pending.continuation.resume(returning: value)
        } catch {
            pending.continuation.resume(throwing: translate(error))
        }
    }

    nonisolated func translate(_ error: any Error) -> LoomError {
        if let e = error as? LoomError { return e }
        if let e = backend.classify(error) { return e }
        logger.error("unexpected store error", metadata: ["error": "\(String(reflecting: error))"])
        return .internalError("unexpected database error")
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
