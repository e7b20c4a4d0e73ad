import Diagnostics
import FarmZeroMQ
import Foundation
import NeuralModels
import Probes
import Samplers
import TensorCore

/// Writes a finished run as JOBSPEC §4 describes. Every file is written to a temporary
/// name and renamed, so a reader never sees half a file.
public struct RunDirectory {
    public var path: String

    public init(path: String) { self.path = path }

    /// Creates the directory; refuses one that already holds a run unless `overwrite`.
    public func prepare(overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw RunError("\(path) exists and is not a directory") }
            let summary = (path as NSString).appendingPathComponent("summary.json")
            if fm.fileExists(atPath: summary) && !overwrite {
                throw RunError("\(path) already holds a run (summary.json); choose another --output or pass --overwrite")
            }
        }
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Everything derived from the draws: data points, energies, model outputs, diagnostics.
    public struct Summary {
        public var json: [String: Any]
        public var converged: Bool
        public var maxRHat: Double?
        public var minESSBulk: Double?
        public var minESSTail: Double?
    }

    public func write(plan: JobPlan, outcome: RunOutcome, workers: Int) throws -> Summary {
        let draws = outcome.draws
        let C = draws.chains, N = draws.draws, k = draws.dimension
        let D = plan.target.dataDimension
        let target = plan.target
        // Evaluate every merged draw (chain-major) in batches of 256 on every core: x, G,
        // outputs. The batches, and so every bit, are the same whatever the cores.
        var x = [Float](), energy = [Double](), outputs = [Float]()
        x.reserveCapacity(C * N * D)
        let width = plan.outputColumns.reduce(0) { $0 + $1.width }
        var positions = [Double]()
        positions.reserveCapacity(C * N * k)
        for c in 0..<C { positions += draws.positions[c] }
        let batch = 256
        let batches = parallelMap((C * N + batch - 1) / batch) { [positions] i in
            let first = i * batch, n = min(batch, C * N - first)
            let e = target.describe(Array(positions[(first * k)..<((first + n) * k)]), count: n)
            var outputs = [Float]()
            outputs.reserveCapacity(n * width)
            for b in 0..<n {
                for (name, w) in plan.outputColumns {
                    let members = e.readouts[name]!
                    for j in 0..<w {
                        let v = members.reduce(0.0) { $0 + ($1.classes > 0 ? $1.p(b, j) : $1.values[b]) } / Double(members.count)
                        outputs.append(Float(v))
                    }
                }
            }
            return (x: e.x.map(Float.init), energy: e.energy, outputs: outputs)
        }
        for b in batches {
            x += b.x
            energy += b.energy
            outputs += b.outputs
        }
        try NumPyArray(shape: [C * N, D], float32: x).write(to: file("samples.npy"))
        try NumPyArray(shape: [C, N, D], float32: x).write(to: file("chains.npy"))
        if case .latent = target.space {
            try NumPyArray(shape: [C * N, k], float64: positions).write(to: file("latent.npy"))
        }
        if width > 0 { try NumPyArray(shape: [C * N, width], float32: outputs).write(to: file("outputs.npy")) }

        // Per-draw statistics.
        var stats = [Double](), csv = "chain,iteration,G,log_acceptance,step_size,divergent,n_steps,tree_depth,energy\n"
        let warmup = outcome.settings.warmup
        for c in 0..<C {
            for i in 0..<N {
                let row: [Double] = [Double(c), Double(warmup + i), energy[c * N + i], draws.logAcceptance[c][i],
                                     draws.stepSize[c][i], draws.divergent[c][i] ? 1 : 0, draws.steps[c][i],
                                     draws.treeDepth[c][i], draws.hamiltonian[c][i]]
                stats += row
                csv += row.enumerated().map { j, v in j == 0 || j == 1 || j == 5 || j == 6 || j == 7 ? String(Int(v)) : "\(v)" }
                    .joined(separator: ",") + "\n"
            }
        }
        try NumPyArray(shape: [C * N, 9], float64: stats).write(to: file("stats.npy"))
        try AtomicFile.write(Data(csv.utf8), to: file("stats.csv"))

        // Diagnostics on the sampler's coordinates (data-space values of free features) and G.
        var names = [String](), series = [[Double]]()
        switch target.space {
        case .latent:
            for j in 0..<k {
                names.append("z[\(j)]")
                series.append((0..<C).flatMap { c in (0..<N).map { draws.positions[c][$0 * k + j] } })
            }
        case .data(let s):
            for i in s.free {
                names.append("x[\(i)]")
                series.append((0..<(C * N)).map { Double(x[$0 * D + i]) })
            }
        }
        names.append("G")
        series.append(energy)
        // The verdict is the stop rule's, on the sampler's coordinates (the coordinator's own
        // when it applied the rule to these draws); the quantities listed add G and, in a
        // data space, x as the model sees it.
        let rule = plan.job.stop ?? Job.StopRule.standard
        let verdict = outcome.verdict ?? draws.verdict(rule)
        var quantities = [[String: Any]]()
        let summaries = parallelMap(series.count) { [series] in QuantitySummary(ChainDraws(chains: C, draws: N, values: series[$0])) }
        for (name, s) in zip(names, summaries) {
            func num(_ v: Double?) -> Any { v.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
            quantities.append(["name": name, "rhat": num(s.rhat), "rhat_split": num(s.rhatSplit), "ess_bulk": num(s.essBulk),
                               "ess_tail": num(s.essTail), "ess_mean": num(s.essMean), "mcse_mean": num(s.mcseMean)])
        }
        let judged = { if case .latent = target.space { return "z" } else { return "the free features' unconstrained values" } }()
        let acceptance = draws.acceptance.reduce(0.0) { $0 + $1.reduce(0, +) } / Double(max(C * N, 1))
        let divergences = draws.divergent.reduce(0) { $0 + $1.filter { $0 }.count }
        func num(_ v: Double?) -> Any { v.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
        var outputsInfo = [[String: Any]](), start = 0
        for (name, w) in plan.outputColumns {
            outputsInfo.append(["model": name, "columns": [start, start + w],
                                "kind": plan.target.models[name]!.kind.classes > 0 ? "probabilities" : "values"])
            start += w
        }
        let diagnostics: [String: Any] = [
            "max_rhat": num(verdict.maxRHat), "min_ess_bulk": num(verdict.minBulk), "min_ess_tail": num(verdict.minTail),
            "thresholds": ["rhat": rule.rhat, "ess_bulk": rule.essBulk, "ess_tail": rule.essTail] as [String: Any],
            "judged": judged, "quantities": quantities]
        let json: [String: Any] = [
            "name": plan.job.name,
            "chains": C, "draws_per_chain": N, "warmup": warmup,
            "sampler": ["method": outcome.settings.method.rawValue, "target_acceptance": outcome.settings.targetAcceptance,
                        "step_sizes": outcome.checkpoints.sorted { $0.chain < $1.chain }.map(\.stepSize),
                        "metric": outcome.settings.metric.rawValue,
                        "max_tree_depth": outcome.settings.method == .nuts ? outcome.settings.maxTreeDepth : NSNull(),
                        "mean_tree_depth": draws.treeDepth.map { $0.reduce(0, +) / Double(max($0.count, 1)) },
                        "restarted": outcome.checkpoints.sorted { $0.chain < $1.chain }.compactMap { cp in
                            cp.restartedFrom.map { ["chain": cp.chain, "from": $0] }
                        },
                        "pool_metric": outcome.settings.poolMetric,
                        "mean_steps": draws.steps.map { $0.reduce(0, +) / Double(max($0.count, 1)) },
                        "tempering": outcome.settings.tempering.map { t -> Any in
                            let chains = outcome.checkpoints.sorted { $0.chain < $1.chain }
                            return ["replicas": t.replicas, "max_temperature": t.maxTemperature,
                                    "betas": chains.map { $0.ladder?.betas ?? [] },
                                    "swap_rates": chains.map { ($0.ladder?.swapRates ?? []).map { $0 ?? Double.nan }.map(num) }]
                        } ?? NSNull()],
            "gradient_evaluations": draws.gradientEvaluations,
            "acceptance_rate": acceptance, "divergences": divergences, "wall_time_seconds": outcome.seconds,
            "temperature": plan.job.temperature,
            "space": { if case .latent = target.space { return "latent" } else { return "data" } }(),
            "outputs": outputsInfo,
            "diagnostics": diagnostics,
            "converged": verdict.converged,
            "stop_reason": outcome.stopReason,
            "provenance": Provenance.current(plan: plan, workers: workers, farm: outcome.farm),
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try AtomicFile.write(data, to: file("summary.json"))
        return Summary(json: json, converged: verdict.converged, maxRHat: verdict.maxRHat, minESSBulk: verdict.minBulk, minESSTail: verdict.minTail)
    }
}

/// What produced a run: versions, inputs and the numerical environment.
public enum Provenance {
    public static let version = "0.1.0"

    public static func current(plan: JobPlan, workers: Int, farm: FarmReport) -> [String: Any] {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let farmJSON = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(farm))) ?? [:]
        return [
            "probefarm": version,
            "job_file": plan.job.file,
            "job_sha256": plan.job.sha256,
            "weights_sha256": plan.weights,
            "seed": plan.job.seed,
            "blas": ["core": BLAS.coreName, "threads": BLAS.threads],
            "coordinator_host": String(cString: host),
            "hosts": farm.hosts,
            "workers": workers,
            "worker_blas": farm.blas,
            "farm": farmJSON,
            "libzmq": ZMQContext.libraryVersion,
            "swift": swiftVersion,
        ]
    }

    static var swiftVersion: String {
        #if swift(>=6.3)
        return "6.3"
        #else
        return "6"
        #endif
    }
}
