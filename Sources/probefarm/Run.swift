import ArgumentParser
import ChainFarm
import Foundation
import NeuralModels
import Probes
import TensorCore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a probing job on this machine and write its run directory.",
        discussion: """
            Reads JOB.yaml (JOBSPEC §2), checks it against its models before any chain starts, \
            runs the chains in groups stepped in lockstep on --workers threads, and writes \
            summary.json, samples.npy, chains.npy, latent.npy (latent jobs), stats.npy/.csv and \
            outputs.npy to the output directory (--output, else the job's `output`, relative to \
            the current directory). The draws do not depend on --workers.
            """)

    @Argument(help: "A job file (YAML).")
    var job: String

    @Option(help: "Worker threads (default: the number of cores).")
    var workers: Int?

    @Option(name: .shortAndLong, help: "The run directory (default: the job's `output`).")
    var output: String?

    @Flag(help: "Replace a run directory that already holds a run.")
    var overwrite = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
    }

    func run() throws {
        BLAS.setThreads(1)
        let j = try Job.load(job)
        let plan = try JobPlan(j)
        let n = workers ?? ProcessInfo.processInfo.activeProcessorCount
        let directory = RunDirectory(path: output ?? j.output)
        do { try directory.prepare(overwrite: overwrite) } catch { throw UsageError("\(error)", sysexit: .cantCreate) }
        let quiet = self.quiet
        log("run: \(j.name): \(j.chains) chains × (\(j.sampler.warmup) warm-up + \(j.sampler.draws) draws), \(j.sampler.method.rawValue), \(plan.target.dimension)-d \(spaceName(plan)), \(n) workers")
        let outcome: LocalRun.Outcome
        do {
            outcome = try LocalRun(plan: plan, workers: n).run { p in
                guard !quiet else { return }
                let phase = p.iteration <= p.warmup ? "warm-up" : "sampling"
                let remaining = Double(p.totalIterations - p.iteration) * p.elapsed / Double(max(p.iteration, 1))
                func f(_ v: Double, _ digits: Int) -> String { v.isFinite ? String(format: "%.\(digits)f", v) : "—" }
                var line = "\riteration \(p.iteration)/\(p.totalIterations) (\(phase))  \(f(p.drawsPerSecond, 0)) draws/s"
                    + "  acceptance \(f(p.acceptance, 3))  divergent \(p.divergences)  ETA \(f(remaining, 0)) s"
                if let r = p.maxRHat { line += "  max R-hat \(f(r, 4))  min ESS \(f(p.minESS ?? 0, 0))" }
                FileHandle.standardError.write(Data((line + "   ").utf8))
            }
        } catch let e as RunError {
            throw UsageError("\(job): \(e)", sysexit: .dataError)
        }
        if !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
        let summary = try directory.write(plan: plan, outcome: outcome, workers: n)
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "—" }
        print("\(summary.converged ? "converged" : "NOT converged"): max R-hat \(f(summary.maxRHat, "%.4f")), min ESS bulk \(f(summary.minESSBulk, "%.0f")), tail \(f(summary.minESSTail, "%.0f")); \(j.chains) × \(outcome.draws.draws) draws in \(String(format: "%.1f", outcome.seconds)) s")
        print("wrote \(directory.path)/ (summary.json, samples.npy, chains.npy, stats.csv, outputs.npy\(spaceName(plan) == "latent" ? ", latent.npy" : ""))")
    }

    func spaceName(_ plan: JobPlan) -> String {
        if case .latent = plan.target.space { return "latent" }
        return "data"
    }

    func log(_ s: String) {
        if !quiet { FileHandle.standardError.write(Data((s + "\n").utf8)) }
    }
}
