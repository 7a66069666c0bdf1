import LoomCore
import NIOCore

/// One scoring request as it reached an endpoint.
public struct ServingRequest: Sendable {
    public var body: ByteBuffer
    public var contentType: String?
    /// Ties the request to its response in collected records and logs (`loom-correlation-id`).
    public var correlationID: String

    public init(body: ByteBuffer, contentType: String?, correlationID: String) {
        self.body = body
        self.contentType = contentType
        self.correlationID = correlationID
    }
}

/// What a deployment answered.
public struct ServingAnswer: Sendable {
    public var status: Int
    public var contentType: String
    public var body: ByteBuffer

    public init(status: Int, contentType: String = "application/json", body: ByteBuffer) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// How a deployment answers requests: in process (native), through a process Loom runs, or
/// through a URL it does not.
public protocol DeploymentRuntime: Sendable {
    /// Answers one request. Bad input is a thrown `LoomError` (4xx); an upstream's own error
    /// statuses come back as answers.
    func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer
    /// Whether it can take traffic now (a process runtime with no ready replica cannot).
    var isReady: Bool { get }
    /// Stops what it runs, letting requests in flight finish (process runtimes).
    func shutdown() async
    /// Whether `invoke(_:timeout:on:)` answers on the given event loop without leaving it
    /// (forwarding over plain HTTP). The invocation fast path serves only such deployments.
    var answersOnLoop: Bool { get }
    /// Answers one request from `loop` (the caller runs on it); `completion` is called there,
    /// once. Runtimes that answer on loops implement it without futures; the others answer in a
    /// task.
    func invoke(_ request: ServingRequest, timeout: Duration, on loop: any EventLoop, completion: @escaping ServingCompletion)
}

/// What an answer on an event loop is handed to.
public typealias ServingCompletion = (Result<ServingAnswer, any Error>) -> Void

extension DeploymentRuntime {
    public var isReady: Bool { true }
    public var answersOnLoop: Bool { false }
    public func invoke(_ request: ServingRequest, timeout: Duration, on loop: any EventLoop, completion: @escaping ServingCompletion) {
        loop.makeFutureWithTask { try await invoke(request, timeout: timeout) }.assumeIsolated().whenComplete(completion)
    }
    public func shutdown() async {}
}
