/// Hamiltonian Monte Carlo with a fixed number of leapfrog steps (Duane et al. 1987;
/// Neal 2011) and a diagonal inverse metric m.
///
/// Momentum p ~ N(0, diag(1/m)); H(q, p) = −log p(q) + ½ Σ mᵢpᵢ². Leapfrog:
/// p ← p + ε/2 ∇log p(q); q ← q + ε m ⊙ p; p ← p + ε/2 ∇log p(q). Accept with
/// log α = H(q₀, p₀) − H(q_L, p_L). An energy error above 1000 or a non-finite value on
/// the trajectory is a divergence: the proposal is rejected.
public struct HMC: Kernel, Codable, Equatable {
    public var leapfrogSteps: Int

    public init(leapfrogSteps: Int = 10) { self.leapfrogSteps = leapfrogSteps }

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        var q = [Double](repeating: 0, count: n * d), p = q, g = q
        var h0 = [Double](repeating: 0, count: n)
        var values = states.map(\.logDensity)
        var finite = [Bool](repeating: true, count: n)
        for c in 0..<n {
            let noise = context.streams[c].normals(d, iteration: context.iteration, purpose: .momentum)
            var kinetic = 0.0
            for i in 0..<d {
                let m = context.inverseMetric?[c][i] ?? 1
                let pi = noise[i] / m.squareRoot()
                p[c * d + i] = pi
                q[c * d + i] = states[c].position[i]
                g[c * d + i] = states[c].gradient[i]
                kinetic += 0.5 * m * pi * pi
            }
            h0[c] = -states[c].logDensity + kinetic
        }
        for _ in 0..<leapfrogSteps {
            for c in 0..<n {
                let eps = context.stepSizes[c]
                for i in 0..<d {
                    let m = context.inverseMetric?[c][i] ?? 1
                    p[c * d + i] += 0.5 * eps * g[c * d + i]
                    q[c * d + i] += eps * m * p[c * d + i]
                }
            }
            let r = target.evaluate(q, count: n)
            values = r.values
            g = r.gradients
            for c in 0..<n {
                if !isFinite(values[c], g[(c * d)..<((c + 1) * d)]) {
                    finite[c] = false
                    // Keep the arithmetic finite for the rest of the batch's trajectory.
                    for i in 0..<d { g[c * d + i] = 0 }
                    values[c] = -.infinity
                }
                let eps = context.stepSizes[c]
                for i in 0..<d { p[c * d + i] += 0.5 * eps * g[c * d + i] }
            }
        }
        var ratios = [Double](repeating: 0, count: n)
        for c in 0..<n where finite[c] {
            var kinetic = 0.0
            for i in 0..<d {
                let m = context.inverseMetric?[c][i] ?? 1
                kinetic += 0.5 * m * p[c * d + i] * p[c * d + i]
            }
            let h1 = -values[c] + kinetic
            ratios[c] = h0[c] - h1
            if !(h1 - h0[c] < StepInfo.divergenceThreshold) { finite[c] = false }
        }
        for c in 0..<n where !finite[c] { ratios[c] = .nan }
        return metropolis(&states, proposals: q, values: values, gradients: g,
                          logRatios: ratios, context: context, dimension: d)
    }
}
