// swift-tools-version:6.0
import PackageDescription

// Layers of shared/DESIGN.md; dependencies point down only.
let package = Package(
    name: "ProbeFarm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "probefarm", targets: ["probefarm"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "NeuralModels", targets: ["NeuralModels"]),
        .library(name: "Diagnostics", targets: ["Diagnostics"]),
        .library(name: "Samplers", targets: ["Samplers"]),
        .library(name: "Probes", targets: ["Probes"]),
        .library(name: "ChainFarm", targets: ["ChainFarm"]),
        .library(name: "FarmWire", targets: ["FarmWire"]),
        .library(name: "FarmZeroMQ", targets: ["FarmZeroMQ"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libzmq3-dev, libnetcdf-dev).
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZeroMQ", pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(
            name: "CNetCDF", pkgConfig: "netcdf",
            providers: [.apt(["libnetcdf-dev"])]),

        // Vector kernels that need an instruction set chosen at run time (Swift compiles
        // for the baseline x86-64); results do not depend on which one runs.
        .target(name: "CKernels"),
        .target(name: "TensorCore", dependencies: ["COpenBLAS", "CKernels"]),
        .target(
            name: "NeuralModels",
            dependencies: ["TensorCore", .product(name: "Yams", package: "Yams"),
                           .product(name: "Crypto", package: "swift-crypto"), .product(name: "SwiftCSV", package: "SwiftCSV")]),
        .target(name: "Diagnostics"),
        .target(name: "Samplers"),
        .target(
            name: "Probes",
            dependencies: ["TensorCore", "NeuralModels", "Samplers", .product(name: "Yams", package: "Yams")]),
        .target(name: "Reports", dependencies: ["TensorCore", "CNetCDF"]),
        .target(name: "FarmWire", dependencies: ["Probes", "Samplers"]),
        .target(name: "FarmZeroMQ", dependencies: ["CZeroMQ", "FarmWire"]),
        .target(
            name: "ChainFarm",
            dependencies: ["TensorCore", "NeuralModels", "Samplers", "Probes", "Diagnostics", "Reports", "FarmWire", "FarmZeroMQ",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Prometheus", package: "swift-prometheus")]),
        .target(
            name: "ProbeFarmTesting",
            dependencies: ["TensorCore", "NeuralModels", "Diagnostics", "Samplers", "Probes"]),
        .executableTarget(
            name: "probefarm",
            dependencies: [
                "TensorCore", "NeuralModels", "Diagnostics", "Reports", "Samplers", "Probes", "ChainFarm",
                "FarmWire", "FarmZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .executableTarget(
            name: "probefarm-bench",
            dependencies: ["TensorCore", "NeuralModels", "Diagnostics", "Samplers", "Probes", "ChainFarm", "FarmWire", "FarmZeroMQ"]),

        .testTarget(
            name: "ProbesTests",
            dependencies: ["Probes", "Samplers", "NeuralModels", "TensorCore", "Diagnostics", "ProbeFarmTesting"]),
        .testTarget(name: "SamplersTests", dependencies: ["Samplers", "Diagnostics", "ProbeFarmTesting"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "CKernels", "ProbeFarmTesting"]),
        .testTarget(
            name: "NeuralModelsTests",
            dependencies: ["NeuralModels", "TensorCore", "ProbeFarmTesting"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "DiagnosticsTests",
            dependencies: ["Diagnostics", "TensorCore", "ProbeFarmTesting"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "FarmTests",
            dependencies: ["ChainFarm", "FarmWire", "FarmZeroMQ", "Samplers", "TensorCore", "NeuralModels", "ProbeFarmTesting"]),
        .testTarget(
            name: "ProbeFarmCLITests",
            dependencies: ["TensorCore", "NeuralModels", "ProbeFarmTesting"],
            exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
