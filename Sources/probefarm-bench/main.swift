import Foundation
import NeuralModels
import TensorCore

// probefarm-bench engine [--batches 1,8,64] [--json FILE] [--calls N (untimed, for perf/valgrind)]
// probefarm-bench sampler [--batches 1,8,64] [--json FILE] [--calls N]
// probefarm-bench diagnostics FILE.npy [--json FILE]
// probefarm-bench mixing [--dimensions 20,100] [--chains 4] [--warmup 1000] [--draws 1000] [--dir DIR] [--json FILE]
// Prints figures; Scripts/bench.sh runs it beside the peers and prints ratios.

MemoryTuning.keepLargeAllocations()
BLAS.setThreads(1)
var args = Array(CommandLine.arguments.dropFirst())
@MainActor func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    defer { args.removeSubrange(i...(i + 1)) }
    return args[i + 1]
}
let jsonPath = option("--json")
let batches = (option("--batches") ?? "1,8,64").split(separator: ",").compactMap { Int($0) }
let cases = (option("--cases") ?? "vae_cnn,mlp").split(separator: ",").map(String.init)
let repeats = Int(option("--repeats") ?? "7") ?? 7
let minTime = Double(option("--min-time") ?? "0.25") ?? 0.25
let calls = option("--calls").flatMap { Int($0) }

@MainActor func emit(_ object: some Encodable) {
    guard let jsonPath else { return }
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try? enc.encode(object).write(to: URL(fileURLWithPath: jsonPath))
}

switch args.first {
case "engine":
    print("ProbeFarm engine: BLAS \(BLAS.coreName), \(BLAS.threads) thread(s)")
    let rows = try EngineBenchmark.run(batches: batches, cases: cases, minTime: minTime, repeats: repeats,
                                          calls: calls)
    for r in rows {
        print(String(format: "%-8@ B=%3d  %9.3f ms/call  %11.1f grad/s/chain  %11.1f grad/s total",
                     r.case as NSString, r.batch, r.medianSecondsPerCall * 1e3, r.gradientsPerSecondPerChain,
                     r.gradientsPerSecondTotal))
    }
    emit(rows)
case "sampler":
    print("ProbeFarm MALA: BLAS \(BLAS.coreName), \(BLAS.threads) thread(s)")
    let rows = try SamplerBenchmark.run(batches: batches, cases: cases, minTime: minTime, repeats: repeats,
                                        calls: calls)
    for r in rows {
        print("\(r.case.padding(toLength: 8, withPad: " ", startingAt: 0)) B=\(String(r.batch).leftPadded(3))  "
              + String(format: "%11.1f steps/s/chain  %11.1f steps/s total  acceptance %.2f", r.stepsPerSecondPerChain,
                       r.stepsPerSecondTotal, r.acceptance))
    }
    emit(rows)
case "mixing":
    let dims = (option("--dimensions") ?? "20,100").split(separator: ",").compactMap { Int($0) }
    let dir = option("--dir") ?? NSTemporaryDirectory()
    print("ProbeFarm NUTS (diagonal metric, Stan's windows): BLAS \(BLAS.coreName), \(BLAS.threads) thread(s)")
    let rows = try MixingBenchmark.run(dimensions: dims, chains: Int(option("--chains") ?? "4") ?? 4,
                                       warmup: Int(option("--warmup") ?? "1000") ?? 1000,
                                       draws: Int(option("--draws") ?? "1000") ?? 1000, directory: dir)
    for r in rows {
        print(String(format: "d=%3d  %6.2f s  %8d gradients  min ESS bulk %7.1f tail %7.1f  ESS/gradient %.4f  ESS/s %8.1f  mean depth %.2f",
                     r.dimension, r.seconds, r.gradientEvaluations, r.minESSBulk, r.minESSTail,
                     min(r.minESSBulk, r.minESSTail) / Double(r.gradientEvaluations), min(r.minESSBulk, r.minESSTail) / r.seconds,
                     r.meanTreeDepth))
    }
    emit(rows)
case "diagnostics":
    guard args.count >= 2 else { fatalError("usage: probefarm-bench diagnostics FILE.npy") }
    let r = try DiagnosticsBenchmark.run(path: args[1])
    print(String(format: "ProbeFarm diagnostics: %d quantities in %.2f s (%.2f ms each)", r.quantities, r.seconds,
                 1e3 * r.seconds / Double(r.quantities)))
    struct Out: Encodable { var seconds: Double; var quantities: Int; var first: [String: Double?] }
    let f = r.summaries[0]
    emit(Out(seconds: r.seconds, quantities: r.quantities,
             first: ["rhat": f.rhat, "ess_bulk": f.essBulk, "ess_tail": f.essTail, "mcse_mean": f.mcseMean]))
case "ingest":
    let connections = Int(option("--connections") ?? "1000") ?? 1000
    let results = Int(option("--results") ?? "2000") ?? 2000
    let heartbeat = Double(option("--heartbeat-seconds") ?? "10") ?? 10
    try IngestBenchmark.coordinator(connections: connections, results: results, heartbeatSeconds: heartbeat,
                                    directory: option("--dir") ?? NSTemporaryDirectory())
case "ingest-load":
    try IngestBenchmark.load(endpoint: args[1], connections: Int(args[2])!, results: Int(args[3])!, heartbeatSeconds: Double(args[4])!)
case "make-big":
    // A 200 MB regressor: Linear 10000 -> 5000 (50M F32 weights), tanh, Linear 5000 -> 1.
    guard args.count >= 2 else { fatalError("usage: probefarm-bench make-big FILE") }
    var g = SplitMix64(seed: 9)
    let w = Tensor(shape: [5000, 10000]) { _ in g.nextNormal() * 0.01 }
    let h = Tensor(shape: [1, 5000]) { _ in g.nextNormal() * 0.01 }
    let arch = Architecture(input: [10000], output: .value, layers: [
        LayerSpec.linear("big.weight"), LayerSpec(op: "tanh"), LayerSpec.linear("head.weight")])
    let net = try Sequential(layers: [Linear(weight: w, bias: nil, names: ("big.weight", nil)), Activation(.tanh),
                                      Linear(weight: h, bias: nil, names: ("head.weight", nil))], inputShape: [10000])
    try Model.save(net, architecture: arch, to: args[1])
    print("wrote \(args[1])")
case "hold":
    // Load a model, touch every weight with a forward pass, report, and wait.
    guard args.count >= 3, let seconds = UInt32(args[2]) else { fatalError("usage: probefarm-bench hold FILE SECONDS") }
    let m = try Model.load(args[1])
    _ = m.network(Tensor(shape: [1] + m.inputShape, repeating: 1))
    withExtendedLifetime(m) {
        print("ready \(getpid())")
        fflush(nil)
        sleep(seconds)
    }
default:
    print("usage: probefarm-bench sampler [--batches 1,8,64] [--cases vae_cnn,mlp] [--json FILE] [--calls N]")
    print("usage: probefarm-bench engine [--batches 1,8,64] [--cases vae_cnn,mlp] [--json FILE] [--calls N]\n"
        + "       probefarm-bench diagnostics FILE.npy [--json FILE]")
    exit(64)
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
