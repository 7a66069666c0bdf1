import LoomStore
import ServiceLifecycle

/// Keeps the store open while the server runs; on graceful shutdown (after the HTTP server has
/// finished its in-flight requests) it drains queued writes and closes the connections.
struct StoreShutdownService: Service {
    let store: any MetadataStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.shutdown()
    }
}
