import Foundation

/// Differential-evolution Markov chain Monte Carlo (ter Braak 2006; ter Braak & Vrugt 2008):
/// a gradient-free ensemble move across the chains of a batch, for models that have no
/// gradient (tree ensembles) or targets a random walk crosses too slowly.
///
/// The batch is split in two halves, even and odd slots. Each half moves in turn given
/// the other, held fixed: chain i draws two distinct chains a, b of the other half and
/// proposes y = xᵢ + γ(x_a − x_b) + e, γ = ε·2.38/√(2d) (ε adapted in warm-up; every tenth
/// iteration γ = 1, a jump between modes the two chains sit in), eⱼ ~ N(0, (0.1·γ·|x_a − x_b|ⱼ)²).
/// The noise is not the customary 10⁻³: with fewer chains in a half than dimensions the
/// differences span a subspace, and a tiny e leaves the ensemble's spread nearly frozen —
/// measured on a 6-d Gaussian with 8 chains, variances came out 28 % too large.
/// Given the other half the proposal is symmetric, so log α = log p(y) − log p(xᵢ): each
/// half's update leaves the product of the chains' targets invariant, and every chain's
/// draws have the target as their distribution (the halves make the batched update exact,
/// as the red–blue split of Foreman-Mackey et al. 2013 does for the stretch move).
///
/// Needs at least four chains in a batch (two in each half). A chain's draws depend on
/// its group's chains: deterministic for a fixed group, like every kernel here.
public struct DifferentialEvolution: Kernel, Codable, Equatable {
    /// For a negative control only: the difference may use the moving chain itself (not symmetric).
    var includesSelf = false

    public init() {}

    init(includesSelf: Bool) { self.includesSelf = includesSelf }

    public static let minimumBatch = 4

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        precondition(n >= Self.minimumBatch, "differential evolution needs \(Self.minimumBatch) chains in a batch")
        var infos = [StepInfo](repeating: .rejectedDivergent(), count: n)
        let jump = context.iteration % 10 == 9
        for half in 0..<2 {
            let moving = Array(stride(from: half, to: n, by: 2))
            let others = includesSelf ? Array(0..<n) : Array(stride(from: 1 - half, to: n, by: 2))
            var proposals = states.flatMap(\.position)   // rows not moving are padding
            for c in moving {
                let u = context.streams[c].uniforms(2, iteration: context.iteration, purpose: .proposal)
                let a = others[min(Int(u[0] * Double(others.count)), others.count - 1)]
                var rest = others.filter { $0 != a }
                if includesSelf { rest = others.filter { $0 != a || a == c } }
                let b = rest[min(Int(u[1] * Double(rest.count)), rest.count - 1)]
                let gamma = jump ? 1 : context.stepSizes[c] * 2.38 / (2 * Double(d)).squareRoot()
                let noise = context.streams[c].normals(d, iteration: context.iteration, purpose: .momentum)
                for i in 0..<d {
                    let diff = states[a].position[i] - states[b].position[i]
                    proposals[c * d + i] = states[c].position[i] + gamma * diff + 0.1 * gamma * abs(diff) * noise[i]
                }
            }
            let (values, gradients) = target.evaluate(proposals, count: n)
            for c in moving {
                let logAlpha = values[c].isFinite ? values[c] - states[c].logDensity : -.infinity
                let u = context.streams[c].uniform(iteration: context.iteration, purpose: .accept)
                let accepted = log(u) < logAlpha
                if accepted {
                    states[c] = ChainState(position: Array(proposals[(c * d)..<((c + 1) * d)]), logDensity: values[c],
                                           gradient: Array(gradients[(c * d)..<((c + 1) * d)]))
                }
                infos[c] = StepInfo(acceptanceProbability: min(1, exp(min(logAlpha, 0))), logAcceptance: logAlpha,
                                    accepted: accepted, divergent: !values[c].isFinite)
            }
        }
        return infos
    }
}
