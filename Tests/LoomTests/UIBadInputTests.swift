import Foundation
import HTTPTypes
import HummingbirdTesting
import LoomTesting
import Testing

@Suite("UI pages refuse bad input")
struct UIBadInputTests {
    @Test("a page number whose offset would overflow is a 400 page, and the server goes on")
    func hugePage() async throws {
        try await withTestApp(.sqlite) { client, _, _ in
            let status = try await client.execute(uri: "/experiments/0?page=4593929728547681280", method: .get) { $0.status }
            #expect(status == .badRequest)
            #expect(try await client.execute(uri: "/experiments/0?page=2", method: .get) { $0.status } == .ok)
        }
    }
}
