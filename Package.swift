// swift-tools-version:6.2
import PackageDescription

// Three C libraries, each fenced behind one Swift wrapper target:
// CLibUV → Loop, CHTTPParser → HTTP1, CLibPQ → PG. The domain (Quorix) never sees a pointer.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // Nonisolated async code runs where its caller runs: on the loop, for loop tasks.
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    // Generic code (the router, header storage) is specialized across our modules in release
    // builds instead of going through run-time metadata on every request.
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "quorix",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quorix", targets: ["quorix"]),
        .executable(name: "quorix-load", targets: ["quorix-load"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CLibUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CHTTPParser", providers: [.apt(["libhttp-parser-dev"])]),

        .target(name: "Loop", dependencies: ["CLibUV"], swiftSettings: strict),
        .target(name: "HTTP1", dependencies: ["CHTTPParser", "Loop"], swiftSettings: strict),
        .target(
            name: "PG",
            dependencies: ["CLibPQ", "Loop", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "Quorix",
            dependencies: [
                "Loop", "HTTP1", "PG",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "quorix",
            dependencies: [
                "Quorix", "Loop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The benchmarks' load generator (Benchmarks/): loopback only, bounded, on the same loop.
        .executableTarget(name: "quorix-load", dependencies: ["Loop", "HTTP1"], swiftSettings: strict),

        // Shared by the test targets: a PostgreSQL cluster for tests, a server process, an HTTP client.
        .target(
            name: "QuorixTestSupport",
            dependencies: ["Quorix", "Loop", "PG", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Support",
            swiftSettings: strict
        ),

        .testTarget(name: "LoopTests", dependencies: ["Loop"], swiftSettings: strict),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "Loop"], swiftSettings: strict),
        .testTarget(name: "PGTests", dependencies: ["PG", "Loop", "QuorixTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "QuorixTests",
            dependencies: ["Quorix", "HTTP1", "Loop", "PG", "QuorixTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
