import LoomCore
import LoomStore
import Synchronization

/// Remembers which workspaces exist so that a request naming an unknown one gets a clear 404
/// without a database lookup on every request.
final class WorkspaceDirectory: Sendable {
    private let known = Mutex<Set<String>>([Workspace.defaultName])
    let store: any MetadataStore

    init(store: any MetadataStore) {
        self.store = store
    }

    func require(_ name: String) async throws {
        if known.withLock({ $0.contains(name) }) { return }
        guard try await store.workspace(named: name) != nil else {
            throw LoomError.notFound("Workspace '\(name)' not found")
        }
        known.withLock { _ = $0.insert(name) }
    }
}
