import Foundation
import LoomCore
import LoomPipelines
import LoomStore
import LoomTracking
import Logging
import ServiceLifecycle
import Synchronization

/// Runs pipeline runs inside the server: those left unfinished by an earlier process when it
/// starts (docs/pipelines.md, resuming), then each run the API submits. Command steps get the
/// server's own address as `MLFLOW_TRACKING_URI`, so the service starts once the HTTP server
/// listens. On graceful shutdown it stops its runs; their running steps are given back and the
/// next start (of this or another replica) resumes them.
public final class PipelineService: Service, Sendable {
    let tracking: TrackingService
    let logger: Logger
    let owner: String
    private let submissions = AsyncStream<String>.makeStream()
    private let address = AsyncStream<String>.makeStream()
    private let runnerBox = Mutex<PipelineRunner?>(nil)

    /// Seconds between looks at applied pipelines' schedules and dataset triggers.
    let tickSeconds: Double
    private let schedulerBox = Mutex<PipelineScheduler?>(nil)
    private let evaluationsBox = Mutex<(any EvaluationGateRunner)?>(nil)

    /// What runs the evaluations of `gate` steps with `with.evaluation` (the gateway's).
    public func use(evaluations: any EvaluationGateRunner) {
        evaluationsBox.withLock { $0 = evaluations }
    }

    public init(
        tracking: TrackingService, logger: Logger, owner: String = "server-" + String(Identifiers.newHexID().prefix(12)), tickSeconds: Double = 10
    ) {
        self.tracking = tracking
        self.logger = logger
        self.owner = owner
        self.tickSeconds = tickSeconds
    }

    /// The runner, once the server listens (nil before).
    public var runner: PipelineRunner? { runnerBox.withLock { $0 } }
    /// What fires schedules and triggers, once the server listens (nil before).
    public var scheduler: PipelineScheduler? { schedulerBox.withLock { $0 } }

    /// Called when the HTTP server listens on `port`.
    public func serverRunning(port: Int) {
        address.continuation.yield("http://127.0.0.1:\(port)")
        address.continuation.finish()
    }

    /// Starts executing a submitted run.
    public func start(runID: String) {
        submissions.continuation.yield(runID)
    }

    public func run() async throws {
        var addresses = address.stream.makeAsyncIterator()
        guard let uri = await addresses.next() else { return }
        let runner = PipelineRunner(
            store: tracking.store, operations: TrackingStepOperations(tracking: tracking, trackingURI: uri, evaluations: evaluationsBox.withLock { $0 }),
            owner: owner, logger: logger)
        runnerBox.withLock { $0 = runner }
        let scheduler = PipelineScheduler(runner: runner)
        schedulerBox.withLock { $0 = scheduler }
        let logger = self.logger
        let submissions = self.submissions
        let tickSeconds = self.tickSeconds
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        for run in await scheduler.tick() {
                            logger.notice("pipeline triggered", metadata: ["pipeline": "\(run.pipeline)", "run": "\(run.id)", "trigger": "\(run.trigger)"])
                            submissions.continuation.yield(run.id)
                        }
                        try? await Task.sleep(for: .milliseconds(Int(tickSeconds * 1000)))
                    }
                }
                let unfinished = (try? await runner.store.unfinishedPipelineRuns()) ?? []
                if !unfinished.isEmpty { logger.notice("resuming pipeline runs", metadata: ["runs": "\(unfinished.count)"]) }
                for run in unfinished {
                    group.addTask { await Self.execute(run.id, runner, logger) }
                }
                for await id in submissions.stream {
                    group.addTask { await Self.execute(id, runner, logger) }
                }
            }
        }
        submissions.continuation.finish()
    }

    static func execute(_ id: String, _ runner: PipelineRunner, _ logger: Logger) async {
        do {
            let run = try await runner.execute(runID: id)
            logger.info("pipeline run ended", metadata: ["run": "\(id)", "state": "\(run.state.rawValue)"])
        } catch {
            logger.error("pipeline run could not be executed", metadata: ["run": "\(id)", "error": "\(error)"])
        }
    }
}
