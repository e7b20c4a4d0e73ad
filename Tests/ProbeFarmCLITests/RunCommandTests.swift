import Foundation
import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// `probefarm run` end to end: job validation before any chain runs, the run directory
/// of JOBSPEC §4, and draws that do not depend on the number of workers.
struct RunCommandTests {
    /// A directory with a small regressor, a 3-class classifier, a decoder and an anchor.
    static func workspace() throws -> URL {
        let dir = try Fixtures.temporaryDirectory("probefarm-run")
        let reg = SmallModels.linear([0.8, -0.5, 0.3], bias: 0.2)
        var a = Architecture(input: [3], output: .value, layers: [LayerSpec.linear("weight", bias: "bias")])
        try Model.save(reg, architecture: a, to: dir.appendingPathComponent("reg.safetensors").path)
        // A 3-class classifier whose two linear layers' tensors have distinct names.
        let clf = SmallModels.mlp(inputs: 3, outputs: 3, seed: 5)
        var net = clf
        for i in [0, 2] {
            let l = clf.layers[i] as! Linear
            net.layers[i] = Linear(weight: l.weight, bias: l.bias, names: ("\(i).weight", "\(i).bias"))
        }
        a = Architecture(input: [3], output: .logits, layers: [
            LayerSpec.linear("0.weight", bias: "0.bias"), LayerSpec(op: "tanh"), LayerSpec.linear("2.weight", bias: "2.bias")])
        try Model.save(net, architecture: a, to: dir.appendingPathComponent("clf.safetensors").path)
        // The same network declared a regressor: a `value` model must have one output, this has 3.
        a.output = .value
        try Model.save(net, architecture: a, to: dir.appendingPathComponent("multi.safetensors").path)
        let dec = try Sequential(layers: [Linear(weight: SmallModels.random([3, 2], seed: 9, scale: 1), bias: nil, names: ("w", nil)),
                                          Activation(.sigmoid)], inputShape: [2])
        try Model.save(dec, architecture: Architecture(input: [2], output: .image, layers: [LayerSpec.linear("w"), LayerSpec(op: "sigmoid")]),
                       to: dir.appendingPathComponent("dec.safetensors").path)
        try NumPyArray(shape: [3], float64: [0.1, 0.4, -0.2]).write(to: dir.appendingPathComponent("x0.npy").path)
        return dir
    }

    static let dataJob = """
        name: linear
        seed: 5
        models: {reg: reg.safetensors}
        space:
          data: {dimension: 3, lower: [0, null, -2], upper: [1, null, 2]}
        probe:
          - fixed-value: {model: reg, value: 1.0}
          - localize: {anchor: x0.npy, weight: 0.5}
        temperature: 0.8
        sampler: {method: mala, warmup: 300, draws: 400, batch: 2}
        chains: 5
        """

    static let latentJob = """
        name: ambiguous
        seed: 9
        models: {clf: clf.safetensors, dec: dec.safetensors}
        space:
          latent: {decoder: dec}
        probe:
          - level-set: {model: clf, target: {ambiguous: [0, 2]}, sigma: 0.1}
        sampler: {method: hmc, warmup: 200, draws: 200, leapfrog-steps: 4}
        chains: 4
        """

    static func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a data-space job writes the run directory; the draws do not depend on --workers")
    func dataJob() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.dataJob, "job.yaml", in: dir)
        let one = dir.appendingPathComponent("one").path, two = dir.appendingPathComponent("two").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", one, "--quiet"])
        #expect(r1.status == 0, "\(r1.stderr)")
        let r2 = try CommandRunner.run(["run", job, "--workers", "3", "-o", two, "--quiet"])
        #expect(r2.status == 0, "\(r2.stderr)")
        for f in ["samples.npy", "stats.npy", "stats.csv", "outputs.npy"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: one + "/" + f))
            let b = try Data(contentsOf: URL(fileURLWithPath: two + "/" + f))
            #expect(a == b, "\(f) differs between 1 and 3 workers")
        }
        let chains = try NumPyArray.read(contentsOf: one + "/samples.npy")
        #expect(chains.shape == [2000, 3])
        #expect(try NumPyArray.read(contentsOf: one + "/stats.npy").shape == [2000, 9])
        // Bounds hold: x₀ ∈ (0, 1), x₂ ∈ (−2, 2).
        let v = chains.float64Values
        let inside = (0..<2000).allSatisfy { (i: Int) -> Bool in v[i * 3] > 0 && v[i * 3] < 1 && abs(v[i * 3 + 2]) < 2 }
        #expect(inside)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: one + "/summary.json"))) as? [String: Any])
        #expect(summary["chains"] as? Int == 5)
        #expect(summary["draws_per_chain"] as? Int == 400)
        let diagnostics = try #require(summary["diagnostics"] as? [String: Any])
        #expect((diagnostics["max_rhat"] as? Double ?? 9) < 1.05)
        let provenance = try #require(summary["provenance"] as? [String: Any])
        #expect((provenance["weights_sha256"] as? [String: String])?["reg"]?.count == 64)
        #expect(provenance["seed"] as? Int == 5)
        // `probefarm diagnose` judges the run directory as summary.json did: the same verdict and figures.
        let d = try CommandRunner.run(["diagnose", one, "--json"])
        #expect(d.status == 0 && d.stdout.contains("\"chains\":5"))
        let judged = try #require(try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])
        #expect(judged["converged"] as? Bool == summary["converged"] as? Bool)
        let rows = try #require(judged["quantities"] as? [[String: Any]])
        #expect(rows.filter { $0["judged"] as? Bool == true }.map { $0["name"] as? String } == ["x[0]", "x[1]", "x[2]"])
        #expect(rows.last?["name"] as? String == "G" && rows.last?["judged"] as? Bool == false)
        let worst = rows.filter { $0["judged"] as? Bool == true }.compactMap { $0["rhat"] as? Double }.max()
        // In a data space the run judged the unconstrained values, diagnose the float32 x of samples.npy: equal up to rounding.
        #expect(Tolerance.isClose(worst ?? 0, diagnostics["max_rhat"] as? Double ?? 9, relative: 1e-2), "\(String(describing: worst)) vs \(diagnostics)")
        // A second run into the same directory is refused, not overwritten.
        let again = try CommandRunner.run(["run", job, "-o", one, "--quiet"])
        #expect(again.status == 73 && again.stderr.contains("--overwrite"))
    }

    @Test("probefarm run puts the job's files into the workers' cache itself: they fetch nothing")
    func runFillsTheWorkersCache() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.dataJob, "job.yaml", in: dir)
        let cache = dir.appendingPathComponent("cache").path
        let r = try CommandRunner.run(["run", job, "--workers", "2", "-o", dir.appendingPathComponent("run").path,
                                       "--cache", cache, "--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("fetching"), "\(r.stderr)")
        for name in ["reg.safetensors", "x0.npy"] {
            let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
            let cached = try Data(contentsOf: URL(fileURLWithPath: cache).appendingPathComponent(SHA256.hex(bytes)))
            #expect([UInt8](cached) == bytes, "\(name)")
        }
        // A cache that cannot be made: one line naming it, exit 73, before any chain runs.
        let blocked = job + "/cache"
        let bad = try CommandRunner.run(["run", job, "-o", dir.appendingPathComponent("bad").path, "--cache", blocked, "--quiet"])
        #expect(bad.status == 73 && bad.stderr.contains(blocked), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad/journal.pfj").path))
    }

    @Test("a latent job writes latent.npy and model outputs")
    func latentJob() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.latentJob, "job.yaml", in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "-o", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try NumPyArray.read(contentsOf: out + "/latent.npy").shape == [800, 2])
        let outputs = try NumPyArray.read(contentsOf: out + "/outputs.npy")
        #expect(outputs.shape == [800, 3])
        // Probabilities sum to one.
        let p = outputs.float64Values
        let sums: [Double] = (0..<800).map { (i: Int) -> Double in p[3 * i] + p[3 * i + 1] + p[3 * i + 2] }
        #expect(sums.allSatisfy { abs($0 - 1) < 1e-5 })
        // diagnose judges z from latent.npy: exactly summary.json's verdict and figures.
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any])
        let diagnostics = try #require(summary["diagnostics"] as? [String: Any])
        let d = try CommandRunner.run(["diagnose", out, "--json"])
        let judged = try #require(try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])
        let rows = try #require(judged["quantities"] as? [[String: Any]])
        #expect(rows.map { $0["name"] as? String } == ["z[0]", "z[1]", "G"])
        #expect(judged["converged"] as? Bool == summary["converged"] as? Bool)
        #expect(rows.dropLast().compactMap { $0["rhat"] as? Double }.max() == diagnostics["max_rhat"] as? Double)
        #expect(rows.dropLast().compactMap { $0["ess_tail"] as? Double }.min() == diagnostics["min_ess_tail"] as? Double)
    }

    @Test("job errors name the key path and exit 78 before any chain runs", arguments: [
        ("models: {reg: reg.safetensors}", "models: {reg: reg.safetensors}\nbogus: 1", "bogus"),
        ("- fixed-value: {model: reg, value: 1.0}", "- fixed-value: {model: nope, value: 1.0}", "probe[0].fixed-value"),
        ("anchor: x0.npy", "anchor: missing.npy", "probe[1].localize.anchor"),
        ("dimension: 3, lower: [0, null, -2], upper: [1, null, 2]", "dimension: 4", "space.data.dimension"),
        ("method: mala", "method: slice", "sampler.method"),
        ("method: mala", "method: nuts, metric: full", "sampler.metric"),
        ("method: mala", "method: nuts, max-tree-depth: 16", "sampler.max-tree-depth"),
        ("method: mala", "method: nuts, max-tree-depth: 0", "sampler.max-tree-depth"),
        ("method: mala", "method: nuts, tempering: {replicas: 1}", "sampler.tempering.replicas"),
        ("method: mala", "method: nuts, tempering: {replicas: 4, max-temperature: 1}", "sampler.tempering.max-temperature"),
        ("method: mala", "method: nuts, tempering: {replica: 4}", "sampler.tempering.replica"),
        ("method: mala", "method: de", "sampler.batch"),
        ("method: mala, warmup: 300, draws: 400, batch: 2", "method: de, warmup: 300, draws: 400, batch: 4", "chains"),
        ("- fixed-value: {model: reg, value: 1.0}", "- fixed-value: {model: reg, valu: 1.0}", "probe[0].fixed-value.valu"),
        ("models: {reg: reg.safetensors}", "models: {reg: multi.safetensors}", "has one output, this one has 3"),
        ("chains: 5", "chains: 9223372036854775807", "chains"),
        ("chains: 5", "chains: 1000000000", "chains"),
        ("batch: 2", "batch: 2, init-candidates: 1000000000", "sampler.init-candidates"),
        ("draws: 400", "draws: 1000000000000", "sampler.draws"),
        ("method: mala", "method: hmc, leapfrog-steps: 1000000000", "sampler.leapfrog-steps"),
        ("temperature: 0.8", "temperature: .inf", "temperature"),
        ("temperature: 0.8", "temperature: .nan", "temperature"),
        ("chains: 5", "chains: 5\nstop: {rhat: 0.5}", "stop.rhat"),
        ("chains: 5", "chains: 5\nstop: {ess-bulk: -1}", "stop.ess-bulk"),
        ("value: 1.0}", "value: .inf}", "probe[0].fixed-value.value"),
        ("- fixed-value: {model: reg, value: 1.0}", "- contrast: {models: [reg, reg], scale: 0}", "probe[0].contrast.scale"),
    ])
    func jobErrors(_ from: String, _ to: String, _ keyPath: String) throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.dataJob.replacingOccurrences(of: from, with: to), "job.yaml", in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "-o", out, "--quiet"])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains(keyPath), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: out + "/summary.json"))
    }

    @Test("--log-format json: every farm event is one JSON object per line, with the worker as a field")
    func jsonLogs() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.dataJob, "job.yaml", in: dir)
        let r = try CommandRunner.run(["run", job, "-o", dir.appendingPathComponent("run").path, "--workers", "2", "-v", "--log-format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let events = r.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(events.count == r.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }.count, "every JSON line parses")
        let joined = events.filter { $0["event"] as? String == "joined" }
        #expect(Set(joined.compactMap { $0["worker"] as? String }) == ["local-1", "local-2"], "\(r.stderr.prefix(1500))")
        #expect(events.allSatisfy { $0["time"] is String && $0["level"] is String && $0["message"] is String })
    }

    @Test("job files that would hang or exhaust memory are refused at once: alias bombs, deep nesting, FIFOs, UTF-16")
    func hostileJobFiles() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Nine levels of ten aliases each: 10⁹ values if expanded.
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let deep = "name: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "\n"
        let cases: [(String, String, Int32)] = [
            (Self.dataJob + "\n" + bomb, "expands to more than", 78),
            (deep, "nested deeper than", 78),
        ]
        for (text, message, code) in cases {
            let job = try Self.write(text, "job.yaml", in: dir)
            let t0 = Date()
            let r = try CommandRunner.run(["run", job, "-o", dir.appendingPathComponent("run").path, "--quiet"])
            #expect(r.status == code && r.stderr.contains(message), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1)
            #expect(Date().timeIntervalSince(t0) < 10, "refused at once")
        }
        let utf16 = dir.appendingPathComponent("utf16.yaml").path
        try #require(Self.dataJob.data(using: .utf16)).write(to: URL(fileURLWithPath: utf16))
        let r16 = try CommandRunner.run(["run", utf16, "--quiet"])
        #expect(r16.status == 78 && r16.stderr.contains("UTF-16"), "\(r16.stderr)")
        let fifo = dir.appendingPathComponent("fifo.yaml").path
        try #require(mkfifo(fifo, 0o644) == 0)
        let rf = try CommandRunner.run(["run", fifo, "--quiet"])
        #expect(rf.status == 66 && rf.stderr.contains("not a regular file"), "\(rf.stderr)")
    }

    @Test("a job as a user writes it (no method named) converges on a badly scaled, correlated Gaussian without extending, with the closed form's moments")
    func defaultSamplerOnGaussian() throws {
        // G(x) = (wᵀx + b − t)² + Σ fᵢ(xᵢ − aᵢ)², τ = 1: x ~ N(A⁻¹(w(t − b) + Fa), ½A⁻¹), A = wwᵀ + F.
        // Standard deviations from 0.01 to 100 (fᵢ = 1/(2sdᵢ²)) and wᵢ = √fᵢ: in the scaled
        // coordinates a rank-one correlation with condition number 21.
        let d = 20, b = 0.3, t = 1.0
        let sd = (0..<d).map { pow(10, -2 + 4 * Double($0) / Double(d - 1)) }
        let f = sd.map { 1 / (2 * $0 * $0) }
        let w = f.map { $0.squareRoot() }
        let a = (0..<d).map { Double($0 % 5) * 0.1 * sd[$0] }
        let dir = try Fixtures.temporaryDirectory("probefarm-gauss")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Model.save(SmallModels.linear(w.map(Float.init), bias: Float(b)),
                       architecture: Architecture(input: [d], output: .value, layers: [LayerSpec.linear("weight", bias: "bias")]),
                       to: dir.appendingPathComponent("reg.safetensors").path)
        try NumPyArray(shape: [d], float64: a).write(to: dir.appendingPathComponent("a.npy").path)
        let job = try Self.write("""
            name: gaussian
            seed: 11
            models: {reg: reg.safetensors}
            space: {data: {dimension: \(d)}}
            probe:
              - fixed-value: {model: reg, value: \(t)}
              - localize: {anchor: a.npy, weight: 1, feature-weights: [\(f.map { "\($0)" }.joined(separator: ", "))]}
            sampler: {warmup: 1000, draws: 1000}
            chains: 8
            stop: {rhat: 1.01, ess-bulk: 400, ess-tail: 400}
            """, "job.yaml", in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "--workers", "2", "-o", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as! [String: Any]
        #expect(summary["converged"] as? Bool == true, "\(summary["diagonstics"] ?? "")")
        #expect(summary["draws_per_chain"] as? Int == 1000)
        let sampler = summary["sampler"] as! [String: Any]
        #expect(sampler["method"] as? String == "nuts" && sampler["metric"] as? String == "diagonal")
        #expect((sampler["mean_tree_depth"] as? [Double])?.count == 8)
        #expect((summary["gradient_evaluations"] as? Int ?? 0) > 16000)
        #expect(try NumPyArray.read(contentsOf: out + "/stats.npy").shape == [8000, 9])
        // Closed form by Sherman–Morrison: A⁻¹ = F⁻¹ − F⁻¹wwᵀF⁻¹ / (1 + wᵀF⁻¹w).
        let fw = (0..<d).map { w[$0] / f[$0] }
        let denominator = 1 + (0..<d).reduce(0.0) { $0 + w[$1] * fw[$1] }
        let rhs = (0..<d).map { w[$0] * (t - b) + f[$0] * a[$0] }
        let fr = (0..<d).map { rhs[$0] / f[$0] }
        let wfr = (0..<d).reduce(0.0) { $0 + w[$1] * fr[$1] }
        let mean = (0..<d).map { fr[$0] - fw[$0] * wfr / denominator }
        let variance = (0..<d).map { 0.5 * (1 / f[$0] - fw[$0] * fw[$0] / denominator) }
        let x = try NumPyArray.read(contentsOf: out + "/samples.npy").float64Values
        let draws = (0..<8).map { c in Array(x[(c * 1000 * d)..<((c + 1) * 1000 * d)]) }
        let failures = MomentCheck.failures(draws, dimension: d, means: mean, variances: variance)
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test("a tempered NUTS job: the same draws with 1 and 3 workers (replicas travel in checkpoints), swap rates in summary.json")
    func temperedJob() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.dataJob.replacingOccurrences(
            of: "method: mala, warmup: 300, draws: 400, batch: 2",
            with: "method: nuts, warmup: 300, draws: 400, batch: 2, tempering: {replicas: 3, max-temperature: 10}"), "job.yaml", in: dir)
        let one = dir.appendingPathComponent("one").path, three = dir.appendingPathComponent("three").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", one, "--quiet", "--segment", "70"])
        #expect(r1.status == 0, "\(r1.stderr)")
        let r3 = try CommandRunner.run(["run", job, "--workers", "3", "-o", three, "--quiet", "--segment", "45"])
        #expect(r3.status == 0, "\(r3.stderr)")
        for f in ["samples.npy", "stats.npy"] {
            #expect(try Data(contentsOf: URL(fileURLWithPath: one + "/" + f)) == Data(contentsOf: URL(fileURLWithPath: three + "/" + f)), "\(f)")
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: one + "/summary.json"))) as! [String: Any]
        let tempering = (summary["sampler"] as! [String: Any])["tempering"] as! [String: Any]
        let rates = tempering["swap_rates"] as! [[Double]]
        #expect(rates.count == 5 && rates.allSatisfy { $0.count == 2 && $0.allSatisfy { $0 > 0 && $0 <= 1 } }, "\(rates)")
        #expect((tempering["betas"] as! [[Double]]).allSatisfy { $0.first == 1 && abs($0.last! - 0.1) < 1e-9 })
    }

    @Test("a gradient-free job (differential evolution) runs through the farm: same draws with 1 and 2 workers")
    func differentialEvolutionJob() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.dataJob.replacingOccurrences(of: "method: mala, warmup: 300, draws: 400, batch: 2",
                                                                   with: "method: de, warmup: 300, draws: 400, batch: 4")
                                     .replacingOccurrences(of: "chains: 5", with: "chains: 8"), "job.yaml", in: dir)
        let one = dir.appendingPathComponent("one").path, two = dir.appendingPathComponent("two").path
        let r1 = try CommandRunner.run(["run", job, "--workers", "1", "-o", one, "--quiet"])
        #expect(r1.status == 0, "\(r1.stderr)")
        let r2 = try CommandRunner.run(["run", job, "--workers", "2", "-o", two, "--quiet", "--segment", "60"])
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: one + "/samples.npy")) == Data(contentsOf: URL(fileURLWithPath: two + "/samples.npy")))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: one + "/summary.json"))) as! [String: Any]
        #expect((summary["sampler"] as! [String: Any])["method"] as? String == "de")
        #expect((summary["acceptance_rate"] as? Double ?? 0) > 0.1)
    }

    @Test("a dense metric on a space too large for one is refused, suggesting diagonal")
    func denseTooLarge() throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let net = SmallModels.linear(Array(repeating: 0.1, count: 300), bias: 0)
        try Model.save(net, architecture: Architecture(input: [300], output: .value, layers: [LayerSpec.linear("weight", bias: "bias")]),
                       to: dir.appendingPathComponent("wide.safetensors").path)
        let job = try Self.write("""
            name: wide
            models: {m: wide.safetensors}
            space: {data: {dimension: 300}}
            probe: [{fixed-value: {model: m, value: 0}}]
            sampler: {metric: dense}
            """, "job.yaml", in: dir)
        let r = try CommandRunner.run(["run", job, "-o", dir.appendingPathComponent("run").path, "--quiet"])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains("sampler.metric") && r.stderr.contains("diagonal"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test("a class label out of range and a latent/classifier size mismatch are refused", arguments: [
        ("target: {ambiguous: [0, 2]}", "target: {ambiguous: [0, 3]}", "class 3 is outside"),
        ("target: {ambiguous: [0, 2]}", "target: {ambiguous: [0, Bag]}", "'Bag' is a class name, but the model has no class names"),
        ("clf: clf.safetensors, dec: dec.safetensors", "clf: clf.safetensors, dec: reg.safetensors", "space.latent.decoder"),
    ])
    func latentErrors(_ from: String, _ to: String, _ words: String) throws {
        let dir = try Self.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.write(Self.latentJob.replacingOccurrences(of: from, with: to), "job.yaml", in: dir)
        let r = try CommandRunner.run(["run", job, "-o", dir.appendingPathComponent("run").path, "--quiet"])
        #expect(r.status == 78, "\(r.stderr)")
        #expect(r.stderr.contains(words), "\(r.stderr)")
    }
}
