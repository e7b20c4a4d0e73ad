import Diagnostics
import Foundation
import ProbeFarmTesting
import Samplers
import Testing

/// Replica exchange on a target whose modes no single chain crosses.
@Suite(.serialized)
struct TemperingTests {
    /// 0.3·N(−4, 0.5²) + 0.7·N(4, 0.5²): the density between the modes is e⁻³² of theirs.
    static let twoModes = ClosureDensity(dimension: 1) { x in
        let a = log(0.3) - 0.5 * pow((x[0] + 4) / 0.5, 2), b = log(0.7) - 0.5 * pow((x[0] - 4) / 0.5, 2)
        let m = max(a, b), wa = exp(a - m), wb = exp(b - m)
        let grad = (wa * -(x[0] + 4) / 0.25 + wb * -(x[0] - 4) / 0.25) / (wa + wb)
        return (m + log(wa + wb), [grad])
    }

    /// Every chain starts in the small mode; returns the share of draws in the large one, its
    /// MCSE and R-hat of the indicator, and the final checkpoints.
    static func run(_ settings: SamplerSettings, chains: Int = 4) -> (share: Double, mcse: Double?, rhat: Double?, cps: [ChainCheckpoint]) {
        let runner = ChainRunner(settings: settings, seed: 21, target: twoModes)
        var cps = runner.start(chains: Array(0..<chains), positions: (0..<chains).map { [-4 + 0.1 * Double($0)] }).map { $0! }
        var inLarge = [[Double]](repeating: [], count: chains)
        runner.advance(&cps, iterations: settings.warmup + settings.draws) { r in
            if !r.isWarmup { inLarge[r.chain].append(r.position[0] > 0 ? 1 : 0) }
        }
        let x = ChainDraws(chains: chains, draws: settings.draws, values: inLarge.flatMap { $0 })
        let share = x.values.reduce(0, +) / Double(x.values.count)
        return (share, x.mcse(method: .mean), x.rhat(), cps)
    }

    @Test("with tempering the mode masses come out right (0.3 / 0.7); without, they are wrong",
          arguments: [SamplerSettings.Method.nuts, .mala])
    func modeMasses(_ method: SamplerSettings.Method) throws {
        let tempered = SamplerSettings(method: method, warmup: 1000, draws: 4000,
                                       tempering: .init(replicas: 8, maxTemperature: 200))
        let t = Self.run(tempered)
        let mcse = try #require(t.mcse)
        #expect(abs(t.share - 0.7) < 4 * mcse, "share in the large mode \(t.share) ± \(mcse)")
        #expect(mcse < 0.03, "MCSE \(mcse)")
        #expect((t.rhat ?? 9) < 1.05, "R-hat \(String(describing: t.rhat))")
        // Swap rates were measured after warm-up for every pair, and the ladder adapted
        // towards even rates (none starved).
        for cp in t.cps {
            let rates = cp.ladder!.swapRates.map { $0 ?? 0 }
            #expect(rates.count == 7)
            #expect(rates.allSatisfy { $0 > 0.1 }, "swap rates \(rates)")
            #expect(cp.replicas.count == 7)
        }
        // The negative control: without tempering each chain keeps to the mode it found in
        // warm-up (NUTS' early long trajectories may carry one across), and the masses are wrong.
        let plain = Self.run(SamplerSettings(method: method, warmup: 1000, draws: 4000))
        #expect(abs(plain.share - 0.7) > 0.3, "share \(plain.share) without tempering")
    }

    @Test("tempered chains resume from JSON checkpoints bit for bit, NUTS and MALA", arguments: [SamplerSettings.Method.nuts, .mala])
    func resume(_ method: SamplerSettings.Method) throws {
        let settings = SamplerSettings(method: method, warmup: 200, draws: 100, annealFrom: 0.2,
                                       tempering: .init(replicas: 4, maxTemperature: 50))
        let runner = ChainRunner(settings: settings, seed: 3, target: Self.twoModes)
        var straight = runner.start(chains: [2, 9], positions: [[-4], [4]]).map { $0! }
        var a = [Int: [[Double]]]()
        runner.advance(&straight, iterations: 300) { a[$0.chain, default: []].append($0.position + [$0.stepSize, $0.logDensity]) }
        var parts = runner.start(chains: [2, 9], positions: [[-4], [4]]).map { $0! }
        var b = [Int: [[Double]]]()
        for cut in [49, 50, 51, 140, 199, 201] {
            runner.advance(&parts, iterations: cut - parts[0].iteration) { b[$0.chain, default: []].append($0.position + [$0.stepSize, $0.logDensity]) }
            parts = try JSONDecoder().decode([ChainCheckpoint].self, from: JSONEncoder().encode(parts))
        }
        runner.advance(&parts, iterations: 300) { b[$0.chain, default: []].append($0.position + [$0.stepSize, $0.logDensity]) }
        #expect(a == b)
        #expect(parts == straight)
    }

    @Test("the ladder starts geometric, spans 1 … 1/T, and keeps T_max while it adapts")
    func ladder() {
        var l = TemperingLadder(replicas: 5, maxTemperature: 16)
        #expect(l.betas.map { ($0 * 1e12).rounded() / 1e12 } == [1, 0.5, 0.25, 0.125, 0.0625])
        #expect(l.pairs(at: 0) == [0, 2] && l.pairs(at: 1) == [1, 3])
        for (r, p) in [0.9, 0.5, 0.2, 0.1].enumerated() { l.windowAcceptance[r] = p; l.windowAttempts[r] = 1 }
        let changed = l.adapt()
        #expect(changed)
        #expect(abs(l.betas.last! - 0.0625) < 1e-12)
        #expect(l.gaps[0] > l.gaps[3], "a pair that swaps often moves apart: \(l.gaps)")
    }
}
