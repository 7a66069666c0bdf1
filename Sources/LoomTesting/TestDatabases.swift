import Foundation
import LoomArtifacts
import LoomCore
import LoomStore
import LoomTracking
import Logging

/// The metadata backends every conformance test runs against.
public enum TestBackend: String, Sendable, CaseIterable, CustomTestStringConvertibleCompat {
    case sqlite
    case postgresql

    /// `LOOM_TEST_POSTGRES_URL`, e.g. `postgresql://loom:loom@127.0.0.1:5432/loom_test`.
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["LOOM_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The backends available here. With `LOOM_REQUIRE_POSTGRES=1` (set by `scripts/test`) a
    /// missing PostgreSQL is an error rather than a skip.
    public static var available: [TestBackend] {
        if postgresURL != nil || ProcessInfo.processInfo.environment["LOOM_REQUIRE_POSTGRES"] == "1" {
            return [.sqlite, .postgresql]
        }
        return [.sqlite]
    }

    public var testDescription: String { rawValue }
}

/// Swift Testing shows argument values with this description.
public protocol CustomTestStringConvertibleCompat {
    var testDescription: String { get }
}

/// A fresh, isolated store: a new SQLite file, or a new PostgreSQL schema.
public struct TestStore: Sendable {
    public let store: SQLMetadataStore
    public let backend: TestBackend
    public let directory: URL
    let schema: String?

    public static func make(_ backend: TestBackend, logger: Logger = TestStore.logger) async throws -> TestStore {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loom-test-\(Identifiers.newHexID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        switch backend {
        case .sqlite:
            let store = try await SQLMetadataStore.open(url: dir.appendingPathComponent("loom.db").path, logger: logger)
            return TestStore(store: store, backend: backend, directory: dir, schema: nil)
        case .postgresql:
            guard let base = TestBackend.postgresURL else {
                throw LoomError.unavailable("LOOM_TEST_POSTGRES_URL is not set but PostgreSQL tests are required")
            }
            let schema = "t_" + Identifiers.newHexID().prefix(16)
            let url = base + (base.contains("?") ? "&" : "?") + "schema=\(schema)"
            let store = try await SQLMetadataStore.open(url: url, logger: logger)
            return TestStore(store: store, backend: backend, directory: dir, schema: schema)
        }
    }

    /// Closes the store and removes what it created.
    public func tearDown() async {
        await store.shutdown()
        if let schema, let base = TestBackend.postgresURL {
            if let cleaner = try? await PostgresBackend.connect(url: base, logger: TestStore.logger) {
                try? await cleaner.dropSchema(schema)
                await cleaner.shutdown()
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    public static var logger: Logger {
        var l = Logger(label: "loom-test")
        l.logLevel = .warning
        return l
    }

    /// A tracking service over this store with artifacts in the temporary directory.
    public func tracking() throws -> TrackingService {
        TrackingService(store: store, artifacts: try LocalArtifactStore(root: directory.appendingPathComponent("artifacts").path), logger: Self.logger)
    }
}

/// Runs `body` with a fresh, migrated store and always tears it down.
public func withTestStore<T>(_ backend: TestBackend, _ body: (TestStore, TrackingService) async throws -> T) async throws -> T {
    let t = try await TestStore.make(backend)
    do {
        let tracking = try t.tracking()
        _ = try await tracking.prepare()
        let result = try await body(t, tracking)
        await t.tearDown()
        return result
    } catch {
        await t.tearDown()
        throw error
    }
}
