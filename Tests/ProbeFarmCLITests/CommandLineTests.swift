import Foundation
import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// The `probefarm` executable end to end (JOBSPEC §3): real processes, real files.
struct CommandLineTests {
    static func torch(_ name: String) -> String { Fixtures.url("NeuralModelsTests", "torch/\(name)").path }

    @Test("inspect --json prints parameters, input, output, layers and sha256")
    func inspectJSON() throws {
        let r = try CommandRunner.run(["inspect", Self.torch("cnn.safetensors"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["parameters"] as? Int == 96362)
        #expect(json["input"] as? [Int] == [1, 28, 28])
        #expect(json["output"] as? String == "logits")
        #expect((json["layers"] as? [Any])?.count == 12)
        #expect((json["sha256"] as? String)?.count == 64)
    }

    @Test("predict writes PyTorch's outputs for the batch")
    func predict() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.npy").path
        let r = try CommandRunner.run(["predict", Self.torch("decoder.safetensors"), Self.torch("decoder-input.npy"),
                                       "-o", out, "--batch-size", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let ours = try NumPyArray.read(contentsOf: out)
        let theirs = try NumPyArray.read(contentsOf: Self.torch("decoder-output.npy"))
        #expect(ours.shape == theirs.shape)
        let diff = zip(ours.float64Values, theirs.float64Values).map { abs($0 - $1) }.max() ?? 1
        #expect(diff < 1e-5)
    }

    @Test("predict refuses an input whose shape does not match the model (exit 65)")
    func predictShape() throws {
        let r = try CommandRunner.run(["predict", Self.torch("cnn.safetensors"), Self.torch("mlp-input.npy"), "-o", "/tmp/x.npy"])
        #expect(r.status == 65)
        #expect(r.stderr.contains("mlp-input.npy") && r.stderr.contains("does not match"))
    }

    @Test("predict: an ensemble's mean or every member, class probabilities, and inputs reshaped to the model's")
    func predictEnsemble() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two linear classifiers of 3 features into 2 classes, stacked as one ensemble file.
        let w: [[Float]] = [[1, -2, 0.5, 0, 1, -1], [-0.5, 1, 2, 1, 0, 0.25]], b: [[Float]] = [[0.1, -0.2], [0, 0.3]]
        let model = dir.appendingPathComponent("ens.safetensors").path
        let architecture = Architecture(input: [3], output: .logits, layers: [LayerSpec.linear("weight", bias: "bias")])
        let bytes = SafeTensorsWriter.encode([(name: "weight", tensor: Tensor(shape: [2, 2, 3], scalars: w.flatMap { $0 })),
                                              (name: "bias", tensor: Tensor(shape: [2, 2], scalars: b.flatMap { $0 }))],
                                             metadata: [Model.architectureKey: architecture.jsonText(), Model.ensembleKey: "2"])
        FileManager.default.createFile(atPath: model, contents: Data(bytes))
        let x: [Float] = [0.5, -1, 2, 1, 1, 1]  // two samples
        let input = dir.appendingPathComponent("x.npy").path
        try NumPyArray(shape: [2, 3], float32: x).write(to: input)
        func logits(_ k: Int, _ i: Int) -> [Float] {
            (0..<2).map { c in (0..<3).reduce(b[k][c]) { $0 + w[k][c * 3 + $1] * x[i * 3 + $1] } }
        }
        func softmax(_ v: [Float]) -> [Float] { let e = v.map { exp($0 - v.max()!) }; return e.map { $0 / e.reduce(0, +) } }
        func run(_ extra: [String]) throws -> NumPyArray {
            let out = dir.appendingPathComponent("out.npy").path
            let r = try CommandRunner.run(["predict", model, input, "-o", out] + extra)
            try #require(r.status == 0, "\(r.stderr)")
            return try NumPyArray.read(contentsOf: out)
        }
        func close(_ a: [Double], _ e: [Float]) -> Bool { zip(a, e).allSatisfy { abs($0 - Double($1)) < 1e-5 } && a.count == e.count }
        let mean = try run([])
        #expect(mean.shape == [2, 2])
        #expect(close(mean.float64Values, (0..<2).flatMap { i in zip(logits(0, i), logits(1, i)).map { ($0 + $1) / 2 } }))
        let all = try run(["--members"])
        #expect(all.shape == [2, 2, 2])
        #expect(close(all.float64Values, (0..<2).flatMap { k in (0..<2).flatMap { logits(k, $0) } }))
        let p = try run(["--probabilities"])
        #expect(close(p.float64Values, (0..<2).flatMap { i in zip(softmax(logits(0, i)), softmax(logits(1, i))).map { ($0 + $1) / 2 } }))
        // Negative control: the mean of probabilities is not the softmax of the mean logits here.
        #expect(!close(p.float64Values, (0..<2).flatMap { i in softmax(zip(logits(0, i), logits(1, i)).map { ($0 + $1) / 2 }) }))
        // A [1, 28, 28] model takes (n, 784): the CNN's fixture batch, flattened, gives the same output.
        let images = try NumPyArray.read(contentsOf: Self.torch("cnn-input.npy"))
        let flat = dir.appendingPathComponent("flat.npy").path
        try NumPyArray(shape: [images.shape[0], 784], float32: images.float32Values).write(to: flat)
        let a = dir.appendingPathComponent("a.npy").path, c = dir.appendingPathComponent("c.npy").path
        #expect(try CommandRunner.run(["predict", Self.torch("cnn.safetensors"), Self.torch("cnn-input.npy"), "-o", a]).status == 0)
        #expect(try CommandRunner.run(["predict", Self.torch("cnn.safetensors"), flat, "-o", c]).status == 0)
        #expect(try NumPyArray.read(contentsOf: a).float64Values == NumPyArray.read(contentsOf: c).float64Values)
        // --probabilities on a model without class scores is refused.
        let decoder = try CommandRunner.run(["predict", Self.torch("decoder.safetensors"), Self.torch("decoder-input.npy"), "-o", a, "--probabilities"])
        #expect(decoder.status == 64 && decoder.stderr.contains("--probabilities"), "\(decoder.stderr)")
    }

    @Test("a malformed model file exits 65 with one line naming the file")
    func malformed() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.safetensors").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.torch("mlp.safetensors")))
        FileManager.default.createFile(atPath: path, contents: bytes.prefix(bytes.count / 2))
        let r = try CommandRunner.run(["inspect", path])
        #expect(r.status == 65)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("bad.safetensors"))
        let missing = try CommandRunner.run(["inspect", dir.appendingPathComponent("none.safetensors").path])
        #expect(missing.status == 66)
    }

    @Test("diagnose --json agrees with ArviZ on a multi-quantity array")
    func diagnoseJSON() throws {
        let npy = Fixtures.url("DiagnosticsTests", "diagnostics/multidim_ties.npy").path
        let r = try CommandRunner.run(["diagnose", npy, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["chains"] as? Int == 4)
        #expect(json["draws"] as? Int == 500)
        let quantities = try #require(json["quantities"] as? [[String: Any]])
        #expect(quantities.map { $0["name"] as? String } == ["x[0]", "x[1]", "x[2]"])
        let reference = try #require(try Fixtures.json(Fixtures.url("DiagnosticsTests", "diagnostics/multidim_ties.json")) as? [String: Any])
        let expected = try #require(reference["quantities"] as? [[String: Any]])
        for (q, e) in zip(quantities, expected) {
            for (ours, theirs) in [("rhat", "rhat_rank"), ("rhat_split", "rhat_split"), ("ess_bulk", "ess_bulk"),
                                   ("ess_tail", "ess_tail"), ("ess_mean", "ess_mean"), ("mcse_mean", "mcse_mean")] {
                let a = try #require(q[ours] as? Double), b = try #require(e[theirs] as? Double)
                #expect(Tolerance.isClose(a, b, relative: 1e-9), "\(ours): \(a) vs \(b)")
            }
        }
    }

    @Test("diagnose prints null for values that cannot be computed")
    func diagnoseNulls() throws {
        let npy = Fixtures.url("DiagnosticsTests", "diagnostics/edge_one_chain.npy").path
        let r = try CommandRunner.run(["diagnose", npy, "--json"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("\"rhat\":null"))
        let table = try CommandRunner.run(["diagnose", npy])
        #expect(table.stdout.contains("✗") && table.stdout.contains("—"))
    }

    @Test("diagnose refuses a directory that is not a run (exit 66) and wrong ranks (exit 65)")
    func diagnoseRunDirectory() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = Fixtures.url("DiagnosticsTests", "diagnostics/iid_normal.npy")
        try FileManager.default.copyItem(at: source, to: dir.appendingPathComponent("draws.npy"))
        let notRun = try CommandRunner.run(["diagnose", dir.path])
        #expect(notRun.status == 66 && notRun.stderr.contains("not a run directory (no summary.json)"), "\(notRun.stderr)")
        let r = try CommandRunner.run(["diagnose", dir.appendingPathComponent("draws.npy").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("4 chains × 1000 draws"))
        let wrong = dir.appendingPathComponent("flat.npy").path
        try NumPyArray(shape: [10], float64: Array(repeating: 1, count: 10)).write(to: wrong)
        let bad = try CommandRunner.run(["diagnose", wrong])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("flat.npy"))
        let notNpy = try CommandRunner.run(["diagnose", Self.torch("mlp.safetensors")])
        #expect(notNpy.status == 65)
    }

    @Test("diagnose refuses to guess on merged 2-d draws, and reads them with --chains")
    func diagnoseMerged() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // iid_normal is (4 chains, 1000 draws): merge it as (4·250, 4) — 4 chains of 250 draws of 4 quantities.
        let source = try NumPyArray.read(contentsOf: Fixtures.url("DiagnosticsTests", "diagnostics/iid_normal.npy").path)
        let merged = dir.appendingPathComponent("merged.npy").path
        try NumPyArray(shape: [1000, 4], float64: source.float64Values).write(to: merged)
        let guess = try CommandRunner.run(["diagnose", merged])
        #expect(guess.status == 64 && guess.stderr.contains("--chains"), "\(guess.stderr)")
        #expect(guess.stderr.split(separator: "\n").count == 1)
        let r = try CommandRunner.run(["diagnose", merged, "--chains", "4", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["chains"] as? Int == 4 && json["draws"] as? Int == 250)
        #expect((json["quantities"] as? [[String: Any]])?.count == 4)
        #expect(try CommandRunner.run(["diagnose", merged, "--chains", "3"]).status == 64, "1000 rows do not split into 3 chains")
    }

    @Test("a bad flag exits 64")
    func usage() throws {
        #expect(try CommandRunner.run(["diagnose"]).status == 64)
        #expect(try CommandRunner.run(["inspect", "--frobnicate"]).status == 64)
    }
}
