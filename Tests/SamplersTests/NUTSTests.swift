import Diagnostics
import Foundation
import ProbeFarmTesting
import Samplers
import Testing

/// NUTS in lockstep batches, the metrics and Stan's windowed warm-up, each against analytic
/// Gaussians with the shared checker (moments within 4 MCSE) and a negative control.
@Suite(.serialized)
struct NUTSTests {
    @Test("NUTS with a dense metric samples a correlated, badly scaled Gaussian; the diagonal metric mixes worse")
    func denseMetric() {
        let target = GaussianTarget.correlated(10, condition: 100, rho: 0.9)
        let dense = KernelChecker().check(SamplerSettings(method: .nuts, warmup: 1000, draws: 1000, metric: .dense), target: target)
        #expect(dense.failures.isEmpty, "\(dense)")
        #expect(dense.minESS > 1500, "\(dense)")
        let diagonal = KernelChecker().check(SamplerSettings(method: .nuts, warmup: 1000, draws: 1000), target: target)
        #expect(diagonal.failures.isEmpty, "\(diagonal)")
        #expect(dense.minESS > 2 * diagonal.minESS, "dense \(dense), diagonal \(diagonal)")
    }

    @Test("preconditioned MALA and RWM with a dense metric sample a correlated Gaussian", arguments: [
        SamplerSettings(method: .mala, warmup: 1500, draws: 4000, metric: .dense),
        SamplerSettings(method: .rwm, warmup: 2000, draws: 20000, metric: .dense),
    ])
    func denseLockstep(_ settings: SamplerSettings) {
        let report = KernelChecker().check(settings, target: .correlated(5, condition: 30, rho: 0.8))
        #expect(report.failures.isEmpty, "\(settings.method): \(report)")
        #expect(report.minESS > 200, "\(settings.method): \(report)")
    }

    @Test("negative control: NUTS that ignores the states' weights fails the checker")
    func unweightedNUTSIsBiased() {
        let settings = SamplerSettings(method: .nuts, warmup: 500, draws: 1000)
        let report = KernelChecker().check(settings, target: .illConditioned(10, condition: 10), fault: .ignoreWeights)
        #expect(report.failures.contains { $0.contains("mean") || $0.contains("variance") }, "the biased sampler passed: \(report)")
    }

    @Test("negative control: preconditioned MALA whose proposal density ignores the metric fails the checker")
    func malaWrongMetricIsBiased() {
        let settings = SamplerSettings(method: .mala, warmup: 1000, draws: 3000)
        let target = GaussianTarget.illConditioned(10, condition: 10)
        let exact = KernelChecker().check(settings, target: target)
        #expect(exact.failures.isEmpty, "\(exact)")
        let broken = KernelChecker().check(settings, target: target, fault: .malaDensityIgnoresMetric)
        #expect(broken.failures.count >= 3, "the biased sampler passed: \(broken)")
    }

    @Test("the checks across subtrees shorten trajectories that double back (Stan 2.21's fix)")
    func acrossSubtreeChecks() {
        // On a 2-d standard normal with a large step, the whole-trajectory check alone misses
        // U-turns where two halves join: trajectories run on and cost more steps. (Both
        // versions are exact; the checks change cost, not the target.)
        let target = GaussianTarget.isotropic(2)
        var steps = [ChainRunner.Fault?: Int]()
        for fault in [nil, ChainRunner.Fault.noChecksAcrossSubtrees] {
            var runner = ChainRunner(settings: SamplerSettings(method: .nuts, warmup: 0, draws: 4000, initialStepSize: 1.8,
                                                               metric: .identity),
                                     seed: 3, target: target)
            runner.fault = fault
            var cps = runner.start(chains: [0, 1, 2, 3], positions: (0..<4).map { c in (0..<target.dimension).map { Double(c + $0 % 3) * 0.3 } }).map { $0! }
            var total = 0
            runner.advance(&cps, iterations: 4000) { total += $0.info.steps }
            steps[fault] = total
        }
        // Measured: 28,584 steps with the checks, 32,022 without (fixed seed).
        #expect(Double(steps[nil]!) < 0.95 * Double(steps[.noChecksAcrossSubtrees]!), "\(steps)")
    }

    @Test("a call costs the largest of the chains' own step totals, not the longest trajectory at every iteration")
    func batchCost() {
        // Between meetings (off here: see `pooledMetric`) no chain waits for another.
        var settings = SamplerSettings(method: .nuts, warmup: 100, draws: 200)
        settings.poolMetric = false
        settings.restartStranded = false
        let runner = ChainRunner(settings: settings, seed: 8, target: GaussianTarget.illConditioned(6, condition: 30))
        let starts = (0..<4).map { c in (0..<6).map { Double($0 - c) * 0.2 } }
        var cps = runner.start(chains: [0, 1, 2, 3], positions: starts).map { $0! }
        var perChain = [Int](repeating: 0, count: 4)
        var perIteration = [Int: Int]()
        let evaluations = runner.advance(&cps, iterations: 300) { r in
            perChain[r.chain] += r.info.steps
            perIteration[r.iteration] = max(perIteration[r.iteration] ?? 0, r.info.steps)
        }
        let lockstep = perIteration.values.reduce(0, +)
        #expect(evaluations == perChain.max()!)
        #expect(evaluations < lockstep, "evaluations \(evaluations), lockstep would take \(lockstep)")
        #expect(cps.allSatisfy { $0.iteration == 300 })
    }

    @Test("NUTS draws are the same bits through JSON checkpoints cut anywhere, across windows and the end of warm-up",
          arguments: [Metric.Kind.diagonal, .dense])
    func resume(_ metric: Metric.Kind) throws {
        let settings = SamplerSettings(method: .nuts, warmup: 150, draws: 100, metric: metric, annealFrom: 0.1)
        let runner = ChainRunner(settings: settings, seed: 99, target: GaussianTarget.correlated(5, condition: 5, rho: 0.5))
        let start = (0..<3).map { c in (0..<5).map { Double($0 + c) * 0.1 } }
        var straight = runner.start(chains: [4, 5, 6], positions: start).map { $0! }
        var a = [Int: [[Double]]]()
        runner.advance(&straight, iterations: 250) { a[$0.chain, default: []].append($0.position + [$0.stepSize, $0.logDensity, $0.info.energy]) }

        var parts = runner.start(chains: [4, 5, 6], positions: start).map { $0! }
        var b = [Int: [[Double]]]()
        for cut in [17, 40, 101, 149, 151] {  // inside annealing, windows, the last window and the end of warm-up
            runner.advance(&parts, iterations: cut - parts[0].iteration) { b[$0.chain, default: []].append($0.position + [$0.stepSize, $0.logDensity, $0.info.energy]) }
            let data = try JSONEncoder().encode(parts)
            parts = try JSONDecoder().decode([ChainCheckpoint].self, from: data)
        }
        runner.advance(&parts, iterations: 250) { b[$0.chain, default: []].append($0.position + [$0.stepSize, $0.logDensity, $0.info.energy]) }
        #expect(a.values.map(\.count) == [250, 250, 250])
        #expect(a == b)
        #expect(parts == straight)
        #expect(parts.allSatisfy { $0.metric.kind == metric })
    }

    @Test("a group's chains share one metric per window, pooled from all their draws", arguments: [SamplerSettings.Method.nuts, .mala])
    func pooledMetric(_ method: SamplerSettings.Method) throws {
        let target = GaussianTarget.illConditioned(5, condition: 30)
        let settings = SamplerSettings(method: method, warmup: 300, draws: 10)
        let runner = ChainRunner(settings: settings, seed: 4, target: target)
        var cps = runner.start(chains: [0, 1, 2, 3], positions: (0..<4).map { c in (0..<5).map { Double(c + $0) * 0.01 } }).map { $0! }
        runner.advance(&cps, iterations: 300) { _ in }
        #expect(Set(cps.map(\.metric.scale)).count == 1)
        // Pooled over 4 chains × 200 draws of the last window: every variance within 25 % of the truth.
        for (v, s) in zip(cps[0].metric.scale, target.sds) { #expect(abs(v / (s * s) - 1) < 0.25, "\(v) vs \(s * s)") }
        #expect(cps.allSatisfy { $0.adaptation.finishedWindow == nil })
    }

    @Test("a chain stranded on a plateau at the end of warm-up restarts from the best chain's state; the others are left alone")
    func strandedChainRestarts() {
        // N(0, I) plus a local mode at x₀ = 30 whose peak is e⁻²⁰⁰ of the main one's (its mass
        // is negligible): a chain started there sits ~200 below the others and never leaves.
        let target = ClosureDensity(dimension: 2) { x in
            let a = -0.5 * (x[0] * x[0] + x[1] * x[1]), b = -200 - 0.5 * ((x[0] - 30) * (x[0] - 30) + x[1] * x[1])
            let m = max(a, b), wa = exp(a - m), wb = exp(b - m)
            return (m + log(wa + wb), [(wa * -x[0] + wb * -(x[0] - 30)) / (wa + wb), -x[1]])
        }
        // (A metric pooled over the group spans both modes and lets the chain cross by itself:
        // off here, to see the restart alone.)
        var settings = SamplerSettings(method: .nuts, warmup: 200, draws: 50)
        settings.poolMetric = false
        let runner = ChainRunner(settings: settings, seed: 2, target: target)
        let starts: [[Double]] = [[0, 0], [30, 0], [0.5, 0.5], [-1, 0]]
        var cps = runner.start(chains: [0, 1, 2, 3], positions: starts).map { $0! }
        var maxX0AfterWarmup = -Double.infinity
        runner.advance(&cps, iterations: 250) { r in if !r.isWarmup { maxX0AfterWarmup = max(maxX0AfterWarmup, r.position[0]) } }
        #expect(cps[1].restartedFrom != nil)
        #expect(cps.enumerated().allSatisfy { $0.offset == 1 || $0.element.restartedFrom == nil })
        #expect(maxX0AfterWarmup < 5)
        // The negative control: without the restart the chain stays stranded.
        settings.restartStranded = false
        let plain = ChainRunner(settings: settings, seed: 2, target: target)
        var stuck = plain.start(chains: [0, 1, 2, 3], positions: starts).map { $0! }
        var stranded = 0
        plain.advance(&stuck, iterations: 250) { r in if !r.isWarmup, r.position[0] > 5 { stranded += 1 } }
        #expect(stranded == 50)
    }

    @Test("a NUTS chain's draws do not depend on the other chains in its batch")
    func batchIndependence() {
        // Pooling the metric and restarting stranded chains couple a group's chains on
        // purpose; without them a chain is on its own.
        var settings = SamplerSettings(method: .nuts, warmup: 60, draws: 60)
        settings.poolMetric = false
        settings.restartStranded = false
        let runner = ChainRunner(settings: settings, seed: 5, target: GaussianTarget.illConditioned(4, condition: 10))
        let p = [0.1, 0.2, 0.3, 0.4]
        var alone = runner.start(chains: [7], positions: [p]).map { $0! }
        var together = runner.start(chains: [3, 7, 9], positions: [[1, 1, 1, 1], p, p]).map { $0! }
        var x = [[Double]](), y = [[Double]]()
        runner.advance(&alone, iterations: 120) { x.append($0.position) }
        runner.advance(&together, iterations: 120) { if $0.chain == 7 { y.append($0.position) } }
        #expect(x == y)
    }

    @Test("NUTS records its tree depth, steps and energy; divergences are rejected and counted")
    func statistics() {
        // log p = −x²/2 for x < 1, NaN beyond: trajectories that leave diverge.
        let target = ClosureDensity(dimension: 1) { x in
            x[0] < 1 ? (-0.5 * x[0] * x[0], [-x[0]]) : (.nan, [.nan])
        }
        let settings = SamplerSettings(method: .nuts, warmup: 200, draws: 1000, maxTreeDepth: 4, initialStepSize: 0.5)
        let runner = ChainRunner(settings: settings, seed: 3, target: target)
        var cps = runner.start(chains: [0, 1], positions: [[0], [0.5]]).map { $0! }
        var divergent = 0, maxX = -Double.infinity, depths = Set<Int>()
        runner.advance(&cps, iterations: 1200) { r in
            if r.info.divergent { divergent += 1 }
            #expect(r.info.steps >= 1 && r.info.steps <= 15)
            #expect(r.info.treeDepth <= 4)
            #expect(r.info.energy.isFinite)
            depths.insert(r.info.treeDepth)
            maxX = max(maxX, r.position[0])
        }
        #expect(divergent > 0)
        #expect(maxX < 1)
        #expect(depths.count > 1)
    }

    @Test("Stan's warm-up windows: 75 / 25, 50, 100, 200, 500 / 50 for 1,000 iterations; scaled when short")
    func schedule() {
        #expect(WarmupSchedule(warmup: 1000, adaptMetric: true).windows == [75..<100, 100..<150, 150..<250, 250..<450, 450..<950])
        #expect(WarmupSchedule(warmup: 100, adaptMetric: true).windows == [15..<90])
        #expect(WarmupSchedule(warmup: 500, adaptMetric: true).windows == [75..<100, 100..<150, 150..<250, 250..<450])
        #expect(WarmupSchedule(warmup: 19, adaptMetric: true).windows.isEmpty)
        #expect(WarmupSchedule(warmup: 1000, adaptMetric: false).windows.isEmpty)
    }

    @Test("a dense metric's momentum has covariance M and its noise covariance M⁻¹", arguments: [Metric.Kind.diagonal, .dense])
    func metricAlgebra(_ kind: Metric.Kind) throws {
        var estimator = MetricEstimator(kind: kind, dimension: 3)
        let stream = RandomStream(seed: 1, chain: 0)
        for it in 0..<50 {
            let z = stream.normals(3, iteration: UInt64(it), purpose: .proposal)
            estimator.add([z[0], z[0] + 0.5 * z[1], 2 * z[2] - z[1]])
        }
        let metric = try #require(estimator.metric())
        // For any ξ: p = L⁻ᵀξ gives pᵀM⁻¹p = ξᵀξ, and r = Lξ gives rᵀMr = ξᵀξ.
        let xi = [0.3, -1.2, 0.7]
        var p = xi
        p.withUnsafeMutableBufferPointer { metric.momentum(fromNormals: $0.baseAddress!, dimension: 3) }
        var v = [Double](repeating: 0, count: 3)
        p.withUnsafeBufferPointer { metric.velocity($0.baseAddress!, into: &v, dimension: 3) }
        let kinetic = zip(p, v).reduce(0) { $0 + $1.0 * $1.1 }
        var r = xi
        r.withUnsafeMutableBufferPointer { metric.correlate($0.baseAddress!, dimension: 3) }
        let norm = xi.reduce(0) { $0 + $1 * $1 }
        #expect(abs(kinetic - norm) < 1e-12)
        #expect(abs(metric.precisionQuadratic(r) - norm) < 1e-12)
    }
}

/// The gradient-free ensemble kernel.
@Suite(.serialized)
struct DifferentialEvolutionTests {
    @Test("differential evolution samples a badly scaled, correlated Gaussian without gradients",
          arguments: [(6, 8), (12, 24)])
    func correlated(_ d: Int, _ chains: Int) {
        let target = GaussianTarget.correlated(d, condition: 100, rho: 0.8)
        let report = KernelChecker(chains: chains).check(SamplerSettings(method: .de, warmup: 2000, draws: 20000), target: target)
        #expect(report.failures.isEmpty, "\(report)")
        #expect(report.minESS > 400, "\(report)")
    }

    @Test("negative control: a difference that may involve the moving chain (not symmetric) fails the checker")
    func asymmetricDifferenceIsBiased() {
        let target = GaussianTarget.correlated(6, condition: 100, rho: 0.8)
        let report = KernelChecker(chains: 8).check(SamplerSettings(method: .de, warmup: 2000, draws: 20000), target: target,
                                                    fault: .evolutionIncludesSelf)
        #expect(report.failures.contains { $0.contains("variance") || $0.contains("mean") }, "the biased sampler passed: \(report)")
    }
}
