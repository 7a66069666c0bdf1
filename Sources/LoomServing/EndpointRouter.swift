import Foundation
import LoomCore
import LoomStore
import Logging
import Metrics
import NIOCore
import Synchronization

/// A deployment as it takes traffic: its runtime and its metrics.
public final class LiveDeployment: Sendable {
    public let deployment: Deployment
    public let runtime: any DeploymentRuntime
    let requests2xx: Counter
    let requests4xx: Counter
    let requests5xx: Counter
    let latency: Metrics.Timer
    let mirrored: Counter
    let collected: Counter
    let collectDropped: Counter
    /// What rollout gates judge.
    public let stats = DeploymentStats()

    init(_ deployment: Deployment, runtime: any DeploymentRuntime) {
        self.deployment = deployment
        self.runtime = runtime
        let d = [("workspace", deployment.workspace), ("endpoint", deployment.endpoint), ("deployment", deployment.name)]
        requests2xx = Counter(label: "loom_endpoint_requests_total", dimensions: d + [("code", "2xx")])
        requests4xx = Counter(label: "loom_endpoint_requests_total", dimensions: d + [("code", "4xx")])
        requests5xx = Counter(label: "loom_endpoint_requests_total", dimensions: d + [("code", "5xx")])
        latency = Metrics.Timer(label: "loom_endpoint_request_duration_seconds", dimensions: d, preferredDisplayUnit: .seconds)
        mirrored = Counter(label: "loom_endpoint_mirrored_total", dimensions: d)
        collected = Counter(label: "loom_endpoint_collected_total", dimensions: d)
        collectDropped = Counter(label: "loom_endpoint_collect_dropped_total", dimensions: d)
    }

    func count(status: Int, nanoseconds: Int64) {
        switch status {
        case ..<400: requests2xx.increment()
        case 400..<500: requests4xx.increment()
        default: requests5xx.increment()
        }
        latency.recordNanoseconds(nanoseconds)
        stats.record(status: status, nanoseconds: nanoseconds)
    }

    public var name: String { deployment.name }
}

/// What an endpoint answered, and which deployment answered it.
public struct RoutedAnswer: Sendable {
    public var answer: ServingAnswer
    public var deployment: String
}

/// An endpoint as it takes traffic: its settings and deployments, fixed for one generation
/// (a change builds a new one), and its requests in flight.
public final class LiveEndpoint: Sendable {
    public let endpoint: Endpoint
    public let deployments: [String: LiveDeployment]
    /// Live deployments with the upper end of their 0…99 bucket range, in name order.
    let split: [(upper: Int, deployment: LiveDeployment)]
    let mirror: (deployment: LiveDeployment, percent: Int)?
    let inFlight = Atomic<Int>(0)
    let mirrorsInFlight = Atomic<Int>(0)
    let shed: Counter
    let mirrorDropped: Counter
    let logger: Logger
    /// Where sampled requests go (nil: nowhere).
    let collector: RequestCollector?

    /// Mirrored copies in flight at once; more are dropped (and counted), never queued.
    static let mirrorLimit = 64

    init(_ endpoint: Endpoint, deployments: [String: LiveDeployment], collector: RequestCollector?, logger: Logger) {
        self.endpoint = endpoint
        self.deployments = deployments
        self.collector = collector
        self.logger = logger
        var upper = 0
        var split: [(Int, LiveDeployment)] = []
        for (name, weight) in endpoint.traffic.sorted(by: { $0.key < $1.key }) where weight > 0 {
            guard let d = deployments[name] else { continue }
            upper += weight
            split.append((upper, d))
        }
        self.split = split
        if let (name, percent) = endpoint.mirror.first(where: { $0.value > 0 }), let d = deployments[name] {
            mirror = (d, percent)
        } else {
            mirror = nil
        }
        let dims = [("workspace", endpoint.workspace), ("endpoint", endpoint.name)]
        shed = Counter(label: "loom_endpoint_shed_total", dimensions: dims)
        mirrorDropped = Counter(label: "loom_endpoint_mirror_dropped_total", dimensions: dims)
    }

    /// The deployment a request goes to: the one named by `target` (bypassing the split), the
    /// one `stickyKey` hashes to, or a weighted random pick.
    func choose(target: String?, stickyKey: String?) throws(LoomError) -> LiveDeployment {
        if let target {
            guard let d = deployments[target] else { throw LoomError.notFound("Endpoint \(endpoint.name) has no deployment named \(target)") }
            return d
        }
        guard let last = split.last else {
            // Azure ML answers 404 here too ("no valid deployment with positive weight").
            throw LoomError.notFound(
                "Endpoint \(endpoint.name) has no deployment with live traffic (every weight is 0): set traffic, or name a deployment in loom-deployment")
        }
        if split.count == 1 { return last.deployment }  // no dice to throw
        let bucket = stickyKey.map(TrafficPolicy.bucket) ?? Int.random(in: 0..<last.upper)
        for entry in split where bucket < entry.upper { return entry.deployment }
        return last.deployment
    }

    /// Answers a request: sheds it with 429 past the concurrency limit, picks a deployment,
    /// copies it to the mirror when the dice say so, and times the answer.
    public func invoke(_ request: ServingRequest, target: String?, stickyKey: String?) async throws -> RoutedAnswer {
        try admit()
        defer { release() }
        let chosen = try route(request, target: target, stickyKey: stickyKey)
        let started = ContinuousClock.now
        do {
            let answer = try await chosen.runtime.invoke(request, timeout: .milliseconds(endpoint.timeoutMillis))
            return answered(request, chosen, answer, started)
        } catch {
            failed(request, chosen, error, started)
            throw error
        }
    }

    /// `invoke` for the invocation fast paths, from `loop` (the caller runs on it): `completion`
    /// is called there, once, without leaving the loop when the chosen deployment answers on
    /// loops (`answersOnLoop`).
    public func invoke(
        _ request: ServingRequest, target: String?, stickyKey: String?, on loop: any EventLoop, completion: @escaping (Result<RoutedAnswer, any Error>) -> Void
    ) {
        let chosen: LiveDeployment
        do {
            try admit()
            do {
                chosen = try route(request, target: target, stickyKey: stickyKey)
            } catch {
                release()
                throw error
            }
        } catch {
            completion(.failure(error))
            return
        }
        let started = ContinuousClock.now
        chosen.runtime.invoke(request, timeout: .milliseconds(endpoint.timeoutMillis), on: loop) { result in
            self.release()
            switch result {
            case .success(let answer):
                completion(.success(self.answered(request, chosen, answer, started)))
            case .failure(let error):
                self.failed(request, chosen, error, started)
                completion(.failure(error))
            }
        }
    }

    /// Whether every deployment a request could go to answers on event loops: the invocation
    /// fast path takes the request (`target`: the one named by `loom-deployment`).
    public func answersOnLoop(target: String?) -> Bool {
        if let target { return deployments[target]?.runtime.answersOnLoop ?? false }
        return !split.isEmpty && split.allSatisfy { $0.deployment.runtime.answersOnLoop }
    }

    /// Takes a place under the concurrency limit, or sheds the request with 429.
    func admit() throws(LoomError) {
        guard let limit = endpoint.concurrencyLimit else { return }
        if inFlight.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            shed.increment()
            throw LoomError(.tooManyRequests, "Endpoint \(endpoint.name) is at its limit of \(limit) requests at once; retry later")
        }
    }

    func release() {
        if endpoint.concurrencyLimit != nil { inFlight.wrappingSubtract(1, ordering: .relaxed) }
    }

    /// The chosen deployment, after sending a copy to the mirror when the dice say so.
    func route(_ request: ServingRequest, target: String?, stickyKey: String?) throws(LoomError) -> LiveDeployment {
        let chosen = try choose(target: target, stickyKey: stickyKey)
        if target == nil, let mirror, Int.random(in: 0..<100) < mirror.percent {
            copy(request, to: mirror.deployment)
        }
        return chosen
    }

    func answered(_ request: ServingRequest, _ chosen: LiveDeployment, _ answer: ServingAnswer, _ started: ContinuousClock.Instant) -> RoutedAnswer {
        let nanos = Self.nanos(since: started)
        chosen.count(status: answer.status, nanoseconds: nanos)
        collect(request, answer.status, answer.body, chosen, nanos, mirrored: false)
        return RoutedAnswer(answer: answer, deployment: chosen.name)
    }

    func failed(_ request: ServingRequest, _ chosen: LiveDeployment, _ error: any Error, _ started: ContinuousClock.Instant) {
        let nanos = Self.nanos(since: started)
        let status = (error as? LoomError)?.code.httpStatusCode ?? 500
        chosen.count(status: status, nanoseconds: nanos)
        collect(request, status, Self.errorBody(error), chosen, nanos, mirrored: false)
    }

    /// Offers a sampled request and its answer to the collector (never waits).
    func collect(_ request: ServingRequest, _ status: Int, _ body: @autoclosure () -> ByteBuffer, _ d: LiveDeployment, _ nanos: Int64, mirrored: Bool) {
        guard let collector, endpoint.samplingRate > 0, endpoint.samplingRate >= 1 || Double.random(in: 0..<1) < endpoint.samplingRate else { return }
        let record = CollectedRecord(
            workspace: endpoint.workspace, endpoint: endpoint.name, deployment: d.name, correlationID: request.correlationID, time: LoomStore.Clock.nowMillis(),
            latencyNanos: nanos, status: status, mirrored: mirrored, request: request.body, response: body())
        if collector.offer(record) { d.collected.increment() } else { d.collectDropped.increment() }
    }

    /// An error as the server renders it.
    static func errorBody(_ error: any Error) -> ByteBuffer {
        ByteBuffer(string: (error as? LoomError ?? LoomError.internalError("Internal server error")).jsonBody)
    }

    /// Sends a copy to the mirror without waiting for it; its answer is counted, not returned.
    func copy(_ request: ServingRequest, to mirror: LiveDeployment) {
        guard mirrorsInFlight.wrappingAdd(1, ordering: .relaxed).newValue <= Self.mirrorLimit else {
            mirrorsInFlight.wrappingSubtract(1, ordering: .relaxed)
            mirrorDropped.increment()
            return
        }
        let timeout = Duration.milliseconds(endpoint.timeoutMillis)
        Task.detached { [self] in
            defer { mirrorsInFlight.wrappingSubtract(1, ordering: .relaxed) }
            let started = ContinuousClock.now
            let status: Int
            let body: ByteBuffer
            do {
                let answer = try await mirror.runtime.invoke(request, timeout: timeout)
                (status, body) = (answer.status, answer.body)
            } catch {
                (status, body) = ((error as? LoomError)?.code.httpStatusCode ?? 500, Self.errorBody(error))
            }
            let nanos = Self.nanos(since: started)
            mirror.mirrored.increment()
            mirror.count(status: status, nanoseconds: nanos)
            collect(request, status, body, mirror, nanos, mirrored: true)
        }
    }

    static func nanos(since start: ContinuousClock.Instant) -> Int64 {
        let d = ContinuousClock.now - start
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}

/// The endpoints this server answers for, by workspace and name; swapped whole on a change so
/// that the request path takes one lock and no database read.
public final class EndpointRouter: Sendable {
    struct Key: Hashable {
        let workspace: String
        let name: String
    }

    let table = Mutex<[Key: LiveEndpoint]>([:])

    public init() {}

    public func endpoint(workspace: String, name: String) -> LiveEndpoint? {
        table.withLock { $0[Key(workspace: workspace, name: name)] }
    }

    func replace(_ live: LiveEndpoint) -> LiveEndpoint? {
        table.withLock { t in
            let key = Key(workspace: live.endpoint.workspace, name: live.endpoint.name)
            let old = t[key]
            t[key] = live
            return old
        }
    }

    func remove(workspace: String, name: String) -> LiveEndpoint? {
        table.withLock { $0.removeValue(forKey: Key(workspace: workspace, name: name)) }
    }

    var all: [LiveEndpoint] { table.withLock { Array($0.values) } }
}
