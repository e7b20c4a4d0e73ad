import ArgumentParser
import Foundation
import NeuralModels
import Reports
import TensorCore

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an MLP or CNN classifier/regressor, or a VAE, on IDX images or CSV tables.",
        discussion: """
            The spec (YAML) names the task (classifier, regressor, vae), the data (IDX files from \
            Scripts/fetch-data.sh, or a CSV with a label column), the layers by size, the \
            training settings and the output file(s). Adam with a learning-rate schedule; a fixed \
            seed and thread count give the same weights. See docs/training.md and Deploy/train/.
            """)

    @Argument(help: "A training spec (YAML).")
    var spec: String

    @Option(help: "Train on only the first N examples (overrides data.limit).")
    var limit: Int?

    @Option(help: "Epochs (overrides training.epochs).")
    var epochs: Int?

    func run() throws {
        var s = try TrainingSpec.load(spec)
        if let limit { s.limit = limit }
        if let epochs { s.epochs = epochs }
        BLAS.setThreads(s.threads > 0 ? s.threads : ProcessInfo.processInfo.activeProcessorCount)
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

        var (train, test, encoding) = try loadData(s)
        if let limit = s.limit { train = train.prefix(limit) }
        log("train: \(train.count) training examples\(test.map { ", \($0.count) test examples" } ?? ""), input \(train.inputShape), BLAS \(BLAS.coreName) × \(BLAS.threads) threads")
        var rng = SplitMix64(seed: s.seed)
        let trainer = Trainer(spec: s, progress: log)
        var metadata = [
            "probefarm.training": trainingNote(s, examples: train.count),
        ]
        if let encoding, let json = try? JSONEncoder().encode(encoding) {
            metadata["probefarm.features"] = String(decoding: json, as: UTF8.self)
        }

        switch s.task {
        case .classifier, .regressor:
            let classifier = s.task == .classifier
            var (network, architecture) = try NetworkBuilder.build(
                s.layers, input: train.inputShape, prefix: "layers", output: classifier ? .logits : .value,
                rng: &rng, specPath: spec, key: "layers")
            let outputs = network.outputShape.reduce(1, *)
            if classifier {
                let classes = (train.labels.max() ?? 0) + 1
                guard outputs == classes else {
                    throw SpecError(path: spec, message: "layers: the network has \(outputs) outputs but the data has \(classes) classes")
                }
            } else if outputs != 1 {
                throw SpecError(path: spec, message: "layers: a regressor must end in 1 output, not \(outputs)")
            }
            log("train: \(network.parameterCount) parameters")
            let report = trainer.fit(&network, classifier: classifier, train: train, test: test)
            metadata["probefarm.metrics"] = metricsJSON(report)
            try Model.save(network, architecture: architecture, metadata: metadata, to: s.output)
            print(summary(report, files: [s.output]))
        case .vae:
            var (encoder, encArch) = try NetworkBuilder.build(
                s.encoder, input: train.inputShape, prefix: "encoder", output: .value, rng: &rng, specPath: spec, key: "encoder")
            guard encoder.outputShape == [2 * s.latent] else {
                throw SpecError(path: spec, message: "encoder: must end in \(2 * s.latent) values (μ and log σ² for latent \(s.latent)), not \(encoder.outputShape)")
            }
            var recipes = s.decoder
            let endsInSigmoid = recipes.last?.op == "sigmoid"
            if endsInSigmoid { recipes.removeLast() }  // trained through BCE-with-logits, saved with it
            var (decoder, decArch) = try NetworkBuilder.build(
                recipes, input: [s.latent], prefix: "decoder", output: .image, rng: &rng, specPath: spec, key: "decoder")
            guard decoder.outputShape.reduce(1, *) == train.sampleSize else {
                throw SpecError(path: spec, message: "decoder: produces \(decoder.outputShape), the data is \(train.inputShape)")
            }
            guard endsInSigmoid else {
                throw SpecError(path: spec, message: "decoder: must end in sigmoid (outputs are pixel intensities in [0, 1])")
            }
            log("train: encoder \(encoder.parameterCount) + decoder \(decoder.parameterCount) parameters, latent \(s.latent)")
            let report = trainer.fitVAE(encoder: &encoder, decoder: &decoder, latent: s.latent, train: train, test: test)
            decoder.layers.append(Activation(.sigmoid))
            decArch.layers.append(LayerSpec(op: "sigmoid"))
            let decoderWithSigmoid = try Sequential(layers: decoder.layers, inputShape: [s.latent])
            metadata["probefarm.metrics"] = metricsJSON(report)
            try Model.save(encoder, architecture: encArch, metadata: metadata, to: s.outputEncoder)
            try Model.save(decoderWithSigmoid, architecture: decArch, metadata: metadata, to: s.outputDecoder)
            let png = try writeGrids(encoder: encoder, decoder: decoderWithSigmoid, latent: s.latent,
                                     data: test ?? train, seed: s.seed, next: s.outputDecoder)
            print(summary(report, files: [s.outputEncoder, s.outputDecoder, png]))
        }
    }

    func loadData(_ s: TrainingSpec) throws -> (Dataset, Dataset?, FeatureEncoding?) {
        switch s.data {
        case let .idx(ti, tl, xi, xl):
            let train = try IDXFile.load(images: ti, labels: tl)
            var test: Dataset? = nil
            if let xi, let xl { test = try IDXFile.load(images: xi, labels: xl) }
            return (train, test, nil)
        case let .csv(trainPath, testPath, label):
            let t = try CSVTable.read(trainPath)
            let encoding = try CSVTable.fitEncoding(header: t.header, rows: t.rows, label: label,
                                                    classification: s.task == .classifier, path: trainPath)
            let train = try CSVTable.encode(header: t.header, rows: t.rows, with: encoding, path: trainPath)
            var test: Dataset? = nil
            if let testPath {
                let u = try CSVTable.read(testPath)
                test = try CSVTable.encode(header: u.header, rows: u.rows, with: encoding, path: testPath)
            }
            return (train, test, encoding)
        }
    }

    /// Reconstructions of the first 32 test images (odd rows under the originals) and
    /// 32 decoded prior samples, as `<decoder>.png`.
    func writeGrids(encoder: Sequential, decoder: Sequential, latent: Int, data: Dataset, seed: UInt64, next path: String) throws -> String {
        let n = min(32, data.count)
        let x = data.batch(ArraySlice(Array(0..<n)))
        let h = encoder(x)
        let mu = Tensor(shape: [n, latent]) { i in h[flat: (i / latent) * 2 * latent + i % latent] }
        let recon = decoder(mu)
        var rng = SplitMix64(seed: seed &+ 99)
        let samples = decoder(Tensor(shape: [n, latent]) { _ in rng.nextNormal() })
        let hw = data.sampleSize
        var all = [Float]()
        for row in 0..<((n + 7) / 8) {
            let range = (row * 8)..<min(row * 8 + 8, n)
            for i in range { all += x.scalars[(i * hw)..<((i + 1) * hw)] }
            for i in range { all += recon.scalars[(i * hw)..<((i + 1) * hw)] }
        }
        all += samples.scalars
        let count = all.count / hw
        let png = (path as NSString).deletingPathExtension + ".png"
        try PNGImage.grid(Tensor(shape: [count] + data.inputShape, scalars: all), columns: 8).write(to: png)
        return png
    }

    func trainingNote(_ s: TrainingSpec, examples: Int) -> String {
        let d: [String: Any] = ["task": s.task.rawValue, "epochs": s.epochs, "batch_size": s.batchSize,
                                "learning_rate": Double(s.learningRate), "schedule": s.schedule.rawValue,
                                "seed": Int(s.seed), "examples": examples, "blas_threads": BLAS.threads,
                                "blas_core": BLAS.coreName, "probefarm": ProbeFarmVersion.string]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    func metricsJSON(_ r: Trainer.Report) -> String {
        var d: [String: Any] = ["train_loss": r.trainLoss, "seconds": r.seconds]
        d["train_accuracy"] = r.trainAccuracy
        d["test_loss"] = r.testLoss
        d["test_accuracy"] = r.testAccuracy
        return String(decoding: (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    func summary(_ r: Trainer.Report, files: [String]) -> String {
        var s = String(format: "final: train loss %.4f", r.trainLoss)
        if let a = r.trainAccuracy { s += String(format: ", train accuracy %.2f%%", 100 * a) }
        if let l = r.testLoss { s += String(format: ", test loss %.4f", l) }
        if let a = r.testAccuracy { s += String(format: ", test accuracy %.2f%%", 100 * a) }
        return s + String(format: " (%.0f s)\nwrote %@", r.seconds, files.joined(separator: ", "))
    }
}
