import Foundation
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

    @Test("diagnose reads a run directory's chains.npy and refuses wrong ranks (exit 65)")
    func diagnoseRunDirectory() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = Fixtures.url("DiagnosticsTests", "diagnostics/iid_normal.npy")
        try FileManager.default.copyItem(at: source, to: dir.appendingPathComponent("chains.npy"))
        let r = try CommandRunner.run(["diagnose", dir.path])
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
