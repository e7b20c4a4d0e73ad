import Diagnostics
import Foundation
import Samplers

/// A Gaussian target N(μ, Σ) with its analytic moments: Σ = diag(σ²), or Σ = DRD with
/// marginal standard deviations D = diag(σ) and a correlation matrix R given by its inverse.
public struct GaussianTarget: LogDensity {
    public let means: [Double]
    /// Marginal standard deviations.
    public let sds: [Double]
    /// The precision Σ⁻¹ (row-major), or nil for a diagonal Σ.
    public let precision: [Double]?
    public var dimension: Int { means.count }
    public var batchInvariant: Bool { true }

    public init(means: [Double], sds: [Double], precision: [Double]? = nil) {
        self.means = means
        self.sds = sds
        self.precision = precision
    }

    /// Marginal sds spread log-uniformly over `condition` with a rank-one correlation ρ
    /// between every pair: R = (1 − ρ)I + ρ11ᵀ, R⁻¹ = (I − ρ/(1 + (d − 1)ρ)·11ᵀ)/(1 − ρ).
    public static func correlated(_ d: Int, condition: Double, rho: Double) -> GaussianTarget {
        let base = illConditioned(d, condition: condition)
        let c = rho / (1 + Double(d - 1) * rho)
        var p = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0..<d {
                let r = ((i == j ? 1 : 0) - c) / (1 - rho)
                p[i * d + j] = r / (base.sds[i] * base.sds[j])
            }
        }
        return GaussianTarget(means: base.means, sds: base.sds, precision: p)
    }

    public static func isotropic(_ d: Int) -> GaussianTarget {
        GaussianTarget(means: Array(repeating: 0, count: d), sds: Array(repeating: 1, count: d))
    }

    /// Standard deviations spread log-uniformly over a factor `condition` (variance ratio condition²).
    public static func illConditioned(_ d: Int, condition: Double) -> GaussianTarget {
        GaussianTarget(means: (0..<d).map { Double($0) * 0.1 },
                       sds: (0..<d).map { pow(condition, Double($0) / Double(max(d - 1, 1)) - 1) })
    }

    public func evaluate(_ positions: [Double], count: Int) -> (values: [Double], gradients: [Double]) {
        let d = dimension
        var values = [Double](repeating: 0, count: count)
        var grads = [Double](repeating: 0, count: count * d)
        for c in 0..<count {
            var v = 0.0
            if let precision {
                for i in 0..<d {
                    var g = 0.0
                    for j in 0..<d { g -= precision[i * d + j] * (positions[c * d + j] - means[j]) }
                    grads[c * d + i] = g
                    v += 0.5 * g * (positions[c * d + i] - means[i])
                }
            } else {
                for i in 0..<d {
                    let z = (positions[c * d + i] - means[i]) / sds[i]
                    v -= 0.5 * z * z
                    grads[c * d + i] = -z / sds[i]
                }
            }
            values[c] = v
        }
        return (values, grads)
    }
}

/// The shared checker every kernel must pass: run chains on an analytic Gaussian and
/// require, for every coordinate, the mean and the second central moment within 4 Monte
/// Carlo standard errors (ESS-based, from ``Diagnostics``) of the truth, and the mean
/// acceptance near the kernel's target.
public struct KernelChecker {
    public var chains: Int
    public var seed: UInt64
    public var sigmas: Double = 4
    public var acceptanceTolerance: Double = 0.08

    public init(chains: Int = 8, seed: UInt64 = 11) {
        self.chains = chains
        self.seed = seed
    }

    public struct Report: CustomStringConvertible {
        public var failures: [String]
        public var meanAcceptance: Double
        public var minESS: Double
        public var description: String {
            "acceptance \(String(format: "%.3f", meanAcceptance)), min ESS \(Int(minESS)), \(failures.count) failures: \(failures.prefix(5))"
        }
    }

    /// Runs `settings` (or `kernel` with a fixed step when given) on `target` and checks it.
    public func check(_ settings: SamplerSettings, target: GaussianTarget, kernel: (any Kernel)? = nil,
                      fixedStep: Double? = nil, fault: ChainRunner.Fault? = nil) -> Report {
        let d = target.dimension
        var runner = ChainRunner(settings: settings, seed: seed, target: target)
        runner.fault = fault
        let starts = (0..<chains).map { c in
            RandomStream(seed: seed, chain: c).normals(d, iteration: 0, purpose: .initialization).enumerated()
                .map { target.means[$0.offset] + target.sds[$0.offset] * $0.element }
        }
        var checkpoints = runner.start(chains: Array(0..<chains), positions: starts).map { $0! }
        var draws = [[Double]](repeating: [], count: chains)
        var acceptance = 0.0, counted = 0.0
        if let kernel, let fixedStep {
            // A kernel with a fixed step size and no adaptation (for kernels the driver doesn't build).
            var states = checkpoints.map(\.state)
            let streams = (0..<chains).map { RandomStream(seed: seed, chain: $0) }
            for it in 0..<(settings.warmup + settings.draws) {
                let ctx = StepContext(stepSizes: Array(repeating: fixedStep, count: chains),
                                      streams: streams, iteration: UInt64(it))
                let infos = kernel.step(&states, context: ctx, target: target)
                if it >= settings.warmup {
                    for c in 0..<chains { draws[c] += states[c].position }
                    acceptance += infos.reduce(0) { $0 + $1.acceptanceProbability }
                    counted += Double(chains)
                }
            }
        } else {
            runner.advance(&checkpoints, iterations: settings.warmup + settings.draws) { r in
                guard !r.isWarmup else { return }
                draws[r.chain] += r.position
                acceptance += r.info.acceptanceProbability
                counted += 1
            }
        }
        let n = settings.draws
        var failures = [String]()
        var minESS = Double.infinity
        for i in 0..<d {
            let x = ChainDraws(chains: chains, draws: n, values: (0..<chains).flatMap { c in (0..<n).map { draws[c][$0 * d + i] } })
            let m = target.means[i], s2 = target.sds[i] * target.sds[i]
            let mean = x.values.reduce(0, +) / Double(x.values.count)
            guard let mcse = x.mcse(method: .mean), let ess = x.ess(method: .mean) else {
                failures.append("x[\(i)]: no MCSE"); continue
            }
            minESS = min(minESS, ess)
            if abs(mean - m) > sigmas * mcse {
                failures.append("x[\(i)] mean \(mean) vs \(m) (MCSE \(mcse))")
            }
            let sq = ChainDraws(chains: chains, draws: n, values: x.values.map { ($0 - m) * ($0 - m) })
            let second = sq.values.reduce(0, +) / Double(n * chains)
            if let mcse2 = sq.mcse(method: .mean), abs(second - s2) > sigmas * mcse2 {
                failures.append("x[\(i)] variance \(second) vs \(s2) (MCSE \(mcse2))")
            }
        }
        let meanAcceptance = acceptance / max(counted, 1)
        // Hamiltonian kernels' acceptance statistic settles above the target after warm-up
        // (the frozen step is dual averaging's averaged, smaller one; Stan's does the same).
        let upper = settings.method == .nuts || settings.method == .hmc ? 0.97 : settings.targetAcceptance + acceptanceTolerance
        if kernel == nil, !(meanAcceptance >= settings.targetAcceptance - acceptanceTolerance && meanAcceptance <= upper) {
            failures.append("acceptance \(meanAcceptance) vs target \(settings.targetAcceptance)")
        }
        return Report(failures: failures, meanAcceptance: meanAcceptance, minESS: minESS)
    }
}

/// MALA as the probing paper's reference code runs it: the forward proposal density is
/// mis-coded so the acceptance ratio is never below 1 — every proposal is accepted, which
/// is the unadjusted Langevin algorithm and samples a biased distribution.
public struct MisCodedMALA: Kernel {
    public init() {}

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        var proposals = [Double](repeating: 0, count: n * d)
        for c in 0..<n {
            let eps = context.stepSizes[c]
            let noise = context.streams[c].normals(d, iteration: context.iteration, purpose: .proposal)
            for i in 0..<d {
                proposals[c * d + i] = states[c].position[i] + eps * states[c].gradient[i] + (2 * eps).squareRoot() * noise[i]
            }
        }
        let (values, gradients) = target.evaluate(proposals, count: n)
        for c in 0..<n {
            states[c] = ChainState(position: Array(proposals[(c * d)..<((c + 1) * d)]), logDensity: values[c],
                                   gradient: Array(gradients[(c * d)..<((c + 1) * d)]))
        }
        return Array(repeating: StepInfo(acceptanceProbability: 1, logAcceptance: 0, accepted: true, divergent: false), count: n)
    }
}
