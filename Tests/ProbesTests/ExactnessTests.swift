import Foundation
import NeuralModels
import ProbeFarmTesting
import Probes
import Samplers
import TensorCore
import Testing

/// The probes' targets sampled by exact MCMC against answers known in closed form or by
/// quadrature: every mean and variance within 4 Monte-Carlo standard errors (ESS-based).
@Suite(.serialized)
struct ExactnessTests {
    /// Runs `chains` chains of `settings` and returns each chain's post-warm-up draws.
    static func sample(_ target: any LogDensity, settings: SamplerSettings, chains: Int = 4, seed: UInt64 = 17) -> [[Double]] {
        let runner = ChainRunner(settings: settings, seed: seed, target: target)
        let d = target.dimension
        let starts = (0..<chains).map { RandomStream(seed: seed, chain: $0).normals(d, iteration: 0, purpose: .initialization) }
        var cps = runner.start(chains: Array(0..<chains), positions: starts).map { $0! }
        var draws = [[Double]](repeating: [], count: chains)
        runner.advance(&cps, iterations: runner.totalIterations) { r in if !r.isWarmup { draws[r.chain] += r.position } }
        return draws
    }

    /// Solves A x = b for a small symmetric positive-definite A (Gaussian elimination).
    static func solve(_ a: [[Double]], _ b: [Double]) -> [Double] {
        var m = a, v = b
        let n = b.count
        for i in 0..<n {
            for j in (i + 1)..<n {
                let f = m[j][i] / m[i][i]
                for k in i..<n { m[j][k] -= f * m[i][k] }
                v[j] -= f * v[i]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            x[i] = (v[i] - ((i + 1)..<n).reduce(0.0) { $0 + m[i][$1] * x[$1] }) / m[i][i]
        }
        return x
    }

    static func inverseDiagonal(_ a: [[Double]]) -> [Double] {
        (0..<a.count).map { i in solve(a, (0..<a.count).map { $0 == i ? 1 : 0 })[i] }
    }

    @Test("fixed-value on a linear regressor with localize is the Gaussian N((wwᵀ+λI)⁻¹(w(t−b)+λx₀), (τ/2)(wwᵀ+λI)⁻¹)")
    func linearRegressionWithLocalize() {
        let w: [Double] = [0.8, -0.5, 0.3], b = 0.2, t = 1.0, lambda = 0.5, tau = 0.8
        let x0: [Double] = [0.1, 0.4, -0.2]
        let model = SmallModels.regressor("lin", [SmallModels.linear(w.map(Float.init), bias: Float(b))])
        let target = ProbeTarget(
            space: .data(DataSpace(dimension: 3, lower: [nil, nil, nil], upper: [nil, nil, nil], fixed: [:])),
            models: ["lin": model], decoder: nil,
            terms: [FixedValue(model: "lin", value: t), Weighted(term: Localize(anchor: x0, norm: 2), weight: lambda)],
            temperature: tau, dataDimension: 3, dataShape: [3])
        let a = (0..<3).map { i in (0..<3).map { j in w[i] * w[j] + (i == j ? lambda : 0) } }
        let mean = Self.solve(a, (0..<3).map { w[$0] * (t - b) + lambda * x0[$0] })
        let variance = Self.inverseDiagonal(a).map { $0 * tau / 2 }
        for method in [SamplerSettings.Method.nuts, .mala, .hmc] {
            let draws = Self.sample(target, settings: SamplerSettings(method: method, warmup: 1000, draws: 4000, leapfrogSteps: 6))
            let f = MomentCheck.failures(draws, dimension: 3, means: mean, variances: variance)
            #expect(f.isEmpty, "\(method): \(f)")
        }
    }

    @Test("the paper's Appendix A case: fixed-value averaged over an ensemble of linear models")
    func ensembleOfLinearModels() {
        // G(x) = (1/K) Σ_j (θ_jᵀx + b_j − t)²  ⇒  x ~ N(S⁻¹ m, (τ/2) S⁻¹),
        // S = (1/K) Σ θ_jθ_jᵀ, m = (1/K) Σ θ_j (t − b_j).
        var g = SplitMix64(seed: 8)
        let K = 6, d = 2, t = 0.5, tau = 1.0
        let thetas = (0..<K).map { _ in (0..<d).map { _ in Double(g.nextNormal()) * 0.7 + 0.4 } }
        let biases = (0..<K).map { _ in Double(g.nextNormal()) * 0.2 }
        let members = (0..<K).map { SmallModels.linear(thetas[$0].map(Float.init), bias: Float(biases[$0])) }
        let target = ProbeTarget(
            space: .data(DataSpace(dimension: d, lower: [nil, nil], upper: [nil, nil], fixed: [:])),
            models: ["q": SmallModels.regressor("q", members)], decoder: nil,
            terms: [FixedValue(model: "q", value: t)], temperature: tau, dataDimension: d, dataShape: [d])
        let s = (0..<d).map { i in (0..<d).map { j in (0..<K).reduce(0.0) { $0 + thetas[$1][i] * thetas[$1][j] } / Double(K) } }
        let m = (0..<d).map { i in (0..<K).reduce(0.0) { $0 + thetas[$1][i] * (t - biases[$1]) } / Double(K) }
        let mean = Self.solve(s, m)
        let variance = Self.inverseDiagonal(s).map { $0 * tau / 2 }
        let draws = Self.sample(target, settings: SamplerSettings(method: .hmc, warmup: 1000, draws: 4000, leapfrogSteps: 8))
        let f = MomentCheck.failures(draws, dimension: d, means: mean, variances: variance)
        #expect(f.isEmpty, "\(f)")
    }

    @Test("fixed-value inside a box matches quadrature of the truncated density")
    func boxMatchesQuadrature() {
        // y = 1.5x − 0.2, t = 1.2, τ = 0.5, x ∈ [0, 1]: the untruncated mode (0.93) is near the upper bound.
        let model = SmallModels.regressor("lin", [SmallModels.linear([1.5], bias: -0.2)])
        let target = ProbeTarget(
            space: .data(DataSpace(dimension: 1, lower: [0], upper: [1], fixed: [:])),
            models: ["lin": model], decoder: nil, terms: [FixedValue(model: "lin", value: 1.2)],
            temperature: 0.5, dataDimension: 1, dataShape: [1])
        let n = 200_000
        var z = 0.0, m1 = 0.0, m2 = 0.0
        for i in 0..<n {
            let x = (Double(i) + 0.5) / Double(n)
            let e = 1.5 * x - 0.2 - 1.2
            let p = exp(-e * e / 0.5)
            z += p; m1 += p * x; m2 += p * x * x
        }
        let mean = m1 / z, variance = m2 / z - mean * mean
        let draws = Self.sample(target, settings: SamplerSettings(method: .mala, warmup: 1000, draws: 5000))
        // The chains move in u; compare the moments of x = σ(u).
        let xs = draws.map { $0.map { 1 / (1 + exp(-$0)) } }
        let f = MomentCheck.failures(xs, dimension: 1, means: [mean], variances: [variance])
        #expect(f.isEmpty, "\(f)")
        #expect(xs.allSatisfy { $0.allSatisfy { $0 > 0 && $0 < 1 } })
    }

    @Test("a BAYES-TREX ambiguous level set in a 2-d latent space matches quadrature")
    func bayesTrexLevelSet() throws {
        // Identity decoder, 3-class linear classifier, ambiguous between classes 0 and 1.
        let decoder = try Sequential(layers: [Linear(weight: Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]), bias: Tensor(shape: [2]))],
                                     inputShape: [2])
        let w: [Float] = [2, 0.5, -1.5, 1, 0, -2]
        let clf = try Sequential(layers: [Linear(weight: Tensor(shape: [3, 2], scalars: w), bias: Tensor(shape: [3], scalars: [0, 0, 0.5]))],
                                 inputShape: [2])
        let term = LevelSet(model: "c", target: .ambiguous(0, 1), sigma: 0.2)
        let target = ProbeTarget(space: .latent(decoderName: "dec", dimension: 2, prior: true),
                                 models: ["c": SmallModels.classifier("c", clf)], decoder: decoder, terms: [term],
                                 temperature: 1, dataDimension: 2, dataShape: [2])
        // Quadrature of N(z; 0, I)·exp(−G(z)) on [−6, 6]², computed with the same target.
        let steps = 600, lo = -6.0, h = 12.0 / Double(steps)
        var grid = [Double]()
        for i in 0..<steps { for j in 0..<steps { grid += [lo + (Double(i) + 0.5) * h, lo + (Double(j) + 0.5) * h] } }
        let e = target.describe(grid, count: steps * steps)
        let maxLog = e.logDensity.max()!
        var z = 0.0, m = [0.0, 0.0], s = [0.0, 0.0]
        for k in 0..<(steps * steps) {
            let p = exp(e.logDensity[k] - maxLog)
            z += p
            for d in 0..<2 { m[d] += p * grid[2 * k + d]; s[d] += p * grid[2 * k + d] * grid[2 * k + d] }
        }
        let mean = m.map { $0 / z }
        let variance = (0..<2).map { s[$0] / z - mean[$0] * mean[$0] }
        for settings in [SamplerSettings(method: .nuts, warmup: 1000, draws: 2000),
                         SamplerSettings(method: .mala, warmup: 1500, draws: 6000)] {
            let draws = Self.sample(target, settings: settings)
            let f = MomentCheck.failures(draws, dimension: 2, means: mean, variances: variance)
            #expect(f.isEmpty, "\(settings.method): \(f)")
        }
    }
}
