import Diagnostics
import NeuralModels
import Probes
import TensorCore

/// Small smooth networks with seeded weights, for probe tests.
public enum SmallModels {
    public static func random(_ shape: [Int], seed: UInt64, scale: Float) -> Tensor {
        var g = SplitMix64(seed: seed)
        return Tensor(shape: shape) { _ in g.nextNormal() * scale }
    }

    /// x(d) → tanh(W₁x + b₁) (h) → W₂ (out): smooth, so finite differences are clean.
    public static func mlp(inputs d: Int, hidden h: Int = 6, outputs k: Int, seed: UInt64) -> Sequential {
        try! Sequential(layers: [
            Linear(weight: random([h, d], seed: seed, scale: 0.8), bias: random([h], seed: seed + 1, scale: 0.3)),
            Activation(.tanh),
            Linear(weight: random([k, h], seed: seed + 2, scale: 1.2), bias: random([k], seed: seed + 3, scale: 0.3)),
        ], inputShape: [d])
    }

    /// y = wᵀx + b.
    public static func linear(_ w: [Float], bias: Float) -> Sequential {
        try! Sequential(layers: [Linear(weight: Tensor(shape: [1, w.count], scalars: w), bias: Tensor(shape: [1], scalars: [bias]))],
                        inputShape: [w.count])
    }

    public static func classifier(_ name: String, _ net: Sequential) -> ProbedModel {
        ProbedModel(name: name, members: [net], kind: .classifier(classes: net.outputShape[0], sigmoid: false))
    }

    public static func regressor(_ name: String, _ members: [Sequential]) -> ProbedModel {
        ProbedModel(name: name, members: members, kind: .regressor)
    }
}

/// Checks MCMC draws against known moments: every coordinate's mean and second central
/// moment within `sigmas` Monte-Carlo standard errors (ESS-based).
public enum MomentCheck {
    public static func failures(_ draws: [[Double]], dimension d: Int, means: [Double], variances: [Double],
                                sigmas: Double = 4) -> [String] {
        let chains = draws.count, n = draws[0].count / d
        var out = [String]()
        for i in 0..<d {
            let values = (0..<chains).flatMap { c in (0..<n).map { draws[c][$0 * d + i] } }
            let x = Diagnostics.ChainDraws(chains: chains, draws: n, values: values)
            let mean = values.reduce(0, +) / Double(values.count)
            if let mcse = x.mcse(method: .mean) {
                if abs(mean - means[i]) > sigmas * mcse { out.append("x[\(i)] mean \(mean) vs \(means[i]) (MCSE \(mcse))") }
            } else { out.append("x[\(i)]: no MCSE") }
            let sq = Diagnostics.ChainDraws(chains: chains, draws: n, values: values.map { ($0 - means[i]) * ($0 - means[i]) })
            let second = sq.values.reduce(0, +) / Double(values.count)
            if let mcse = sq.mcse(method: .mean), abs(second - variances[i]) > sigmas * mcse {
                out.append("x[\(i)] variance \(second) vs \(variances[i]) (MCSE \(mcse))")
            }
        }
        return out
    }
}
