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
        var proposals = [Double](repeating: 0, count: n * d)
        var forward = [Double](repeating: 0, count: n)
        for c in 0..<n {
            let eps = context.stepSizes[c]
            let noise = context.streams[c].normals(d, iteration: context.iteration, purpose: .proposal)
            let s = states[c], scale = (2 * eps).squareRoot()
            var q = 0.0
            for i in 0..<d {
                let step = scale * noise[i]
                proposals[c * d + i] = s.position[i] + eps * s.gradient[i] + step
                q += step * step
            }
            forward[c] = -q / (4 * eps)
        }
        let (values, gradients) = target.evaluate(proposals, count: n)
        var ratios = [Double](repeating: 0, count: n), finite = [Bool](repeating: true, count: n)
        for c in 0..<n {
            let eps = context.stepSizes[c]
            finite[c] = isFinite(values[c], gradients[(c * d)..<((c + 1) * d)])
            guard finite[c] else { continue }
            var q = 0.0
            for i in 0..<d {
                let r = states[c].position[i] - proposals[c * d + i] - eps * gradients[c * d + i]
                q += r * r
            }
            let backward = -q / (4 * eps)
            ratios[c] = values[c] - states[c].logDensity + backward - forward[c]
        }
        return metropolis(&states, proposals: proposals, values: values, gradients: gradients,
                          logRatios: ratios, finite: finite, context: context, dimension: d)
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
        var ratios = [Double](repeating: 0, count: n), finite = [Bool](repeating: true, count: n)
        for c in 0..<n {
            finite[c] = values[c].isFinite
            ratios[c] = values[c] - states[c].logDensity
        }
        return metropolis(&states, proposals: proposals, values: values, gradients: gradients,
                          logRatios: ratios, finite: finite, context: context, dimension: d)
    }
}
