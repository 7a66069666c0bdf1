// swift-tools-version:6.2
import Foundation
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The data readers and model code run tight loops over class-held buffers, where run-time
/// exclusivity checks (`swift_beginAccess`) cost a tenth of the time; their accesses are
/// checked at compile time as everywhere else.
let hotLoopSettings: [SwiftSetting] = swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]

/// `loom` is linked position-dependent on Linux. As a position-independent executable its Swift
/// metadata carries ~77,000 relative relocations that the loader applies at every start: 2 MiB
/// of relocation records read and 1 MiB of data written, about 4 MiB of the idle server's
/// resident memory (BENCHMARKS.md, issue 2). The shared libraries, heap and stacks are still
/// placed at random; only the executable's own image is not. `LOOM_LINK_PIE=1 swift build`
/// links a position-independent executable instead. Linked by GNU ld (bfd): gold, the default,
/// turns function addresses taken from libswiftCore into canonical PLT entries of the
/// executable, and the loader then warns on stderr at every start ("direct reference to
/// protected function"); bfd and lld do not (lld's layout kept 2 MiB more resident).
let loomLinkerSettings: [LinkerSetting] =
    ProcessInfo.processInfo.environment["LOOM_LINK_PIE"] == "1"
    ? [] : [.unsafeFlags(["-use-ld=bfd", "-Xclang-linker", "-no-pie"], .when(platforms: [.linux]))]

let package = Package(
    name: "loom",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "loom", targets: ["loom"]),
        .library(name: "LoomCore", targets: ["LoomCore"]),
        .library(name: "LoomStore", targets: ["LoomStore"]),
        .library(name: "LoomArtifacts", targets: ["LoomArtifacts"]),
        .library(name: "LoomTracking", targets: ["LoomTracking"]),
        .library(name: "LoomServer", targets: ["LoomServer"]),
        .library(name: "LoomData", targets: ["LoomData"]),
        .library(name: "LoomModels", targets: ["LoomModels"]),
        .library(name: "LoomSpec", targets: ["LoomSpec"]),
        .library(name: "LoomPipelines", targets: ["LoomPipelines"]),
        .library(name: "LoomServing", targets: ["LoomServing"]),
        .library(name: "LoomMonitoring", targets: ["LoomMonitoring"]),
        .library(name: "LoomGenAI", targets: ["LoomGenAI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "LoomCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomData",
            dependencies: [
                "LoomCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: hotLoopSettings
        ),
        .target(
            name: "LoomModels",
            dependencies: ["LoomCore", "LoomData"],
            swiftSettings: hotLoopSettings
        ),
        .target(
            name: "LoomSpec",
            dependencies: ["LoomCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomPipelines",
            dependencies: [
                "LoomCore", "LoomStore", "LoomData", "LoomSpec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomServing",
            dependencies: [
                "LoomCore", "LoomStore", "LoomModels", "LoomForwarding",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomMonitoring",
            dependencies: ["LoomCore", "LoomData", "LoomSpec", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomForwarding",
            dependencies: [
                "LoomCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomGenAI",
            dependencies: [
                "LoomCore", "LoomStore", "LoomSpec", "LoomForwarding", "LoomArtifacts", "LoomData",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomStore",
            dependencies: [
                "LoomCore",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomArtifacts",
            dependencies: [
                "LoomCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomTracking",
            dependencies: [
                "LoomCore", "LoomStore", "LoomArtifacts", "LoomData", "LoomModels", "LoomPipelines", "LoomSpec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomServer",
            dependencies: [
                "LoomCore", "LoomStore", "LoomArtifacts", "LoomTracking", "LoomData", "LoomPipelines", "LoomSpec", "LoomServing", "LoomModels", "LoomMonitoring", "LoomGenAI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomCLI",
            dependencies: [
                "LoomCore", "LoomStore", "LoomTracking", "LoomServer", "LoomData", "LoomModels", "LoomPipelines", "LoomSpec", "LoomServing", "LoomMonitoring", "LoomGenAI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "loom",
            dependencies: ["LoomCLI"],
            swiftSettings: swiftSettings,
            linkerSettings: loomLinkerSettings
        ),
        .executableTarget(
            name: "loom-test-llm-double",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "tests/llm-double",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "loom-bench-baseline",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "bench/baseline",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoomTesting",
            dependencies: [
                "LoomCore", "LoomStore", "LoomArtifacts", "LoomTracking", "LoomServer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LoomTests",
            dependencies: [
                "LoomCore", "LoomStore", "LoomArtifacts", "LoomTracking", "LoomServer", "LoomCLI", "LoomTesting", "LoomData", "LoomModels",
                "LoomPipelines", "LoomSpec", "LoomServing", "LoomMonitoring", "LoomGenAI", "LoomForwarding",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ]
)
