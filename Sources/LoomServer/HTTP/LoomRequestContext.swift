import Hummingbird
import LoomCore

/// Per-request state: who is calling and in which workspace.
public struct LoomRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller; `.anonymous` (allowed everything) when auth is off.
    public var actor: Actor = .anonymous
    /// Whether the server enforces permissions for this request.
    public var authEnabled = false
    /// The workspace the request acts in (`X-Loom-Workspace` header, default `default`).
    public var workspace: String = Workspace.defaultName
    /// Scoring requests (`/endpoints/NAME/invocations`) authenticate in their handler, by the
    /// endpoint's own key or the server's auth: why the server's auth refused the caller, if it did.
    public var deferredAuthError: LoomError?

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// JSON request bodies; artifact uploads stream and are not bound by this.
    public var maxUploadSize: Int { Self.maxJSONBodyBytes }
    static let maxJSONBodyBytes = 16 << 20
}
