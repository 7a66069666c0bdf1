import AsyncHTTPClient
import LoomCore
import NIOCore
import NIOHTTP1

/// Forwards requests to a model server over HTTP: a URL Loom does not run (external), or one of
/// the replicas it runs (process). The body goes as it came; the upstream's status, content
/// type and body come back as they are.
public struct HTTPForwarder: Sendable {
    public let client: HTTPClient
    /// The largest answer accepted from an upstream.
    public static let answerLimit = 64 << 20

    public init(client: HTTPClient) {
        self.client = client
    }

    public func forward(_ request: ServingRequest, to url: String, timeout: Duration, deployment: String) async throws -> ServingAnswer {
        var outgoing = HTTPClientRequest(url: url)
        outgoing.method = .POST
        outgoing.headers.add(name: "content-type", value: request.contentType ?? "application/json")
        outgoing.headers.add(name: "loom-correlation-id", value: request.correlationID)
        outgoing.body = .bytes(request.body)
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        do {
            let response = try await client.execute(outgoing, timeout: .nanoseconds(nanos))
            let body = try await response.body.collect(upTo: Self.answerLimit)
            return ServingAnswer(status: Int(response.status.code), contentType: response.headers.first(name: "content-type") ?? "application/json", body: body)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw LoomError(.timedOut, "Deployment \(deployment) did not answer within \(Self.text(timeout))")
        } catch is NIOTooManyBytesError {
            throw LoomError(.badGateway, "Deployment \(deployment) answered with more than \(Self.answerLimit >> 20) MiB")
        } catch let error as LoomError {
            throw error
        } catch is CancellationError {
            throw LoomError.unavailable("The request was cancelled")
        } catch {
            throw LoomError(.badGateway, "Deployment \(deployment) could not be reached: \(error)")
        }
    }

    static func text(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms"
    }
}

/// A deployment whose model server runs elsewhere: requests are POSTed to its URL.
public struct ExternalRuntime: DeploymentRuntime {
    public let url: String
    public let deployment: String
    let forwarder: HTTPForwarder

    public init(url: String, deployment: String, forwarder: HTTPForwarder) {
        self.url = url
        self.deployment = deployment
        self.forwarder = forwarder
    }

    public func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        try await forwarder.forward(request, to: url, timeout: timeout, deployment: deployment)
    }
}
