import Diagnostics
import Foundation
import ProbeFarmTesting
import Samplers
import Testing

/// Every kernel against analytic Gaussians, with the shared checker: moments within 4
/// MCSE (ESS-based), acceptance within 0.08 of the kernel's target.
@Suite(.serialized)
struct KernelTests {
    @Test("NUTS, MALA, HMC and RWM sample an isotropic 100-d Gaussian", arguments: [
        SamplerSettings(method: .nuts, warmup: 500, draws: 1000),
        SamplerSettings(method: .mala, warmup: 1000, draws: 2500),
        SamplerSettings(method: .hmc, warmup: 500, draws: 1000, leapfrogSteps: 8),
        SamplerSettings(method: .rwm, warmup: 2000, draws: 30000, metric: .identity),
    ])
    func isotropic(_ settings: SamplerSettings) {
        let report = KernelChecker().check(settings, target: .isotropic(100))
        #expect(report.failures.isEmpty, "\(settings.method): \(report)")
        #expect(report.minESS > 100, "\(settings.method): \(report)")
    }

    @Test("NUTS, preconditioned MALA, HMC and RWM (diagonal metric) sample an ill-conditioned Gaussian", arguments: [
        SamplerSettings(method: .nuts, warmup: 500, draws: 1000),
        SamplerSettings(method: .mala, warmup: 1000, draws: 3000),
        // εL well away from π: on a target the metric has made isotropic, a fixed-length
        // trajectory near a half period returns anti-correlated draws (NUTS avoids this).
        SamplerSettings(method: .hmc, warmup: 1000, draws: 2000, leapfrogSteps: 5),
        SamplerSettings(method: .rwm, warmup: 2000, draws: 20000),
    ])
    func illConditioned(_ settings: SamplerSettings) {
        let report = KernelChecker().check(settings, target: .illConditioned(10, condition: 10))
        #expect(report.failures.isEmpty, "\(settings.method): \(report)")
        #expect(report.minESS > 100, "\(settings.method): \(report)")
    }

    @Test("MALA with the reference code's forward-density error fails the checker")
    func miscodedMALAIsBiased() {
        // The step size exact MALA adapts to for this target (acceptance 0.574).
        let settings = SamplerSettings(method: .mala, warmup: 1000, draws: 2500)
        let target = GaussianTarget.isotropic(100)
        let exact = KernelChecker().check(settings, target: target)
        #expect(exact.failures.isEmpty)
        let runner = ChainRunner(settings: settings, seed: 11, target: target)
        var cps = runner.start(chains: [0], positions: [Array(repeating: 0, count: 100)]).map { $0! }
        runner.advance(&cps, iterations: settings.warmup) { _ in }
        let step = cps[0].stepSize
        let broken = KernelChecker().check(settings, target: target, kernel: MisCodedMALA(), fixedStep: step)
        #expect(broken.failures.count > 10, "the biased sampler passed: \(broken)")
        #expect(broken.meanAcceptance == 1)
    }

    @Test("resuming from a JSON checkpoint gives bit-identical draws", arguments: [SamplerSettings.Method.mala, .hmc, .rwm])
    func resume(_ method: SamplerSettings.Method) throws {
        let settings = SamplerSettings(method: method, warmup: 150, draws: 150, leapfrogSteps: 5)
        let runner = ChainRunner(settings: settings, seed: 99, target: GaussianTarget.illConditioned(5, condition: 5))
        let start = (0..<3).map { c in (0..<5).map { Double($0 + c) * 0.1 } }
        var straight = runner.start(chains: [4, 5, 6], positions: start).map { $0! }
        var a = [[Double]]()
        runner.advance(&straight, iterations: 300) { a.append($0.position + [$0.stepSize, $0.logDensity]) }

        var parts = runner.start(chains: [4, 5, 6], positions: start).map { $0! }
        var b = [[Double]]()
        for cut in [70, 100, 130] {  // crosses the metric window and the end of warm-up
            runner.advance(&parts, iterations: cut - parts[0].iteration) { b.append($0.position + [$0.stepSize, $0.logDensity]) }
            let data = try JSONEncoder().encode(parts)
            parts = try JSONDecoder().decode([ChainCheckpoint].self, from: data)
        }
        runner.advance(&parts, iterations: 300) { b.append($0.position + [$0.stepSize, $0.logDensity]) }
        #expect(a.count == 900)
        #expect(a == b)
        #expect(parts == straight)
    }

    @Test("a chain's draws do not depend on the other chains in its batch")
    func batchIndependence() {
        var settings = SamplerSettings(method: .mala, warmup: 50, draws: 50)
        settings.poolMetric = false
        settings.restartStranded = false
        let runner = ChainRunner(settings: settings, seed: 5, target: GaussianTarget.isotropic(4))
        let p = [0.1, 0.2, 0.3, 0.4]
        var alone = runner.start(chains: [7], positions: [p]).map { $0! }
        var together = runner.start(chains: [3, 7, 9], positions: [p, p, p]).map { $0! }
        var x = [[Double]](), y = [[Double]]()
        runner.advance(&alone, iterations: 100) { x.append($0.position) }
        runner.advance(&together, iterations: 100) { if $0.chain == 7 { y.append($0.position) } }
        #expect(x == y)
    }

    @Test("NaN or infinite log density: the proposal is rejected, counted divergent, the chain goes on")
    func nonFinite() {
        // log p = −x²/2 for x < 1, NaN beyond: the sampler must stay below 1.
        let target = ClosureDensity(dimension: 1) { x in
            x[0] < 1 ? (-0.5 * x[0] * x[0], [-x[0]]) : (.nan, [.nan])
        }
        let settings = SamplerSettings(method: .mala, warmup: 200, draws: 2000, initialStepSize: 0.5)
        let runner = ChainRunner(settings: settings, seed: 3, target: target)
        var cps = runner.start(chains: [0, 1], positions: [[0], [0.5]]).map { $0! }
        var divergent = 0, draws = 0, maxX = -Double.infinity
        runner.advance(&cps, iterations: 2200) { r in
            if r.info.divergent { divergent += 1; #expect(!r.info.accepted) }
            if !r.isWarmup { draws += 1 }
            maxX = max(maxX, r.position[0])
        }
        #expect(draws == 4000)
        #expect(divergent > 0)
        #expect(maxX < 1)
        #expect(cps.allSatisfy { $0.state.logDensity.isFinite })
    }

    @Test("dual averaging reaches the target acceptance and freezes the step after warm-up")
    func adaptation() {
        let settings = SamplerSettings(method: .mala, warmup: 500, draws: 500, metric: .identity)
        let runner = ChainRunner(settings: settings, seed: 1, target: GaussianTarget.isotropic(20))
        var cps = runner.start(chains: [0, 1], positions: [Array(repeating: 0, count: 20), Array(repeating: 1, count: 20)]).map { $0! }
        var steps = Set<Double>(), acc = 0.0, n = 0.0
        runner.advance(&cps, iterations: 1000) { r in
            if !r.isWarmup { steps.insert(r.stepSize); acc += r.info.acceptanceProbability; n += 1 }
        }
        #expect(steps.count == 2)  // one frozen step per chain
        #expect(abs(acc / n - 0.574) < 0.06)
    }
}
