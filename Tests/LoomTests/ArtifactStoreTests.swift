import Foundation
import LoomCore
import LoomTesting
import Testing

@testable import LoomArtifacts

/// The artifact stores: the local one and the S3 one (against a real S3-compatible server,
/// moto's, started by scripts/test) pass the same checks.
@Suite("Artifact stores")
struct ArtifactStoreTests {
    @Test func local() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-artifacts-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try await ArtifactStoreConformance.run(try LocalArtifactStore(root: dir.path), largeBytes: 3 << 20)
    }

    /// `LOOM_TEST_S3_ENDPOINT` (e.g. http://127.0.0.1:5555); with `LOOM_REQUIRE_S3=1` (set by
    /// scripts/test) a missing server is a failure rather than a skip.
    static var s3Endpoint: URL? {
        ProcessInfo.processInfo.environment["LOOM_TEST_S3_ENDPOINT"].flatMap { $0.isEmpty ? nil : URL(string: $0) }
    }

    @Test func s3() async throws {
        guard let endpoint = Self.s3Endpoint else {
            if ProcessInfo.processInfo.environment["LOOM_REQUIRE_S3"] == "1" { Issue.record("LOOM_TEST_S3_ENDPOINT is not set but S3 tests are required") }
            return
        }
        let store = try S3ArtifactStore(
            endpoint: endpoint, region: "us-east-1", bucket: "loom-test-\(Identifiers.newHexID().prefix(10))", prefix: "team/artifacts",
            credentials: .init(accessKeyID: "testing", secretAccessKey: "testing"), partSize: 5 << 20)
        try await store.createBucket()
        // 12 MiB: three parts of a multipart upload.
        try await ArtifactStoreConformance.run(store, largeBytes: 12 << 20)
    }

    @Test func s3LocationsAreParsed() throws {
        #expect(try S3ArtifactStore.parse("s3://bucket/some/prefix") == ("bucket", "some/prefix"))
        #expect(try S3ArtifactStore.parse("s3://bucket") == ("bucket", ""))
        #expect(throws: LoomError.self) { _ = try S3ArtifactStore.parse("s3://") }
        #expect(throws: LoomError.self) { _ = try S3ArtifactStore.parse("/local/path") }
    }

    /// AWS's worked examples of Signature Version 4 for S3 (the S3 API reference, "Signature
    /// Calculations for the Authorization Header": GET Bucket Lifecycle and GET Bucket (List Objects)).
    @Test func signaturesMatchAWSExamples() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let headers = [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", empty), ("x-amz-date", "20130524T000000Z")]
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        let lifecycle = S3ArtifactStore.signature(
            method: "GET", path: "/", query: "lifecycle=", headers: headers, payloadHash: empty, amzDate: "20130524T000000Z", region: "us-east-1", secret: secret)
        #expect(lifecycle.signedHeaders == "host;x-amz-content-sha256;x-amz-date")
        #expect(lifecycle.scope == "20130524/us-east-1/s3/aws4_request")
        #expect(lifecycle.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        let listing = S3ArtifactStore.signature(
            method: "GET", path: "/", query: "max-keys=2&prefix=J", headers: headers, payloadHash: empty, amzDate: "20130524T000000Z", region: "us-east-1", secret: secret)
        #expect(listing.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    /// `x-amz-date` in UTC: AWS's example date, a time with every field
    /// non-zero (fractions of a second cut off), and the last second of a leap year.
    @Test func amzDatesAreUTC() {
        #expect(S3ArtifactStore.amzDate(Date(timeIntervalSince1970: 1_369_353_600)) == "20130524T000000Z")
        #expect(S3ArtifactStore.amzDate(Date(timeIntervalSince1970: 1_700_000_000.75)) == "20231114T221320Z")
        #expect(S3ArtifactStore.amzDate(Date(timeIntervalSince1970: 1_609_459_199)) == "20201231T235959Z")
    }
}
