import Foundation
import TensorCore

/// Minibatch training with Adam and a learning-rate schedule, deterministic for a seed
/// (initialisation, shuffling and dropout all come from it) and a BLAS thread count.
public struct Trainer {
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    public var schedule: LearningRateSchedule
    public var seed: UInt64
    /// Called with progress lines (about every 2 seconds and at each epoch's end).
    public var progress: (String) -> Void

    public init(spec: TrainingSpec, progress: @escaping (String) -> Void) {
        epochs = spec.epochs
        batchSize = spec.batchSize
        learningRate = spec.learningRate
        schedule = spec.schedule
        seed = spec.seed
        self.progress = progress
    }

    /// Metrics of a finished run.
    public struct Report: Sendable {
        public var trainLoss: Double
        public var trainAccuracy: Double?
        public var testLoss: Double?
        public var testAccuracy: Double?
        public var seconds: Double
    }

    enum Objective { case classify, regress }

    /// Trains a classifier (softmax cross-entropy on logits) or a regressor (MSE on a
    /// single value) in place; evaluates on `test` after each epoch.
    public func fit(_ network: inout Sequential, classifier: Bool, train: Dataset, test: Dataset?) -> Report {
        var rng = SplitMix64(seed: seed ^ 0xD1B5_4A32_D192_ED03)
        var adam = Adam()
        var lossSum = 0.0, correct = 0, seen = 0
        var report = Report(trainLoss: .nan, seconds: 0)
        report.seconds = runEpochs(count: train.count, rng: &rng) { idx, lr, rng in
            let x = train.batch(idx)
            var noise: TrainingNoise? = SplitMix64(seed: rng.next())
            let tape = network.record(x, noise: &noise)
            let y = tape.last!.output
            let gradient: Tensor
            if classifier {
                let r = Losses.crossEntropy(logits: y, labels: ArraySlice(idx.map { train.labels[$0] }))
                lossSum += r.loss * Double(idx.count); correct += r.correct; gradient = r.gradient
            } else {
                let r = Losses.meanSquaredError(y, targets: ArraySlice(idx.map { train.targets[$0] }))
                lossSum += r.loss * Double(idx.count); gradient = r.gradient
            }
            seen += idx.count
            let grads = network.pullback(tape, outputGradient: gradient, wantParameters: true).parameters
            adam.update(&network, gradients: grads, learningRate: lr)
        } status: {
            String(format: "loss %.4f", lossSum / Double(seen))
                + (classifier ? String(format: "  accuracy %.2f%%", 100 * Double(correct) / Double(seen)) : "")
        } endOfEpoch: {
            report.trainLoss = lossSum / Double(seen)
            report.trainAccuracy = classifier ? Double(correct) / Double(seen) : nil
            if let test {
                let e = evaluate(network, classifier: classifier, data: test)
                report.testLoss = e.loss
                report.testAccuracy = e.accuracy
            }
            (lossSum, correct, seen) = (0, 0, 0)
            var line = String(format: "train loss %.4f", report.trainLoss)
            if let a = report.trainAccuracy { line += String(format: "  train accuracy %.2f%%", 100 * a) }
            if let l = report.testLoss { line += String(format: "  test loss %.4f", l) }
            if let a = report.testAccuracy { line += String(format: "  test accuracy %.2f%%", 100 * a) }
            return line
        }
        return report
    }

    /// Drives training: every epoch shuffles the examples with `rng` and calls `step` on
    /// each minibatch with the schedule's learning rate; progress goes out about every
    /// 2 s (`status` gives the running figures) and at each epoch's end (`endOfEpoch`
    /// updates the report and gives its figures). Returns the seconds taken.
    private func runEpochs(
        count: Int, rng: inout SplitMix64,
        step: (_ indices: ArraySlice<Int>, _ learningRate: Float, _ rng: inout SplitMix64) -> Void,
        status: () -> String, endOfEpoch: () -> String
    ) -> Double {
        let steps = epochs * ((count + batchSize - 1) / batchSize)
        var done = 0
        let start = Date()
        var lastPrint = Date.distantPast
        for epoch in 1...epochs {
            var order = Array(0..<count)
            order.shuffle(using: &rng)
            for first in stride(from: 0, to: order.count, by: batchSize) {
                step(order[first..<min(first + batchSize, order.count)],
                     schedule.rate(learningRate, step: done, of: steps), &rng)
                done += 1
                if Date().timeIntervalSince(lastPrint) > 2 {
                    lastPrint = Date()
                    let rate = Double(done * batchSize) / Date().timeIntervalSince(start)
                    progress("epoch \(epoch)/\(epochs)  step \(done)/\(steps)  \(status())  "
                             + String(format: "%.0f examples/s", rate))
                }
            }
            let line = endOfEpoch()
            progress("epoch \(epoch)/\(epochs) done  \(line)" + String(format: "  (%.0f s)", Date().timeIntervalSince(start)))
        }
        return Date().timeIntervalSince(start)
    }

    /// Mean loss and accuracy (classifiers) over a dataset, in inference mode.
    public func evaluate(_ network: Sequential, classifier: Bool, data: Dataset) -> (loss: Double, accuracy: Double?) {
        var loss = 0.0, correct = 0
        for first in stride(from: 0, to: data.count, by: 500) {
            let idx = first..<min(first + 500, data.count)
            let y = network(data.batch(ArraySlice(Array(idx))))
            if classifier {
                let r = Losses.crossEntropy(logits: y, labels: data.labels[idx])
                loss += r.loss * Double(idx.count); correct += r.correct
            } else {
                loss += Losses.meanSquaredError(y, targets: data.targets[idx]).loss * Double(idx.count)
            }
        }
        return (loss / Double(data.count), classifier ? Double(correct) / Double(data.count) : nil)
    }

    /// Trains a VAE: encoder x → [μ, log σ²] (2·latent values), z = μ + σ·ε, decoder z →
    /// logits of the pixels (its final sigmoid is applied inside the loss); loss = BCE
    /// summed over pixels + KL(q(z|x) ‖ N(0, I)), averaged over the batch.
    public func fitVAE(encoder: inout Sequential, decoder: inout Sequential, latent: Int,
                       train: Dataset, test: Dataset?) -> Report {
        var rng = SplitMix64(seed: seed ^ 0xA076_1D64_78BD_642F)
        var adamE = Adam(), adamD = Adam()
        var lossSum = 0.0, seen = 0
        var report = Report(trainLoss: .nan, seconds: 0)
        report.seconds = runEpochs(count: train.count, rng: &rng) { idx, lr, rng in
            let x = train.batch(idx)
            let b = idx.count
            var noise: TrainingNoise? = SplitMix64(seed: rng.next())
            let encTape = encoder.record(x, noise: &noise)
            let h = encTape.last!.output
            let eps = Tensor(shape: [b, latent]) { _ in rng.nextNormal() }
            let (z, kl) = Self.reparameterise(h, eps: eps, latent: latent)
            let decTape = decoder.record(z, noise: &noise)
            let logits = decTape.last!.output
            let bce = Losses.binaryCrossEntropyWithLogits(logits, targets: x.reshaped(logits.shape))
            lossSum += (bce.loss + kl) * Double(b); seen += b
            let dec = decoder.pullback(decTape, outputGradient: bce.gradient, wantParameters: true)
            let dh = Self.reparameterisationPullback(h, eps: eps, latent: latent, dz: dec.input)
            let enc = encoder.pullback(encTape, outputGradient: dh, wantParameters: true)
            adamD.update(&decoder, gradients: dec.parameters, learningRate: lr)
            adamE.update(&encoder, gradients: enc.parameters, learningRate: lr)
        } status: {
            String(format: "loss %.2f", lossSum / Double(seen))
        } endOfEpoch: {
            report.trainLoss = lossSum / Double(seen)
            if let test { report.testLoss = evaluateVAE(encoder: encoder, decoder: decoder, latent: latent, data: test) }
            (lossSum, seen) = (0, 0)
            return String(format: "train loss %.2f", report.trainLoss)
                + (report.testLoss.map { String(format: "  test loss %.2f", $0) } ?? "")
        }
        return report
    }

    /// Test loss of a VAE with z = μ (no sampling noise).
    public func evaluateVAE(encoder: Sequential, decoder: Sequential, latent: Int, data: Dataset) -> Double {
        var total = 0.0
        for first in stride(from: 0, to: data.count, by: 500) {
            let idx = ArraySlice(Array(first..<min(first + 500, data.count)))
            let x = data.batch(idx)
            let h = encoder(x)
            let (z, kl) = Self.reparameterise(h, eps: Tensor(shape: [idx.count, latent]), latent: latent)
            let logits = decoder(z)
            total += (Losses.binaryCrossEntropyWithLogits(logits, targets: x.reshaped(logits.shape)).loss + kl) * Double(idx.count)
        }
        return total / Double(data.count)
    }

    /// z = μ + exp(½ log σ²)·ε and the batch-mean KL divergence −½Σ(1 + log σ² − μ² − σ²).
    static func reparameterise(_ h: Tensor, eps: Tensor, latent: Int) -> (Tensor, Double) {
        let b = h.shape[0]
        var z = Tensor(shape: [b, latent])
        var kl = 0.0
        h.withUnsafeBufferPointer { hp in
            eps.withUnsafeBufferPointer { ep in
                z.withUnsafeMutableBufferPointer { zp in
                    for r in 0..<b {
                        for j in 0..<latent {
                            let mu = hp[r * 2 * latent + j], lv = hp[r * 2 * latent + latent + j]
                            zp[r * latent + j] = mu + exp(0.5 * lv) * ep[r * latent + j]
                            kl += -0.5 * Double(1 + lv - mu * mu - exp(lv))
                        }
                    }
                }
            }
        }
        return (z, kl / Double(b))
    }

    /// dL/dh for h = [μ, log σ²], from dL/dz and the KL term's own gradient.
    static func reparameterisationPullback(_ h: Tensor, eps: Tensor, latent: Int, dz: Tensor) -> Tensor {
        let b = h.shape[0]
        var dh = Tensor(shape: h.shape)
        h.withUnsafeBufferPointer { hp in
            eps.withUnsafeBufferPointer { ep in
                dz.withUnsafeBufferPointer { gp in
                    dh.withUnsafeMutableBufferPointer { dp in
                        for r in 0..<b {
                            for j in 0..<latent {
                                let mu = hp[r * 2 * latent + j], lv = hp[r * 2 * latent + latent + j]
                                let g = gp[r * latent + j]
                                dp[r * 2 * latent + j] = g + mu / Float(b)
                                dp[r * 2 * latent + latent + j] = g * ep[r * latent + j] * 0.5 * exp(0.5 * lv)
                                    + 0.5 * (exp(lv) - 1) / Float(b)
                            }
                        }
                    }
                }
            }
        }
        return dh
    }
}
