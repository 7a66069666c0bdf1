import Foundation
import LoomServer
import LoomTesting
import Testing
import Yams

/// The OpenAPI document matches the code: every registered route is documented and every
/// documented operation exists.
@Suite("OpenAPI document")
struct OpenAPICoverageTests {
    static func documentedOperations() throws -> Set<String> {
        let yaml = try #require(try Yams.load(yaml: OpenAPIDocument.text) as? [String: Any])
        #expect((yaml["openapi"] as? String)?.hasPrefix("3.1") == true)
        let paths = try #require(yaml["paths"] as? [String: Any])
        var ops: Set<String> = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] where item[method] != nil {
                ops.insert("\(method.uppercased()) \(path)")
            }
        }
        return ops
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let documented = try Self.documentedOperations()
        let registered: Set<String> = try await withTestApp { _, _, catalog in
            Set(catalog.all.map { "\($0.method.uppercased()) \($0.path)" })
        }
        #expect(registered.count > 100)
        let undocumented = registered.subtracting(documented).sorted()
        let phantom = documented.subtracting(registered).sorted()
        #expect(undocumented.isEmpty, "routes missing from openapi.yaml: \(undocumented)")
        #expect(phantom.isEmpty, "documented operations the server does not have: \(phantom)")
    }

    @Test func theDocumentIsServed() async throws {
        try await withTestApp { client, _, _ in
            try await client.execute(uri: "/openapi.yaml", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("openapi: 3.1"))
            }
        }
    }
}
