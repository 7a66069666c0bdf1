import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomCore
import LoomTesting
import NIOCore
import Testing

@Suite("Dataset API")
struct DatasetAPITests {
    static func upload(_ client: any TestClientProtocol, _ uri: String, _ text: String, headers: HTTPFields = [:]) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: text)) { response in
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
            return (response.status, object)
        }
    }

    @Test("upload, re-upload, list, show; malformed data records nothing", arguments: TestBackend.available)
    func lifecycle(_ backend: TestBackend) async throws {
        try await withTestApp(backend, maxArtifactBytes: 10_000) { client, _, _ in
            let uri = "/api/v1/datasets/sales/versions?file_name=sales.csv&description=first%20cut"
            var (status, body) = try await Self.upload(client, uri, "region,amount\nnorth,10\nsouth,\nnorth,12.5\n")
            #expect(status == .created)
            #expect(body["version"] as? Int == 1 && body["row_count"] as? Int == 3 && body["format"] as? String == "csv")
            #expect(body["description"] as? String == "first cut" && body["source_type"] as? String == "upload")
            let profile = try #require(body["profile"] as? [String: Any])
            let columns = try #require(profile["columns"] as? [[String: Any]])
            #expect(columns.map { $0["type"] as? String } == ["string", "number"])
            #expect(columns[1]["nulls"] as? Int == 1 && columns[1]["mean"] as? Double == 11.25)
            let schema = try #require(body["schema"] as? [String: Any])
            #expect((schema["columns"] as? [[String: Any]])?.map { $0["name"] as? String } == ["region", "amount"])

            (status, body) = try await Self.upload(client, uri, "region,amount\nnorth,10\nsouth,\nnorth,12.5\n")
            #expect(status == .ok && body["version"] as? Int == 1)
            (status, body) = try await Self.upload(client, "/api/v1/datasets/sales/versions?file_name=more.jsonl", #"{"region": "east", "amount": 3}"# + "\n")
            #expect(status == .created && body["version"] as? Int == 2 && body["format"] as? String == "jsonl")

            // Refused, and nothing recorded.
            for (bad, expected) in [
                ("/api/v1/datasets/sales/versions?file_name=bad.csv", "bad.csv, line 3: 1 fields, but the header has 2"),
                ("/api/v1/datasets/sales/versions?file_name=..%2Fx.csv", "Invalid file_name"),
                ("/api/v1/datasets/sales/versions?file_name=x.xlsx", "Invalid file_name"),
                ("/api/v1/datasets/sales/versions", "file_name"),
                ("/api/v1/datasets/bad%20name/versions?file_name=x.csv", "Invalid dataset name"),
            ] {
                (status, body) = try await Self.upload(client, bad, "a,b\n1,2\n3\n")
                #expect(status == .badRequest, "\(bad)")
                #expect((body["message"] as? String)?.contains(expected) == true, "\(bad): \(body)")
            }
            (status, _) = try await Self.upload(client, "/api/v1/datasets/big/versions?file_name=big.csv", "x\n" + String(repeating: "1\n", count: 6_000))
            #expect(status == .contentTooLarge)

            (status, body) = try await client.json(.get, "/api/v1/datasets")
            let items = try #require(body["items"] as? [[String: Any]])
            #expect(items.map { $0["name"] as? String } == ["sales"])
            #expect(items.first?["versions"] as? Int == 2)
            (status, body) = try await client.json(.get, "/api/v1/datasets/sales/versions")
            #expect((body["items"] as? [[String: Any]])?.map { $0["version"] as? Int } == [2, 1])
            (status, body) = try await client.json(.get, "/api/v1/datasets/sales/versions/latest")
            #expect(status == .ok && body["version"] as? Int == 2 && body["profile"] != nil)
            (status, _) = try await client.json(.get, "/api/v1/datasets/sales/versions/9")
            #expect(status == .notFound)
            (status, _) = try await client.json(.get, "/api/v1/datasets/sales/versions/abc")
            #expect(status == .badRequest)
            (status, _) = try await client.json(.get, "/api/v1/datasets/nothing/versions")
            #expect(status == .notFound)
        }
    }

    @Test("viewers read datasets, editors register them")
    func roles() async throws {
        try await withTestApp(auth: true) { client, services, _ in
            _ = try await services.access.createUser(username: "vera", password: "vera-password", isAdmin: false)
            _ = try await services.access.createUser(username: "eddie", password: "eddie-password", isAdmin: false)
            try await services.store.setRole(username: "vera", workspace: "default", role: .viewer)
            try await services.store.setRole(username: "eddie", workspace: "default", role: .editor)
            let uri = "/api/v1/datasets/d/versions?file_name=d.csv"
            var (status, _) = try await Self.upload(client, uri, "a\n1\n", headers: AuthTests.basic("vera", "vera-password"))
            #expect(status == .forbidden)
            (status, _) = try await Self.upload(client, uri, "a\n1\n", headers: AuthTests.basic("eddie", "eddie-password"))
            #expect(status == .created)
            (status, _) = try await client.json(.get, "/api/v1/datasets/d/versions/1", headers: AuthTests.basic("vera", "vera-password"))
            #expect(status == .ok)
        }
    }
}

@Suite("Dataset UI pages")
struct DatasetUITests {
    static func page(_ client: any TestClientProtocol, _ uri: String) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: uri, method: .get) { ($0.status, String(decoding: $0.body.readableBytesView, as: UTF8.self)) }
    }

    @Test("the list and a dataset's page show versions, the profile and findings, escaped")
    func pages() async throws {
        try await withTestApp { client, _, _ in
            var (status, html) = try await Self.page(client, "/datasets")
            #expect(status == .ok && html.contains("Nothing registered yet"))
            _ = try await DatasetAPITests.upload(client, "/api/v1/datasets/people/versions?file_name=p.csv", "name,age,note\n<b>ann</b>,31,\nbob,,\n")
            _ = try await DatasetAPITests.upload(client, "/api/v1/datasets/people/versions?file_name=p.csv", "name,age\nann,31\nbob,40\ncy,22\n")
            (status, html) = try await Self.page(client, "/datasets")
            #expect(html.contains("href=\"/datasets/people\"") && html.contains("<td>v2</td>"))
            (status, html) = try await Self.page(client, "/datasets/people")
            #expect(status == .ok && html.contains("Profile of v2") && html.contains("3 rows"))
            (status, html) = try await Self.page(client, "/datasets/people?version=1")
            #expect(html.contains("Profile of v1") && html.contains("all_null"))
            #expect(html.contains("&lt;b&gt;ann&lt;/b&gt;") && !html.contains("<b>ann</b>"))
            (status, html) = try await Self.page(client, "/datasets/people?version=5")
            #expect(status == .notFound)
            (status, _) = try await Self.page(client, "/datasets/nobody")
            #expect(status == .notFound)
        }
    }
}

@Suite("Run evaluation plots")
struct RunPlotUITests {
    @Test("the run page shows evaluation/*.svg as images, served so that no script runs")
    func plots() async throws {
        try await withTestApp { client, services, _ in
            let tracking = services.tracking
            let run = try await tracking.createRun(experimentID: "0", userID: "t", startTime: nil, runName: "r", tags: [])
            let root = try #require(try tracking.runArtifactRoot(run.info))
            let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script><circle r=\"4\"/></svg>"
            _ = try await tracking.artifacts.write(try root.appending("evaluation/calibration.svg"), bytes: Array(svg.utf8))
            _ = try await tracking.artifacts.write(try root.appending("evaluation/metrics.json"), bytes: Array("{}".utf8))
            let id = run.info.runID
            var (status, html) = try await DatasetUITests.page(client, "/runs/\(id)")
            #expect(status == .ok && html.contains("<img src=\"/runs/\(id)/plots/calibration.svg\""))
            #expect(!html.contains("plots/metrics.json") && !html.contains("<script>alert"))
            try await client.execute(uri: "/runs/\(id)/plots/calibration.svg", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/svg+xml")
                #expect(response.headers[.contentSecurityPolicy]?.contains("sandbox") == true)
                #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                #expect(String(decoding: response.body.readableBytesView, as: UTF8.self) == svg)
            }
            for bad in ["metrics.json", "..%2Fx.svg", "nothere.svg"] {
                (status, _) = try await DatasetUITests.page(client, "/runs/\(id)/plots/\(bad)")
                #expect(status == .notFound, "\(bad)")
            }
            // A run without plots has no evaluation section.
            let plain = try await tracking.createRun(experimentID: "0", userID: "t", startTime: nil, runName: "p", tags: [])
            (status, html) = try await DatasetUITests.page(client, "/runs/\(plain.info.runID)")
            #expect(status == .ok && !html.contains("id=\"evaluation\""))
        }
    }
}
