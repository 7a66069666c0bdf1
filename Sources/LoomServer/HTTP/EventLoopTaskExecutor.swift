import NIOCore

/// A task executor that runs jobs on one NIO event loop. A task started with it as its
/// preference (`Task(executorPreference:)`) runs its nonisolated async code on the loop's thread:
/// the gateway's fast path answers a call on the loop of the connection it came in on, and the
/// futures it awaits there (a pooled upstream connection of the same loop) resume without a hop
/// to another thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
