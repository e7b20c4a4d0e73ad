import Foundation
import NeuralModels
import Probes
import Samplers
import TensorCore

/// Full MALA steps (proposal, one batched gradient, exact accept/reject) through
/// ``ChainRunner`` and ``ProbeTarget`` on the peer's two probes: G = CE(MLP(x), target)
/// in a 23-d data space, and G = CE(CNN(decoder(z)), target) + ½‖z‖² in a 10-d latent
/// space. Fixed step size, no adaptation, 20 steps per timed call (as the peer's fused
/// scan; a worker advances a segment of many steps per call).
enum SamplerBenchmark {
    struct Row: Codable {
        var `case`: String
        var batch: Int
        var stepsPerSecondPerChain: Double
        var stepsPerSecondTotal: Double
        var acceptance: Double
    }

    static let stepsPerCall = 20

    static func run(batches: [Int], cases: [String], minTime: Double, repeats: Int, calls: Int? = nil) throws -> [Row] {
        var rng = SplitMix64(seed: 0)
        let dec = try EngineBenchmark.decoder(&rng), cnn = try EngineBenchmark.cnn(&rng)
        var rng2 = SplitMix64(seed: 1)
        let mlp = try EngineBenchmark.mlp(&rng2)
        var rows = [Row]()
        for c in cases {
            for b in batches {
                let latent = c == "vae_cnn"
                let model = ProbedModel(name: "m", members: [latent ? cnn : mlp],
                                        kind: .classifier(classes: latent ? 10 : 2, sigmoid: false))
                let target = ProbeTarget(
                    space: latent ? .latent(decoderName: "decoder", dimension: 10, prior: true)
                        : .data(DataSpace(dimension: 23, lower: .all(nil), upper: .all(nil), fixed: [:])),
                    models: ["m": model], decoder: latent ? dec : nil, terms: [FixedLabel(model: "m", label: 1)],
                    temperature: 1, dataDimension: latent ? 784 : 23, dataShape: latent ? [1, 28, 28] : [23])
                let settings = SamplerSettings(method: .mala, warmup: 0, draws: 1 << 30, initialStepSize: 0.01)
                let runner = ChainRunner(settings: settings, seed: 7, target: target)
                let d = target.dimension
                let starts = (0..<b).map { RandomStream(seed: 42, chain: $0).normals(d, iteration: 0, purpose: .initialization) }
                var cps = runner.start(chains: Array(0..<b), positions: starts).map { $0! }
                var accepted = 0.0, steps = 0.0
                let seconds = EngineBenchmark.time(minTime: minTime, repeats: repeats, calls: calls) {
                    runner.advance(&cps, iterations: stepsPerCall) { r in accepted += r.info.acceptanceProbability; steps += 1 }
                } / Double(stepsPerCall)
                rows.append(Row(case: c, batch: b, stepsPerSecondPerChain: 1 / seconds,
                                stepsPerSecondTotal: Double(b) / seconds, acceptance: accepted / max(steps, 1)))
            }
        }
        return rows
    }
}
