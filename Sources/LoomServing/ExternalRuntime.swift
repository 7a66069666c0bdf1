import AsyncHTTPClient
import Foundation
import LoomCore
import LoomForwarding
import NIOCore
import NIOHTTP1

/// Forwards requests to a model server over HTTP: a URL Loom does not run (external), or one of
/// the replicas it runs (process). The body goes as it came; the upstream's status, content
/// type and body come back as they are.
public struct HTTPForwarder: Sendable {
    public let client: HTTPClient
    /// Plain-HTTP upstreams (process runtimes, most external ones) go through Loom's own
    /// forwarding client; `https://` through AsyncHTTPClient.
    public let forwarding: ForwardingClient
    /// The largest answer accepted from an upstream.
    public static let answerLimit = 64 << 20

    public init(client: HTTPClient, forwarding: ForwardingClient = ForwardingClient()) {
        self.client = client
        self.forwarding = forwarding
    }

    /// POSTs the request to `target` (a plain-HTTP URL made ready by `forwarding.target`).
    package func forward(_ request: ServingRequest, to target: ForwardingClient.Target, timeout: Duration, deployment: String) async throws -> ServingAnswer {
        do {
            let answer = try await forwarding.post(to: target, headers: Self.headers(request), body: request.body, timeout: timeout)
            return ServingAnswer(status: answer.status, contentType: answer.contentType ?? "application/json", body: answer.body)
        } catch is CancellationError {
            throw LoomError.unavailable("The request was cancelled")
        } catch {
            throw Self.loomError(error, deployment: deployment, timeout: timeout)
        }
    }

    /// POSTs the request to `target` from `loop` (the caller runs on it) and calls `completion`
    /// there with the answer.
    package func forward(
        _ request: ServingRequest, to target: ForwardingClient.Target, timeout: Duration, deployment: String, on loop: any EventLoop,
        completion: @escaping ServingCompletion
    ) {
        forwarding.post(on: loop, to: target, headers: Self.headers(request), body: request.body, timeout: timeout) { result in
            switch result {
            case .success(let answer):
                completion(.success(ServingAnswer(status: answer.status, contentType: answer.contentType ?? "application/json", body: answer.body)))
            case .failure(let error):
                completion(.failure(Self.loomError(error, deployment: deployment, timeout: timeout)))
            }
        }
    }

    static func headers(_ request: ServingRequest) -> [(String, String)] {
        [("content-type", request.contentType ?? "application/json"), ("loom-correlation-id", request.correlationID)]
    }

    /// What a failed forward means to the caller: 504 for a timeout, 502 for the rest.
    static func loomError(_ error: any Error, deployment: String, timeout: Duration) -> any Error {
        switch error {
        case ForwardingError.timedOut:
            LoomError(.timedOut, "Deployment \(deployment) did not answer within \(text(timeout))")
        case ForwardingError.tooLarge:
            LoomError(.badGateway, "Deployment \(deployment) answered with more than \(answerLimit >> 20) MiB")
        case ForwardingError.unreachable(let why):
            LoomError(.badGateway, "Deployment \(deployment) could not be reached: \(why)")
        case ForwardingError.closedBeforeAnswer:
            LoomError(.badGateway, "Deployment \(deployment) closed the connection before answering")
        default:
            error
        }
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
    /// A plain-HTTP URL made ready for the forwarding client (nil: https, through
    /// AsyncHTTPClient).
    let target: ForwardingClient.Target?

    public init(url: String, deployment: String, forwarder: HTTPForwarder) {
        self.url = url
        self.deployment = deployment
        self.forwarder = forwarder
        if let u = URL(string: url), u.scheme == "http", let host = u.host {
            // Path and query as written (percent-encoded), not decoded: `/a%20b` stays one segment.
            var path = u.path(percentEncoded: true)
            if path.isEmpty { path = "/" }
            if let q = u.query(percentEncoded: true) { path += "?" + q }
            target = try? forwarder.forwarding.target(host: host, port: u.port ?? 80, path: path)
        } else {
            target = nil
        }
    }

    public var answersOnLoop: Bool { target != nil }

    public func invoke(_ request: ServingRequest, timeout: Duration, on loop: any EventLoop, completion: @escaping ServingCompletion) {
        guard let target else {
            loop.makeFutureWithTask { try await invoke(request, timeout: timeout) }.assumeIsolated().whenComplete(completion)
            return
        }
        forwarder.forward(request, to: target, timeout: timeout, deployment: deployment, on: loop, completion: completion)
    }

    public func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        if let target {
            return try await forwarder.forward(request, to: target, timeout: timeout, deployment: deployment)
        }
        return try await forwarder.forward(request, to: url, timeout: timeout, deployment: deployment)
    }
}
