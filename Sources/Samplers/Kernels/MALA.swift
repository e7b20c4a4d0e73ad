/// The Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996), exact, preconditioned
/// by the inverse metric M⁻¹ = LLᵀ (Roberts & Stramer 2002; identity unless adapted).
///
/// Proposal y = x + εM⁻¹∇log p(x) + √(2ε)·Lξ, ξ ~ N(0, I), so
/// log q(y | x) = −(y − x − εM⁻¹∇log p(x))ᵀ M (…) / 4ε (+ const). Accept with
/// log α = log p(y) − log p(x) + log q(x | y) − log q(y | x).
///
/// The probing paper's reference code evaluates the forward density at the wrong point,
/// which makes α ≥ 1 always (unadjusted Langevin); here both directions are computed.
public struct MALA: Kernel, Codable, Equatable {
    /// For a negative control only: the backward proposal density without the metric.
    var densityIgnoresMetric = false

    public init() {}

    init(densityIgnoresMetric: Bool) { self.densityIgnoresMetric = densityIgnoresMetric }

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        // The noise is drawn straight into the proposal buffer, then turned into the proposal.
        var proposals = [Double](repeating: 0, count: n * d)
        // log q(y | x) per chain, then the log Metropolis–Hastings ratio (NaN: divergent).
        var ratios = [Double](repeating: 0, count: n)
        var drift = [Double](repeating: 0, count: d)
        proposals.withUnsafeMutableBufferPointer { buffer in
            for c in 0..<n {
                let eps = context.stepSizes[c], scale = (2 * eps).squareRoot()
                let row = UnsafeMutableBufferPointer(rebasing: buffer[(c * d)..<((c + 1) * d)])
                context.streams[c].normals(into: row, iteration: context.iteration, purpose: .proposal)
                let s = states[c], metric = context.metric(c)
                if metric.kind == .identity {
                    var q = 0.0
                    for i in 0..<d {
                        let step = scale * row[i]
                        row[i] = s.position[i] + eps * s.gradient[i] + step
                        q += step * step
                    }
                    ratios[c] = -q / (4 * eps)
                } else {
                    // (√(2ε)Lξ)ᵀ M (√(2ε)Lξ) / 4ε = ‖ξ‖²/2.
                    var q = 0.0
                    for i in 0..<d { q += row[i] * row[i] }
                    ratios[c] = -0.5 * q
                    metric.correlate(row.baseAddress!, dimension: d)
                    s.gradient.withUnsafeBufferPointer { metric.velocity($0.baseAddress!, into: &drift, dimension: d) }
                    for i in 0..<d { row[i] = s.position[i] + eps * drift[i] + scale * row[i] }
                }
            }
        }
        let (values, gradients) = target.evaluate(proposals, count: n)
        var r = [Double](repeating: 0, count: d)
        for c in 0..<n {
            let eps = context.stepSizes[c], metric = context.metric(c)
            guard isFinite(values[c], gradients[(c * d)..<((c + 1) * d)]) else { ratios[c] = .nan; continue }
            let backward: Double
            if metric.kind == .identity {
                var q = 0.0
                for i in 0..<d {
                    let r = states[c].position[i] - proposals[c * d + i] - eps * gradients[c * d + i]
                    q += r * r
                }
                backward = -q / (4 * eps)
            } else {
                gradients.withUnsafeBufferPointer { metric.velocity($0.baseAddress! + c * d, into: &drift, dimension: d) }
                for i in 0..<d { r[i] = states[c].position[i] - proposals[c * d + i] - eps * drift[i] }
                backward = -(densityIgnoresMetric ? Metric.identity : metric).precisionQuadratic(r) / (4 * eps)
            }
            ratios[c] = values[c] - states[c].logDensity + backward - ratios[c]
        }
        return metropolis(&states, proposals: proposals, values: values, gradients: gradients,
                          logRatios: ratios, context: context, dimension: d)
    }
}

/// Random-walk Metropolis: y = x + ε·Lξ (LLᵀ the inverse metric, the warm-up covariance
/// estimate when adapted; I otherwise); symmetric, so log α = log p(y) − log p(x).
public struct RandomWalkMetropolis: Kernel, Codable, Equatable {
    public init() {}

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        var proposals = [Double](repeating: 0, count: n * d)
        proposals.withUnsafeMutableBufferPointer { buffer in
            for c in 0..<n {
                let row = UnsafeMutableBufferPointer(rebasing: buffer[(c * d)..<((c + 1) * d)])
                context.streams[c].normals(into: row, iteration: context.iteration, purpose: .proposal)
                context.metric(c).correlate(row.baseAddress!, dimension: d)
                let eps = context.stepSizes[c]
                for i in 0..<d { row[i] = states[c].position[i] + eps * row[i] }
            }
        }
        let (values, gradients) = target.evaluate(proposals, count: n)
        let ratios = (0..<n).map { c in values[c].isFinite ? values[c] - states[c].logDensity : .nan }
        return metropolis(&states, proposals: proposals, values: values, gradients: gradients,
                          logRatios: ratios, context: context, dimension: d)
    }
}
