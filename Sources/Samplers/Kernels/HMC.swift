/// Hamiltonian Monte Carlo with a fixed number of leapfrog steps (Duane et al. 1987;
/// Neal 2011) and an inverse metric M⁻¹ (identity, diagonal or dense; see ``Metric``).
///
/// Momentum p ~ N(0, M); H(q, p) = −log p(q) + ½ pᵀM⁻¹p. Leapfrog:
/// p ← p + ε/2 ∇log p(q); q ← q + ε M⁻¹p; p ← p + ε/2 ∇log p(q). Accept with
/// log α = H(q₀, p₀) − H(q_L, p_L). An energy error above 1000 or a non-finite value on
/// the trajectory is a divergence: the proposal is rejected.
public struct HMC: Kernel, Codable, Equatable {
    public var leapfrogSteps: Int

    public init(leapfrogSteps: Int = 10) { self.leapfrogSteps = leapfrogSteps }

    public func step(_ states: inout [ChainState], context: StepContext, target: any LogDensity) -> [StepInfo] {
        let d = target.dimension, n = states.count
        var q = [Double](repeating: 0, count: n * d), p = q, g = q, v = q
        // H at the start (first n) and at the end (next n) of each trajectory.
        var energies = [Double](repeating: 0, count: 2 * n)
        var values = states.map(\.logDensity)
        var finite = [Bool](repeating: true, count: n)
        func kinetic(_ c: Int) -> Double {
            var k = 0.0
            for i in 0..<d { k += p[c * d + i] * v[c * d + i] }
            return 0.5 * k
        }
        func updateVelocity(_ c: Int) {
            p.withUnsafeBufferPointer { pp in
                v.withUnsafeMutableBufferPointer { vv in
                    context.metric(c).velocity(pp.baseAddress! + c * d, into: vv.baseAddress! + c * d, dimension: d)
                }
            }
        }
        p.withUnsafeMutableBufferPointer { buffer in
            for c in 0..<n {
                let row = UnsafeMutableBufferPointer(rebasing: buffer[(c * d)..<((c + 1) * d)])
                context.streams[c].normals(into: row, iteration: context.iteration, purpose: .momentum)
                context.metric(c).momentum(fromNormals: row.baseAddress!, dimension: d)
            }
        }
        for c in 0..<n {
            for i in 0..<d {
                q[c * d + i] = states[c].position[i]
                g[c * d + i] = states[c].gradient[i]
            }
            updateVelocity(c)
            energies[c] = -states[c].logDensity + kinetic(c)
        }
        for _ in 0..<leapfrogSteps {
            for c in 0..<n {
                let eps = context.stepSizes[c]
                for i in 0..<d { p[c * d + i] += 0.5 * eps * g[c * d + i] }
                updateVelocity(c)
                for i in 0..<d { q[c * d + i] += eps * v[c * d + i] }
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
            updateVelocity(c)
            let h1 = -values[c] + kinetic(c)
            energies[n + c] = h1
            ratios[c] = energies[c] - h1
            if !(h1 - energies[c] < StepInfo.divergenceThreshold) { finite[c] = false }
        }
        for c in 0..<n where !finite[c] { ratios[c] = .nan }
        // `metropolis` reports the end energy of an accepted trajectory, the start's otherwise.
        let kept = Array(energies[n...]) + Array(energies[..<n])
        return metropolis(&states, proposals: q, values: values, gradients: g,
                          logRatios: ratios, context: context, dimension: d, steps: leapfrogSteps, energies: kept)
    }
}
