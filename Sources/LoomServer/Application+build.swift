import Hummingbird
import HummingbirdCore
import LoomArtifacts
import LoomCore
import LoomServing
import LoomStore
import LoomTracking
import Logging

/// Builds the router with every route, middleware and the route catalog.
public func buildRouter(services: ServerServices, catalog: RouteCatalog = RouteCatalog()) -> Router<LoomRequestContext> {
    let router = Router(context: LoomRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware())
    router.add(middleware: ErrorMiddleware(logger: services.logger))
    router.add(middleware: AuthMiddleware(access: services.access, enabled: services.configuration.authEnabled, logger: services.logger))
    let routes = Routes(router: router, catalog: catalog)
    SystemController(services: services).addRoutes(to: routes)
    MLflowController(services: services).addRoutes(to: routes)
    ArtifactsController(services: services).addRoutes(to: routes)
    APIv1Controller(services: services).addRoutes(to: routes)
    InvocationController(services: services).addRoutes(to: routes)
    GatewayController(services: services).addRoutes(to: routes)
    UIController(services: services).addRoutes(to: routes)
    return router
}

/// HTTP/1.1 with the invocation relay and fast path in front of the router (`InvocationRelay`,
/// `InvocationFastPath`).
public func httpServer(services: ServerServices) -> HTTPServerBuilder {
    let shared = InvocationFastPath.Shared(
        router: services.serving.router, authEnabled: services.configuration.authEnabled, serverName: "loom", gateway: services.gateway.gateway,
        tracking: services.tracking, logger: services.logger)
    return HTTPServerBuilder { responder in LoomHTTP1Channel(responder: responder, shared: shared) }
}

/// Builds the whole application; `loom server` and the tests call the same function.
public func buildApplication(
    services: ServerServices, catalog: RouteCatalog = RouteCatalog(),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = buildRouter(services: services, catalog: catalog)
    let configuration = ApplicationConfiguration(
        address: .hostname(services.configuration.host, port: services.configuration.port),
        serverName: "loom")
    return Application(
        router: router,
        server: httpServer(services: services),
        configuration: configuration,
        // Shut down in reverse order: endpoints drain and stop their model servers, pipeline
        // runs give their steps back, then the store closes.
        services: [StoreShutdownService(store: services.store)] + (services.pipelines.map { [$0] } ?? []) + [services.endpoints, services.monitors, services.gateway],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? 0
            services.pipelines?.serverRunning(port: port)
            await onServerRunning(port)
        },
        logger: services.logger)
}
