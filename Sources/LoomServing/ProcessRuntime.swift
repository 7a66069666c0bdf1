import AsyncHTTPClient
import Foundation
import LoomCore
import LoomForwarding
import Logging
import NIOCore
import Subprocess
import NIOHTTP1
import Synchronization
import SystemPackage

/// A model server Loom runs: `replicas` copies of a shell command, each given a free port as
/// `$PORT`. A replica takes traffic once its health path answers 200; one that exits is
/// restarted (after a growing pause) while the others serve; removing the deployment drains
/// the requests in flight, then stops the processes (SIGTERM to each process group, SIGKILL
/// after a grace period).
public final class ProcessRuntime: DeploymentRuntime {
    public struct Options: Sendable {
        public var command: String
        public var replicas: Int
        public var directory: String?
        public var environment: [String: String]
        public var healthPath: String
        public var invocationPath: String
        public var startupSeconds: Double
        /// Where each replica's stdout and stderr go (`replica-N.log`); nil: discarded.
        public var logDirectory: String?

        public init(
            command: String, replicas: Int = 1, directory: String? = nil, environment: [String: String] = [:], healthPath: String = "/ping",
            invocationPath: String = "/invocations", startupSeconds: Double = 120, logDirectory: String? = nil
        ) {
            self.command = command
            self.replicas = replicas
            self.directory = directory
            self.environment = environment
            self.healthPath = healthPath
            self.invocationPath = invocationPath
            self.startupSeconds = startupSeconds
            self.logDirectory = logDirectory
        }
    }

    /// One copy's state, as shown in `loom endpoint show`.
    public struct ReplicaStatus: Sendable, Codable, Hashable {
        public var index: Int
        public var port: Int?
        public var ready: Bool
        public var restarts: Int
        public var message: String?
    }

    final class Replica: Sendable {
        let index: Int
        struct State: Sendable {
            var port: Int?
            var ready = false
            var restarts = 0
            var message: String?
        }
        let state = Mutex(State())
        init(index: Int) { self.index = index }
    }

    public let deployment: String
    let options: Options
    let forwarder: HTTPForwarder
    let logger: Logger
    let replicas: [Replica]
    let next = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    let supervisors = Mutex<[Task<Void, Never>]>([])

    public init(deployment: String, options: Options, forwarder: HTTPForwarder, logger: Logger) {
        self.deployment = deployment
        self.options = options
        self.forwarder = forwarder
        self.logger = logger
        self.replicas = (0..<max(1, options.replicas)).map(Replica.init)
    }

    /// Starts every replica's supervisor.
    public func start() {
        let tasks = replicas.map { replica in Task { await self.supervise(replica) } }
        supervisors.withLock { $0 = tasks }
    }

    public var isReady: Bool { replicas.contains { $0.state.withLock { $0.ready } } }

    public var status: [ReplicaStatus] {
        replicas.map { r in
            r.state.withLock { s in ReplicaStatus(index: r.index, port: s.port, ready: s.ready, restarts: s.restarts, message: s.message) }
        }
    }

    public func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        inFlight.wrappingAdd(1, ordering: .relaxed)
        defer { inFlight.wrappingSubtract(1, ordering: .relaxed) }
        // Round robin over ready replicas; a replica that cannot be reached (it just died) is
        // marked down and the request goes to the next.
        var tried = 0
        while tried < replicas.count, let (replica, port) = nextReady() {
            do {
                return try await forwarder.forward(request, to: target(port: port, timeout: timeout), timeout: timeout, deployment: deployment)
            } catch let e as LoomError where e.code == .badGateway {
                markDown(replica, port: port, e)
                tried += 1
            }
        }
        throw noReplica
    }

    public var answersOnLoop: Bool { true }

    public func invoke(_ request: ServingRequest, timeout: Duration, on loop: any EventLoop, completion: @escaping ServingCompletion) {
        inFlight.wrappingAdd(1, ordering: .relaxed)
        attempt(request, timeout: timeout, on: loop, tried: 0) { result in
            self.inFlight.wrappingSubtract(1, ordering: .relaxed)
            completion(result)
        }
    }

    /// One try of `invoke(_:timeout:on:completion:)`, and the next replica's when this one is
    /// unreachable.
    func attempt(_ request: ServingRequest, timeout: Duration, on loop: any EventLoop, tried: Int, completion: @escaping ServingCompletion) {
        guard tried < replicas.count, let (replica, port) = nextReady() else {
            completion(.failure(noReplica))
            return
        }
        let target: ForwardingClient.Target
        do {
            target = try self.target(port: port, timeout: timeout)
        } catch {
            completion(.failure(error))
            return
        }
        forwarder.forward(request, to: target, timeout: timeout, deployment: deployment, on: loop) { result in
            if case .failure(let error) = result, let e = error as? LoomError, e.code == .badGateway {
                self.markDown(replica, port: port, e)
                self.attempt(request, timeout: timeout, on: loop, tried: tried + 1, completion: completion)
            } else {
                completion(result)
            }
        }
    }

    /// The forwarding target of the replica on `port`; a path that cannot be sent is a 502, as
    /// an unreachable replica is.
    func target(port: Int, timeout: Duration) throws(LoomError) -> ForwardingClient.Target {
        do {
            return try forwarder.forwarding.target(host: "127.0.0.1", port: port, path: options.invocationPath)
        } catch {
            throw HTTPForwarder.loomError(error, deployment: deployment, timeout: timeout) as? LoomError ?? LoomError(.badGateway, "\(error)")
        }
    }

    /// The next ready replica, round robin.
    func nextReady() -> (Replica, Int)? {
        let start = next.wrappingAdd(1, ordering: .relaxed).oldValue
        for k in 0..<replicas.count {
            let r = replicas[(start + k) % replicas.count]
            if let port = r.state.withLock({ $0.ready ? $0.port : nil }) { return (r, port) }
        }
        return nil
    }

    func markDown(_ replica: Replica, port: Int, _ e: LoomError) {
        replica.state.withLock { if $0.port == port { $0.ready = false; $0.message = "unreachable: \(e.message)" } }
    }

    var noReplica: LoomError { LoomError.unavailable("Deployment \(deployment) has no ready replica") }

    /// Stops taking requests, lets those in flight finish (up to `grace`), then stops the
    /// processes.
    public func shutdown() async {
        await drain(grace: .seconds(30))
    }

    public func drain(grace: Duration) async {
        for r in replicas { r.state.withLock { $0.ready = false } }
        let deadline = ContinuousClock.now + grace
        while inFlight.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let tasks = supervisors.withLock { t in
            let all = t
            t = []
            return all
        }
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
    }

    // MARK: Supervising one replica

    func supervise(_ replica: Replica) async {
        var pause = 1.0
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let outcome = await runOnce(replica)
            replica.state.withLock { s in
                s.ready = false
                s.port = nil
                s.message = outcome
            }
            if Task.isCancelled { return }
            replica.state.withLock { $0.restarts += 1 }
            logger.warning("a model server replica stopped; restarting", metadata: [
                "deployment": "\(deployment)", "replica": "\(replica.index)", "reason": "\(outcome)", "pause_s": "\(pause)"])
            // A replica that ran a while starts again soon; one that keeps failing waits longer.
            if ContinuousClock.now - started > .seconds(60) { pause = 1 }
            try? await Task.sleep(for: .milliseconds(Int(pause * 1000)))
            pause = min(pause * 2, 30)
        }
    }

    /// Runs the command once, until it exits (or the task is cancelled); returns why it ended.
    func runOnce(_ replica: Replica) async -> String {
        let port: Int
        do {
            port = try Self.freePort()
        } catch {
            return "no free port: \(error)"
        }
        replica.state.withLock { s in
            s.port = port
            s.ready = false
            s.message = "starting on port \(port)"
        }
        var environment: [Environment.Key: String?] = ["PORT": String(port), "LOOM_DEPLOYMENT": deployment, "LOOM_REPLICA": String(replica.index)]
        for (k, v) in options.environment { environment[Environment.Key(stringLiteral: k)] = v }
        let variables = environment
        do {
            var logFile = "/dev/null"
            if let dir = options.logDirectory {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                logFile = "\(dir)/replica-\(replica.index).log"
            }
            let output = try SystemPackage.FileDescriptor.open(
                SystemPackage.FilePath(logFile), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead])
            let stderrFD: SystemPackage.FileDescriptor
            do { stderrFD = try output.duplicate() } catch { try? output.close(); throw error }
            let command = options.command
            let directory = options.directory
            // The process runs until it ends or the supervisor is cancelled; meanwhile the
            // replica becomes ready once its health path answers.
            return await withTaskGroup(of: String?.self) { group in
                group.addTask {
                    var platform = PlatformOptions()
                    platform.createSession = true
                    platform.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(10))]
                    do {
                        let result = try await Subprocess.run(
                            .path("/bin/sh"), arguments: ["-c", command], environment: .inherit.updating(variables),
                            workingDirectory: directory.map { SystemPackage.FilePath($0) }, platformOptions: platform, input: .none,
                            output: .fileDescriptor(output, closeAfterSpawningProcess: true),
                            error: .fileDescriptor(stderrFD, closeAfterSpawningProcess: true))
                        switch result.terminationStatus {
                        case .exited(let code): return "exited with status \(code)"
                        case .signaled(let signal): return "killed by signal \(signal)"
                        }
                    } catch {
                        return Task.isCancelled ? "stopped" : "could not start: \(error)"
                    }
                }
                group.addTask {
                    await self.waitUntilReady(replica, port: port)
                    return nil
                }
                var ended = "stopped"
                for await outcome in group {
                    if let outcome {
                        ended = outcome
                        group.cancelAll()
                        break
                    }
                }
                return ended
            }
        } catch {
            return "could not start: \(error)"
        }
    }

    func waitUntilReady(_ replica: Replica, port: Int) async {
        let deadline = ContinuousClock.now + .milliseconds(Int(options.startupSeconds * 1000))
        while !Task.isCancelled, ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(options.healthPath)")
            request.method = .GET
            if let response = try? await forwarder.client.execute(request, timeout: .seconds(2)) {
                _ = try? await response.body.collect(upTo: 1 << 20)
                if response.status.code == 200 {
                    replica.state.withLock { s in
                        s.ready = true
                        s.message = nil
                    }
                    logger.info("a model server replica is ready", metadata: ["deployment": "\(deployment)", "replica": "\(replica.index)", "port": "\(port)"])
                    return
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        if !Task.isCancelled {
            replica.state.withLock { $0.message = "not ready after \(options.startupSeconds) s (GET \(options.healthPath))" }
        }
    }

    /// A port nobody listens on now (the kernel's pick for a socket bound to port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoomError.internalError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw LoomError.internalError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw LoomError.internalError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
