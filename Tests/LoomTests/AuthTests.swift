import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomCore
import LoomServer
import LoomStore
import LoomTesting
import LoomTracking
import NIOCore
import Testing

/// With `--auth`, every route refuses anonymous callers; Basic and Bearer both work; roles and
/// per-resource permissions decide what a user may do; changes and refusals are audited.
@Suite("Authentication and authorization")
struct AuthTests {
    static func basic(_ user: String, _ password: String) -> HTTPFields {
        var h = HTTPFields()
        h[.authorization] = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        return h
    }

    static func bearer(_ token: String) -> HTTPFields {
        var h = HTTPFields()
        h[.authorization] = "Bearer \(token)"
        return h
    }

    static let publicPaths: Set<String> = ["/health", "/ready", "/version", "/openapi.yaml", "/metrics"]

    @Test func everyRouteRefusesWithoutCredentials() async throws {
        try await withTestApp(auth: true) { client, _, catalog in
            var checked = 0
            for entry in catalog.all where !Self.publicPaths.contains(entry.path) && !entry.path.hasPrefix("/static/") {
                let uri = entry.path
                    .replacingOccurrences(of: "{path}", with: "0/a.txt")
                    .replacingOccurrences(of: #"\{[a-z_]+\}"#, with: "x", options: .regularExpression)
                let method = HTTPRequest.Method(entry.method.uppercased())!
                let status = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: "{}")) { $0.status }
                #expect(status == .unauthorized, "\(entry.method) \(entry.path) answered \(status) without credentials")
                if checked % 8 == 0 {
                    // Wrong credentials are refused too (sampled: each check costs a bcrypt round).
                    let wrong = try await client.execute(uri: uri, method: method, headers: Self.basic("nobody", "wrong-password"), body: ByteBuffer(string: "{}")) { $0.status }
                    #expect(wrong == .unauthorized, "\(entry.method) \(entry.path) answered \(wrong) with bad credentials")
                }
                checked += 1
            }
            #expect(checked > 100)
            for path in Self.publicPaths where path != "/metrics" {
                let status = try await client.execute(uri: path, method: .get) { $0.status }
                #expect(status == .ok, "\(path) must stay public")
            }
        }
    }

    @Test func basicBearerRolesAndPermissions() async throws {
        try await withTestApp(auth: true) { client, services, _ in
            let access = services.access
            _ = try await access.createUser(username: "root", password: "root-password", isAdmin: true)
            let viewer = try await access.createUser(username: "vera", password: "vera-password", isAdmin: false)
            _ = try await access.createUser(username: "eddie", password: "eddie-password", isAdmin: false)
            _ = try await access.createUser(username: "nora", password: "nora-password", isAdmin: false)
            try await services.store.setRole(username: "vera", workspace: "default", role: .viewer)
            try await services.store.setRole(username: "eddie", workspace: "default", role: .editor)
            let (_, secret) = try await access.createToken(for: viewer, name: "t", expiresAt: nil)

            // Editors create experiments and become their managers.
            var (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "eddies"}"#, headers: Self.basic("eddie", "eddie-password"))
            #expect(status == .ok)
            let expID = try #require(body["experiment_id"] as? String)
            // Viewers read, with a password or a token, but cannot write.
            (status, _) = try await client.json(.get, "/api/2.0/mlflow/experiments/get?experiment_id=\(expID)", headers: Self.basic("vera", "vera-password"))
            #expect(status == .ok)
            (status, _) = try await client.json(.get, "/api/2.0/mlflow/experiments/get?experiment_id=\(expID)", headers: Self.bearer(secret))
            #expect(status == .ok)
            (status, _) = try await client.json(.get, "/api/2.0/mlflow/experiments/get?experiment_id=\(expID)", headers: Self.basic("vera", secret))
            #expect(status == .ok, "a token works as the Basic password (MLFLOW_TRACKING_PASSWORD)")
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/runs/create", body: #"{"experiment_id": "\#(expID)"}"#, headers: Self.bearer(secret))
            #expect(status == .forbidden)
            #expect(body["error_code"] as? String == "PERMISSION_DENIED")
            (status, _) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "veras"}"#, headers: Self.basic("vera", "vera-password"))
            #expect(status == .forbidden)
            // A user without a role sees nothing until given a per-experiment permission.
            (status, _) = try await client.json(.get, "/api/2.0/mlflow/experiments/get?experiment_id=\(expID)", headers: Self.basic("nora", "nora-password"))
            #expect(status == .forbidden)
            (status, _) = try await client.json(.put, "/api/v1/users/nora/permissions/experiments/\(expID)", body: #"{"permission": "EDIT"}"#, headers: Self.basic("eddie", "eddie-password"))
            #expect(status == .noContent, "the experiment's manager may grant on it")
            (status, _) = try await client.json(.post, "/api/2.0/mlflow/runs/create", body: #"{"experiment_id": "\#(expID)"}"#, headers: Self.basic("nora", "nora-password"))
            #expect(status == .ok)
            (status, _) = try await client.json(.post, "/api/2.0/mlflow/experiments/delete", body: #"{"experiment_id": "\#(expID)"}"#, headers: Self.basic("nora", "nora-password"))
            #expect(status == .forbidden, "EDIT does not allow deleting")
            let (_, listing) = try await client.json(.post, "/api/2.0/mlflow/experiments/search", body: #"{"max_results": 100}"#, headers: Self.basic("nora", "nora-password"))
            #expect((listing["experiments"] as? [[String: Any]])?.map { $0["experiment_id"] as? String } == [expID])
            // Only administrators manage users.
            (status, _) = try await client.json(.get, "/api/v1/users", headers: Self.basic("eddie", "eddie-password"))
            #expect(status == .forbidden)
            (status, _) = try await client.json(.get, "/api/v1/users", headers: Self.basic("root", "root-password"))
            #expect(status == .ok)
            // Audit: the change and the refusals are recorded with their actors.
            let events = try await services.store.auditEvents(AuditQuery(maxResults: 500)).items
            #expect(events.contains { $0.actor == "eddie" && $0.action == "create_experiment" && $0.entityID == expID })
            #expect(events.contains { $0.actor == "vera" && $0.action == "permission_denied" })
            #expect(events.contains { $0.actor == "nora" && $0.action == "create_run" })
        }
    }

    @Test func tokensExpireAndCanBeRevoked() async throws {
        try await withTestApp(auth: true) { client, services, _ in
            let user = try await services.access.createUser(username: "tim", password: "tim-password", isAdmin: true)
            let (expired, expiredSecret) = try await services.access.createToken(for: user, name: "old", expiresAt: Clock.nowMillis() - 1000)
            _ = expired
            var (status, _) = try await client.json(.get, "/api/v1/me", headers: Self.bearer(expiredSecret))
            #expect(status == .unauthorized)
            (status, _) = try await client.json(.get, "/api/v1/me", headers: Self.bearer("loom_not-a-real-token"))
            #expect(status == .unauthorized)
            let (_, created) = try await client.json(.post, "/api/v1/tokens", body: #"{"name": "ci"}"#, headers: Self.basic("tim", "tim-password"))
            let secret = try #require(created["secret"] as? String)
            let id = try #require((created["token"] as? [String: Any])?["id"] as? Int)
            let (_, me) = try await client.json(.get, "/api/v1/me", headers: Self.bearer(secret))
            #expect(me["username"] as? String == "tim")
            (status, _) = try await client.json(.delete, "/api/v1/tokens/\(id)", headers: Self.basic("tim", "tim-password"))
            #expect(status == .noContent)
            (status, _) = try await client.json(.get, "/api/v1/me", headers: Self.bearer(secret))
            #expect(status == .unauthorized)
        }
    }

    @Test func theLastAdministratorCannotBeRemoved() async throws {
        try await withTestApp(auth: true) { client, services, _ in
            _ = try await services.access.createUser(username: "root", password: "root-password", isAdmin: true)
            var (status, body) = try await client.json(.patch, "/api/v1/users/root", body: #"{"is_admin": false}"#, headers: Self.basic("root", "root-password"))
            #expect(status == .badRequest)
            #expect((body["message"] as? String)?.contains("only administrator") == true)
            (status, _) = try await client.json(.delete, "/api/v1/users/root", headers: Self.basic("root", "root-password"))
            #expect(status == .badRequest)
            _ = try await services.access.createUser(username: "second", password: "second-password", isAdmin: true)
            (status, _) = try await client.json(.patch, "/api/v1/users/root", body: #"{"is_admin": false}"#, headers: Self.basic("second", "second-password"))
            #expect(status == .ok)
        }
    }

    @Test func unknownWorkspacesAreNotFound() async throws {
        try await withTestApp { client, _, _ in
            var headers = HTTPFields()
            headers[HTTPField.Name("X-Loom-Workspace")!] = "nosuchws"
            var (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "x"}"#, headers: headers)
            #expect(status == .notFound)
            #expect((body["message"] as? String)?.contains("Workspace 'nosuchws' not found") == true)
            (status, _) = try await client.json(.post, "/api/v1/workspaces", body: #"{"name": "nosuchws"}"#)
            #expect(status == .created)
            (status, body) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "x"}"#, headers: headers)
            #expect(status == .ok)
            // The same name in another workspace is a different experiment.
            (status, _) = try await client.json(.post, "/api/2.0/mlflow/experiments/create", body: #"{"name": "x"}"#)
            #expect(status == .ok)
        }
    }
}
