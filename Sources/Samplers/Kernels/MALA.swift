/// The Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996), exact.
///
/// Proposal y = x + ε∇log p(x) + √(2ε)·ξ, ξ ~ N(0, I), so
/// log q(y | x) = −‖y − x − ε∇log p(x)‖² / 4ε (+ const). Accept with
/// log α = log p(y) − log p(x) + log q(x | y) − log q(y | x).
///
/// The probing paper's reference code evaluates the forward density at the wrong point,
/// which makes α ≥ 1 always (unadjusted Langevin); here both directions are computed.
public struct MALA: Kernel, Codable, Equatable {
    public init() {}

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        // The noise is drawn straight into the proposal buffer, then turned into the proposal.
        var proposals = [Double](repeating: 0, count: n * d)
        // log q(y | x) per chain, then the log Metropolis–Hastings ratio (NaN: divergent).
        var ratios = [Double](repeating: 0, count: n)
        proposals.withUnsafeMutableBufferPointer { buffer in
            for c in 0..<n {
                let eps = context.stepSizes[c], scale = (2 * eps).squareRoot()
                let row = UnsafeMutableBufferPointer(rebasing: buffer[(c * d)..<((c + 1) * d)])
                context.streams[c].normals(into: row, iteration: context.iteration, purpose: .proposal)
                let s = states[c]
                var q = 0.0
                for i in 0..<d {
                    let step = scale * row[i]
                    row[i] = s.position[i] + eps * s.gradient[i] + step
                    q += step * step
                }
                ratios[c] = -q / (4 * eps)
            }
        }
        let (values, gradients) = target.evaluate(proposals, count: n)
        for c in 0..<n {
            let eps = context.stepSizes[c]
            guard isFinite(values[c], gradients[(c * d)..<((c + 1) * d)]) else { ratios[c] = .nan; continue }
            var q = 0.0
            for i in 0..<d {
                let r = states[c].position[i] - proposals[c * d + i] - eps * gradients[c * d + i]
                q += r * r
            }
            let backward = -q / (4 * eps)
            ratios[c] = values[c] - states[c].logDensity + backward - ratios[c]
        }
        return metropolis(&states, proposals: proposals, values: values, gradients: gradients,
                          logRatios: ratios, context: context, dimension: d)
    }
}

/// Random-walk Metropolis: y = x + ε·√m ⊙ ξ (m the diagonal inverse metric, 1 if none);
/// symmetric, so log α = log p(y) − log p(x).
public struct RandomWalkMetropolis: Kernel, Codable, Equatable {
    public init() {}

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        var proposals = [Double](repeating: 0, count: n * d)
        for c in 0..<n {
            let noise = context.streams[c].normals(d, iteration: context.iteration, purpose: .proposal)
            let eps = context.stepSizes[c]
            for i in 0..<d {
                let m = context.inverseMetric?[c][i] ?? 1
                proposals[c * d + i] = states[c].position[i] + eps * m.squareRoot() * noise[i]
            }
        }
        let (values, gradients) = target.evaluate(proposals, count: n)
        let ratios = (0..<n).map { c in values[c].isFinite ? values[c] - states[c].logDensity : .nan }
        return metropolis(&states, proposals: proposals, values: values, gradients: gradients,
                          logRatios: ratios, context: context, dimension: d)
    }
}
