#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// A task executor on a thread of its own that the kernel schedules behind the event loops
/// (nice 10 on Linux): work that comes in bursts off the calls' path, such as writing the
/// gateway's traces and usage every couple of seconds, yields the CPU to the loops that answer
/// calls instead of queueing them behind it. Under no contention it runs as fast as any thread.
enum BackgroundExecutor {
    /// The process's one background thread (made at first use, never shut down).
    static let shared: EventLoopTaskExecutor = {
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        #if canImport(Glibc)
        // On Linux a thread's nice value is its own: PRIO_PROCESS with 0 names the calling thread.
        loop.execute { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
        #endif
        return EventLoopTaskExecutor(loop)
    }()

    /// How much lower the background thread's priority is (CFS gives a nice-10 thread about a
    /// tenth of a nice-0 thread's share when both want the CPU).
    static let niceness: Int32 = 10

    /// Runs `body` with its nonisolated async code on the background thread.
    static func run<T: Sendable>(_ body: () async -> T) async -> T {
        await withTaskExecutorPreference(shared, operation: body)
    }
}
