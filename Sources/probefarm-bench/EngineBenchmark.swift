import Foundation
import NeuralModels
import TensorCore

/// The two cases of shared/peers/jax_mala_bench.py, with identical architectures, batch
/// sizes and potentials, timed as the peer times them (median of repeats that each last
/// about `minTime` seconds, after warm-up).
enum EngineBenchmark {
    /// He-normal weights (std √(2/fan_in)), zero biases, as the peer initialises.
    static func he(_ shape: [Int], fanIn: Int, rng: inout SplitMix64) -> Tensor {
        let s = (2 / Float(fanIn)).squareRoot()
        return Tensor(shape: shape) { _ in rng.nextNormal() * s }
    }

    /// decoder: z(10) → dense 3136 → relu → [64,7,7] → convT 64→32 s2 → relu → convT 32→1 s2 → sigmoid
    /// (SAME padding: PyTorch padding 1, output_padding 1).
    static func decoder(_ rng: inout SplitMix64) throws -> Sequential {
        try Sequential(layers: [
            Linear(weight: he([3136, 10], fanIn: 10, rng: &rng), bias: Tensor(shape: [3136])),
            Activation(.relu), Reshape(shape: [64, 7, 7]),
            ConvTranspose2d(weight: he([64, 32, 3, 3], fanIn: 9 * 64, rng: &rng), bias: Tensor(shape: [32]),
                            stride: (2, 2), padding: (1, 1), outputPadding: (1, 1)),
            Activation(.relu),
            ConvTranspose2d(weight: he([32, 1, 3, 3], fanIn: 9 * 32, rng: &rng), bias: Tensor(shape: [1]),
                            stride: (2, 2), padding: (1, 1), outputPadding: (1, 1)),
            Activation(.sigmoid),
        ], inputShape: [10])
    }

    /// The paper's CNN: [conv 32, relu, conv 32, relu, pool] [conv 64, relu, conv 64, relu, pool], dense 10.
    static func cnn(_ rng: inout SplitMix64) throws -> Sequential {
        func conv(_ i: Int, _ o: Int) -> Conv2d {
            Conv2d(weight: he([o, i, 3, 3], fanIn: 9 * i, rng: &rng), bias: Tensor(shape: [o]), padding: (1, 1))
        }
        return try Sequential(layers: [
            conv(1, 32), Activation(.relu), conv(32, 32), Activation(.relu), Pool2d(.max, kernel: (2, 2)),
            conv(32, 64), Activation(.relu), conv(64, 64), Activation(.relu), Pool2d(.max, kernel: (2, 2)),
            Flatten(), Linear(weight: he([10, 3136], fanIn: 3136, rng: &rng), bias: Tensor(shape: [10])),
        ], inputShape: [1, 28, 28])
    }

    static func mlp(_ rng: inout SplitMix64) throws -> Sequential {
        let w = [23, 128, 32, 8, 2]
        var layers = [any Layer]()
        for i in 0..<4 {
            layers.append(Linear(weight: he([w[i + 1], w[i]], fanIn: w[i], rng: &rng), bias: Tensor(shape: [w[i + 1]])))
            if i < 3 { layers.append(Activation(.relu)) }
        }
        return try Sequential(layers: layers, inputShape: [23])
    }

    /// Per-chain G and ∇G for G = CE(f(q), target) (+ ½‖z‖² for the latent case), through
    /// passes that keep their buffers from call to call (as a sampler's target does).
    static func valueAndGradient(_ passes: [NetworkPass], _ q: Tensor, targets: [Int], prior: Bool) -> (Tensor, Tensor) {
        var h = q
        for p in passes { h = p.forward(h) }
        let ce = Losses.crossEntropy(logits: h, labels: ArraySlice(targets))
        var g = ce.gradient
        g.scale(by: Float(q.shape[0]))  // per-chain gradients, not the batch mean
        for p in passes.reversed() { g = p.inputGradient(outputGradient: g) }
        if prior { g.add(q) }
        return (Tensor(shape: [q.shape[0]], repeating: Float(ce.loss)), g)
    }

    struct Row: Codable {
        var `case`: String
        var batch: Int
        var medianSecondsPerCall: Double
        var gradientsPerSecondPerChain: Double
        var gradientsPerSecondTotal: Double
    }

    /// Seconds per call of `body`; with `calls`, exactly that many untimed calls (a fixed
    /// workload for perf or valgrind, whose counts do not depend on the machine's load).
    static func time(minTime: Double, repeats: Int, calls: Int? = nil, _ body: () -> Void) -> Double {
        if let calls {
            for _ in 0..<calls { body() }
            return .nan
        }
        for _ in 0..<3 { body() }
        var n = 1
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<n { body() }
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if t >= minTime / 4 || n >= 1 << 20 { n = max(1, Int(Double(n) * minTime / max(t, 1e-9))); break }
            n *= 2
        }
        var samples = [Double]()
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<n { body() }
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(n))
        }
        return samples.sorted()[repeats / 2]
    }

    static func run(batches: [Int], cases: [String], minTime: Double, repeats: Int, calls: Int? = nil) throws -> [Row] {
        var rng = SplitMix64(seed: 0)
        let dec = try decoder(&rng), net = try cnn(&rng)
        var rng2 = SplitMix64(seed: 1)
        let small = try mlp(&rng2)
        var rows = [Row]()
        for c in cases {
            for b in batches {
                var r = SplitMix64(seed: 42 + UInt64(b))
                let dim = c == "vae_cnn" ? 10 : 23
                let q = Tensor(shape: [b, dim]) { _ in r.nextNormal() }
                let targets = (0..<b).map { $0 % (c == "vae_cnn" ? 10 : 2) }
                let passes = (c == "vae_cnn" ? [dec, net] : [small]).map(NetworkPass.init)
                let t = time(minTime: minTime, repeats: repeats, calls: calls) {
                    _ = valueAndGradient(passes, q, targets: targets, prior: c == "vae_cnn")
                }
                rows.append(Row(case: c, batch: b, medianSecondsPerCall: t, gradientsPerSecondPerChain: 1 / t,
                                gradientsPerSecondTotal: Double(b) / t))
            }
        }
        return rows
    }
}
