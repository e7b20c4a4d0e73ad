import Diagnostics
import FarmZeroMQ
import Foundation
import NeuralModels
import Probes
import Reports
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
        /// Why report.html could not be written (the samples and summary are intact).
        public var reportFailure: String?
    }

    public func write(plan: JobPlan, outcome: RunOutcome, workers: Int, reference: ReferenceData? = nil) throws -> Summary {
        let draws = outcome.draws
        let C = draws.chains, N = draws.draws, k = draws.dimension
        let D = plan.target.dataDimension
        let target = plan.target
        // The files keep every thin-th draw of each chain (chain-major); the stop rule's
        // quantities are judged on every draw, G and the answer on the kept ones.
        let thin = plan.job.thin
        let kept = (0..<C).flatMap { c in stride(from: 0, to: N, by: thin).map { c * N + $0 } }
        let Nk = (N + thin - 1) / thin
        func rows<T>(_ a: [T], _ w: Int) -> [T] {
            thin == 1 ? a : kept.flatMap { a[($0 * w)..<(($0 + 1) * w)] }
        }
        var positions = [Double]()
        positions.reserveCapacity(C * N * k)
        for c in 0..<C { positions += draws.positions[c] }
        let keptPositions = rows(positions, k)
        // Evaluate the kept draws in batches of 256 on every core: x, G, outputs. The
        // batches, and so every bit, are the same whatever the cores.
        var x = [Float](), energy = [Double](), outputs = [Float]()
        x.reserveCapacity(C * Nk * D)
        let width = plan.outputColumns.reduce(0) { $0 + $1.width }
        let batch = 256
        let started = Date()
        let batches = parallelMap((C * Nk + batch - 1) / batch) { [keptPositions] i in
            let first = i * batch, n = min(batch, C * Nk - first)
            let e = target.describe(Array(keptPositions[(first * k)..<((first + n) * k)]), count: n)
            return (x: e.x.map(Float.init), energy: e.energy, outputs: Answer.outputRows(e.readouts, count: n, plan: plan))
        }
        for b in batches {
            x += b.x
            energy += b.energy
            outputs += b.outputs
        }
        try NumPyArray(shape: [C * Nk, D], float32: x).write(to: file("samples.npy"))
        if case .latent = target.space {
            try NumPyArray(shape: [C * Nk, k], float64: keptPositions).write(to: file("latent.npy"))
        }
        if width > 0 { try NumPyArray(shape: [C * Nk, width], float32: outputs).write(to: file("outputs.npy")) }
        // Files an earlier run in this directory may have left (chains.npy: an earlier version).
        for stale in ["chains.npy", "reference_outputs.npy", "reference_samples.npy", "reference_labels.npy", Report.fileName] {
            try? FileManager.default.removeItem(atPath: file(stale))
        }

        // Per-draw statistics.
        var stats = [Double](), csv = "chain,iteration,G,log_acceptance,step_size,divergent,n_steps,tree_depth,energy\n"
        let warmup = outcome.settings.warmup
        for c in 0..<C {
            for i in stride(from: 0, to: N, by: thin) {
                let row: [Double] = [Double(c), Double(warmup + i), energy[c * Nk + i / thin], draws.logAcceptance[c][i],
                                     draws.stepSize[c][i], draws.divergent[c][i] ? 1 : 0, draws.steps[c][i],
                                     draws.treeDepth[c][i], draws.hamiltonian[c][i]]
                stats += row
                csv += row.enumerated().map { j, v in j == 0 || j == 1 || j == 5 || j == 6 || j == 7 ? String(Int(v)) : "\(v)" }
                    .joined(separator: ",") + "\n"
            }
        }
        try NumPyArray(shape: [C * Nk, 9], float64: stats).write(to: file("stats.npy"))
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
            for (j, i) in s.free.enumerated() {
                names.append("x[\(i)]")
                series.append((0..<C).flatMap { c in (0..<N).map { s.isIdentity ? draws.positions[c][$0 * k + j] : s.transform(i, draws.positions[c][$0 * k + j]).x } })
            }
        }
        // The verdict is the stop rule's, on the sampler's coordinates (the coordinator's own
        // when it applied the rule to these draws); the quantities listed add G and, in a
        // data space, x as the model sees it.
        let rule = plan.job.stop ?? Job.StopRule.standard
        let verdict = outcome.verdict ?? draws.verdict(rule)
        var quantities = [[String: Any]]()
        var summaries = parallelMap(series.count) { [series] in QuantitySummary(ChainDraws(chains: C, draws: N, values: series[$0])) }
        names.append("G")
        summaries.append(QuantitySummary(ChainDraws(chains: C, draws: Nk, values: energy)))
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
        var json: [String: Any] = [
            "name": plan.job.name,
            "chains": C, "draws_per_chain": N, "warmup": warmup, "thin": thin, "draws_written_per_chain": Nk,
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
        let evaluated = Date()
        // The answer: what the models say at the draws, and at the reference data.
        var answer: [String: Any] = [
            "draws": Answer.figures(Answer.Items(count: C * Nk, x: x, outputs: outputs, energy: energy, labels: nil), plan: plan, reference: false)]
        if let reference {
            let items = Answer.evaluate(reference, plan: plan)
            var figures = Answer.figures(items, plan: plan, reference: true)
            figures["source"] = reference.description
            answer["reference"] = figures
            // What the report shows beside the draws (small: outputs, and rows of low-dimensional data).
            if width > 0 { try NumPyArray(shape: [items.count, width], float32: items.outputs).write(to: file("reference_outputs.npy")) }
            if D <= 256 { try NumPyArray(shape: [items.count, D], float32: items.x).write(to: file("reference_samples.npy")) }
            if let labels = items.labels {
                try NumPyArray(shape: [items.count], float64: labels.map(Double.init)).write(to: file("reference_labels.npy"))
            }
        }
        json["answer"] = answer
        let answered = Date()
        json["question"] = Question.describe(plan)
        json["data_shape"] = target.dataShape
        if let e = plan.encoding, e.width == D {
            json["features"] = e.columnNames
            json["classes"] = e.classes ?? NSNull()
            // How the inputs decode into records (the report shows draws in the data's units).
            json["encoding"] = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(e))) ?? NSNull()
        }
        let provenance = json["provenance"] as! [String: Any]
        try inferenceData(plan: plan, outcome: outcome, kept: kept, thinned: Nk, positions: keptPositions, x: x,
                          outputs: outputs, energy: energy, provenance: provenance).write(to: file("inference_data.nc"))
        // Where the time after sampling went (the report's own is `probefarm report`'s).
        json["output_seconds"] = ["kept_draws_evaluated": evaluated.timeIntervalSince(started), "answer": answered.timeIntervalSince(evaluated),
                                  "inference_data": Date().timeIntervalSince(answered)]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try AtomicFile.write(data, to: file("summary.json"))
        var reportFailure: String? = nil
        do { try Report.write(runDirectory: path) } catch { reportFailure = "\(error)" }
        return Summary(json: json, converged: verdict.converged, maxRHat: verdict.maxRHat, minESSBulk: verdict.minBulk, minESSTail: verdict.minTail,
                       reportFailure: reportFailure)
    }
}

extension RunDirectory {
    /// ArviZ InferenceData of the written draws (JOBSPEC §4): the chains' own variable (z,
    /// or x in a data space), G and the model outputs in `posterior`; ArviZ's per-draw
    /// statistics in `sample_stats`; the provenance as attributes.
    func inferenceData(plan: JobPlan, outcome: RunOutcome, kept: [Int], thinned N: Int, positions: [Double], x: [Float],
                       outputs: [Float], energy: [Double], provenance: [String: Any]) -> InferenceData {
        let draws = outcome.draws, C = draws.chains, all = draws.draws, k = draws.dimension
        let target = plan.target
        var posterior = [InferenceData.Variable]()
        var lp = energy.map { -$0 / plan.job.temperature }
        switch target.space {
        case let .latent(_, _, prior):
            posterior.append(.init("z", dims: [("z_dim_0", k)], .float64(positions)))
            if prior { for i in lp.indices { lp[i] -= 0.5 * (0..<k).reduce(0.0) { $0 + positions[i * k + $1] * positions[i * k + $1] } } }
        case .data:
            posterior.append(.init("x", dims: target.dataShape.enumerated().map { ("x_dim_\($0.offset)", $0.element) }, .float32(x)))
        }
        posterior.append(.init("G", .float64(energy), attributes: ["long_name": "the probe's energy G at the draw"]))
        let width = plan.outputColumns.reduce(0) { $0 + $1.width }
        var start = 0
        for (name, w) in plan.outputColumns {
            let values = (0..<(C * N)).flatMap { b in outputs[(b * width + start)..<(b * width + start + w)] }
            let classifier = target.models[name]!.kind.classes > 0
            posterior.append(.init(name, dims: classifier ? [("\(name)_class", w)] : [], .float32(values),
                                   attributes: ["long_name": classifier ? "\(name)'s class probabilities" : "\(name)'s output"]))
            start += w
        }
        func per(_ series: [[Double]]) -> [Double] { kept.map { series[$0 / all][$0 % all] } }
        var stats: [InferenceData.Variable] = [
            .init("lp", .float64(lp)),
            .init("acceptance_rate", .float64(per(draws.acceptance))),
            .init("step_size", .float64(per(draws.stepSize))),
            .init("diverging", .bool(kept.map { draws.divergent[$0 / all][$0 % all] })),
        ]
        switch outcome.settings.method {
        case .nuts:
            stats.append(.init("n_steps", .float64(per(draws.steps))))
            stats.append(.init("tree_depth", .int64(per(draws.treeDepth).map { Int64($0) })))
            stats.append(.init("energy", .float64(per(draws.hamiltonian))))
        case .hmc:
            stats.append(.init("n_steps", .float64(per(draws.steps))))
            stats.append(.init("energy", .float64(per(draws.hamiltonian))))
        default:
            break
        }
        var attributes = [String: String]()
        for (key, value) in provenance {
            if let s = value as? String { attributes[key] = s }
            else if let n = value as? NSNumber { attributes[key] = n.stringValue }
            else if let d = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
                attributes[key] = String(decoding: d, as: UTF8.self)
            }
        }
        attributes["job_name"] = plan.job.name
        attributes["thin"] = String(plan.job.thin)
        // The stop rule the run was judged by, for `probefarm diagnose inference_data.nc`.
        let rule = plan.job.stop ?? Job.StopRule.standard
        attributes["stop_rhat"] = "\(rule.rhat)"
        attributes["stop_ess_bulk"] = "\(rule.essBulk)"
        attributes["stop_ess_tail"] = "\(rule.essTail)"
        return InferenceData(chains: C, draws: N, groups: [("posterior", posterior), ("sample_stats", stats)], attributes: attributes)
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
