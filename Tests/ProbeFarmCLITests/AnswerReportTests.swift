import Foundation
import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// The answer a person reads (JOBSPEC §4): summary.json's answer against the reference data,
/// inference_data.nc as ArviZ reads it, report.html as Chromium renders it. The references
/// are ArviZ and numpy (Scripts/fixtures/check_run_directory.py), ncdump and a real browser.
@Suite(.serialized)
struct AnswerReportTests {
    static let root = Fixtures.repositoryRoot
    static let python = root.appendingPathComponent(".venv-fixtures/bin/python")
    static let checker = root.appendingPathComponent("Scripts/fixtures/check_run_directory.py").path

    /// The shipped Fashion CNN and MLP, probed in the shipped VAE's latent space, with the
    /// shipped slice of the Fashion-MNIST test set as reference data (IDX files).
    static func fashionJob(in dir: URL, thin: Int = 1) throws -> String {
        let models = root.appendingPathComponent("Deploy/models").path, data = root.appendingPathComponent("Deploy/data").path
        return try RunCommandTests.write("""
            name: bags
            seed: 11
            models:
              cnn: \(models)/fashion-cnn.safetensors
              mlp: \(models)/fashion-mlp.safetensors
              decoder: \(models)/fashion-vae-decoder.safetensors
            space:
              latent: {decoder: decoder}
            reference: {idx: \(data)/fashion-test-1k-images-idx3-ubyte, labels: \(data)/fashion-test-1k-labels-idx1-ubyte, limit: 400}
            probe:
              - level-set: {model: cnn, target: {confident: 8}, sigma: 0.05}
              - contrast: {models: [cnn, mlp], weight: 0.1}
            sampler: {method: mala, warmup: 150, draws: 160, batch: 4, thin: \(thin)}
            chains: 4
            """, "bags.yaml", in: dir)
    }

    static func summary(_ dir: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json"))) as? [String: Any])
    }

    static func check(_ run: String) throws -> CommandRunner.Result {
        try CommandRunner.run(python, [checker, run])
    }

    static func chromium(_ arguments: [String]) throws -> CommandRunner.Result {
        try CommandRunner.run(URL(fileURLWithPath: "/usr/bin/chromium"),
                              ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"] + arguments)
    }

    @Test("a latent job's answer and inference_data.nc agree with numpy and ArviZ; report.html renders in Chromium")
    func latentAnswer() throws {
        let dir = try Fixtures.temporaryDirectory("probefarm-answer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try Self.fashionJob(in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "-o", out, "--workers", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("inside the level set") && r.stdout.contains("(reference "), "\(r.stdout)")
        #expect(!r.stdout.contains("warning: most draws"), "the draws are in the level set: \(r.stdout)")
        #expect(!FileManager.default.fileExists(atPath: out + "/chains.npy"))
        let s = try Self.summary(out)
        let answer = try #require(s["answer"] as? [String: Any])
        let reference = try #require(answer["reference"] as? [String: Any])
        #expect(reference["count"] as? Int == 400)
        // Reference accuracy of the shipped CNN on these items: it was trained to ~91 %.
        let cnn = try #require((reference["models"] as? [String: Any])?["cnn"] as? [String: Any])
        #expect((cnn["accuracy"] as? Double ?? 0) > 0.85)
        let level = try #require((reference["terms"] as? [[String: Any]])?.first)
        #expect((level["items"] as? Int ?? 0) > 20, "the reference's bags: \(level)")

        // ncdump: groups, dims and ArviZ's names.
        let dump = try CommandRunner.run(URL(fileURLWithPath: "/usr/bin/ncdump"), ["-h", out + "/inference_data.nc"])
        #expect(dump.status == 0, "\(dump.stderr)")
        for fragment in ["group: posterior", "double z(chain, draw, z_dim_0)", "double G(chain, draw)", "float cnn(chain, draw, cnn_class)",
                         "group: sample_stats", "double lp(chain, draw)", "double acceptance_rate(chain, draw)", "double step_size(chain, draw)",
                         "byte diverging(chain, draw)", "chain = 4", "draw = 160", ":job_sha256 = "] {
            #expect(dump.stdout.contains(fragment), "ncdump lacks \(fragment)")
        }
        // ArviZ and numpy: every diagnostic and answer figure.
        let c = try Self.check(out)
        #expect(c.status == 0 && c.stdout.hasPrefix("ok:"), "\(c.stdout)\(c.stderr)")

        // `probefarm diagnose inference_data.nc` judges what summary.json judged, with the same figures.
        let nc = try CommandRunner.run(["diagnose", out + "/inference_data.nc", "--json"])
        #expect(nc.status == 0, "\(nc.stderr)")
        let judged = try #require(try JSONSerialization.jsonObject(with: Data(nc.stdout.utf8)) as? [String: Any])
        let diagnostics = try #require(s["diagnostics"] as? [String: Any])
        #expect(judged["converged"] as? Bool == s["converged"] as? Bool)
        let rows = try #require(judged["quantities"] as? [[String: Any]])
        #expect(rows.filter { $0["judged"] as? Bool == true }.count == 10 && rows.last?["name"] as? String == "G")
        let worst = rows.filter { $0["judged"] as? Bool == true }.compactMap { $0["rhat"] as? Double }.max() ?? 0
        #expect(Tolerance.isClose(worst, diagnostics["max_rhat"] as? Double ?? 0, relative: 1e-12), "\(worst) vs \(diagnostics["max_rhat"] ?? "")")

        // Negative control: a figure changed by 0.02 is caught.
        let bad = dir.appendingPathComponent("bad").path
        try FileManager.default.copyItem(atPath: out, toPath: bad)
        var tampered = s
        var draws = try #require(answer["draws"] as? [String: Any])
        var terms = try #require(draws["terms"] as? [[String: Any]])
        terms[1]["disagreement"] = (terms[1]["disagreement"] as? Double ?? 0) + 0.02
        draws["terms"] = terms
        tampered["answer"] = answer.merging(["draws": draws]) { $1 }
        try JSONSerialization.data(withJSONObject: tampered).write(to: URL(fileURLWithPath: bad + "/summary.json"))
        let caught = try Self.check(bad)
        #expect(caught.status == 1 && caught.stdout.contains("disagreement"), "\(caught.stdout)")

        // The report, as a person sees it: Chromium's DOM holds every section and the draws' images.
        let dom = try Self.chromium(["--dump-dom", out + "/report.html"])
        #expect(dom.status == 0, "\(dom.stderr)")
        for id in ["question", "verdict", "answer", "metrics", "diagnostics", "densities", "provenance"] {
            #expect(dom.stdout.contains("id=\"\(id)\""), "report lacks section \(id)")
        }
        #expect(dom.stdout.contains("cnn is sure x is class 8"))
        #expect(dom.stdout.components(separatedBy: "<img alt=\"draw ").count - 1 == 24)
        #expect(dom.stdout.contains("rank plot") && dom.stdout.contains("trace"))
        #expect(dom.stdout.contains("fashion-test-1k-images-idx3-ubyte"))
        // The verdict on the page is summary.json's.
        #expect(dom.stdout.contains((s["converged"] as? Bool ?? false) ? "✓ converged" : "✗ not converged"))
        #expect(!dom.stdout.contains("http://") || !dom.stdout.contains("src=\"http"), "the report loads nothing from the network")
        // Rendered: a screenshot that is not blank (a PNG of more than a few kilobytes).
        let png = dir.appendingPathComponent("report.png").path
        let shot = try Self.chromium(["--window-size=1200,2400", "--screenshot=\(png)", out + "/report.html"])
        #expect(shot.status == 0, "\(shot.stderr)")
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(size > 50_000, "screenshot of \(size) bytes")

        // `probefarm report` rewrites the page from the files alone; a damaged file is named.
        try FileManager.default.removeItem(atPath: out + "/report.html")
        let again = try CommandRunner.run(["report", out])
        #expect(again.status == 0 && FileManager.default.fileExists(atPath: out + "/report.html"), "\(again.stderr)")
        try Data("not numpy".utf8).write(to: URL(fileURLWithPath: bad + "/outputs.npy"))
        let broken = try CommandRunner.run(["report", bad])
        #expect(broken.status == 65 && broken.stderr.contains("outputs.npy"), "\(broken.stderr)")
    }

    @Test("sampler.thin keeps every k-th draw in the files; the stop rule judges all draws, G and the answer the kept ones")
    func thinning() throws {
        let dir = try Fixtures.temporaryDirectory("probefarm-thin")
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = dir.appendingPathComponent("one").path, four = dir.appendingPathComponent("four").path
        let r1 = try CommandRunner.run(["run", try Self.fashionJob(in: dir), "-o", one, "--quiet"])
        #expect(r1.status == 0, "\(r1.stderr)")
        let r4 = try CommandRunner.run(["run", try Self.fashionJob(in: dir, thin: 4), "-o", four, "--quiet"])
        #expect(r4.status == 0, "\(r4.stderr)")
        let all = try NumPyArray.read(contentsOf: one + "/latent.npy"), kept = try NumPyArray.read(contentsOf: four + "/latent.npy")
        #expect(all.shape == [640, 10] && kept.shape == [160, 10])
        // Rows 0, 4, 8, … of each chain.
        let a = all.float64Values, k = kept.float64Values
        var expected = [Double]()
        for c in 0..<4 {
            for i in stride(from: 0, to: 160, by: 4) {
                let row = c * 160 + i
                expected += a[(row * 10)..<(row * 10 + 10)]
            }
        }
        #expect(k == expected)
        #expect(try NumPyArray.read(contentsOf: four + "/samples.npy").shape == [160, 784])
        #expect(try NumPyArray.read(contentsOf: four + "/stats.npy").shape == [160, 9])
        let s1 = try Self.summary(one), s4 = try Self.summary(four)
        #expect(s4["thin"] as? Int == 4 && s4["draws_written_per_chain"] as? Int == 40)
        // The stop rule's quantities (z) are judged on every draw: the same verdict and figures.
        let d1 = try #require(s1["diagnostics"] as? [String: Any]), d4 = try #require(s4["diagnostics"] as? [String: Any])
        for key in ["max_rhat", "min_ess_bulk", "min_ess_tail"] { #expect(d1[key] as? Double == d4[key] as? Double, "\(key)") }
        #expect(s1["converged"] as? Bool == s4["converged"] as? Bool)
        let z1 = (d1["quantities"] as? [[String: Any]] ?? []).filter { $0["name"] as? String != "G" }
        let z4 = (d4["quantities"] as? [[String: Any]] ?? []).filter { $0["name"] as? String != "G" }
        #expect(z1.count == 10 && z1.map { NSDictionary(dictionary: $0) } == z4.map { NSDictionary(dictionary: $0) })
        // G and the answer are of the kept draws: numpy and ArviZ recompute them from the files.
        let c = try Self.check(four)
        #expect(c.status == 0 && c.stdout.hasPrefix("ok:"), "\(c.stdout)\(c.stderr)")
        #expect(((s4["answer"] as? [String: Any])?["draws"] as? [String: Any])?["count"] as? Int == 160)
        let dump = try CommandRunner.run(URL(fileURLWithPath: "/usr/bin/ncdump"), ["-h", four + "/inference_data.nc"])
        #expect(dump.stdout.contains("draw = 40 ;"))
    }

    @Test("a data-space counterfactual: proximity, sparsity, diversity and the reference's figures agree with numpy; the report's table marks changed features")
    func counterfactualAnswer() throws {
        let dir = try RunCommandTests.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Reference rows for the 3-input models, as a CSV with a header.
        var csv = "a,b,c\n"
        for i in 0..<50 { csv += "\(Double(i % 10) / 10),\(Double(i % 7) / 7 - 0.5),\(Double(i % 5) / 5 - 1)\n" }
        try csv.write(to: dir.appendingPathComponent("ref.csv"), atomically: true, encoding: .utf8)
        let job = try RunCommandTests.write(RunCommandTests.dataJob + "\nreference: {csv: ref.csv}\n", "job.yaml", in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "-o", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try Self.check(out)
        #expect(c.status == 0 && c.stdout.hasPrefix("ok:"), "\(c.stdout)\(c.stderr)")
        let terms = try #require(((try Self.summary(out)["answer"] as? [String: Any])?["draws"] as? [String: Any])?["terms"] as? [[String: Any]])
        #expect(terms[1]["proximity"] != nil && terms[1]["sparsity"] != nil && terms[1]["diversity"] != nil)
        let dom = try Self.chromium(["--dump-dom", out + "/report.html"])
        #expect(dom.stdout.contains("<tr class=\"anchor\"><th>anchor</th>"))
        #expect(dom.stdout.contains("class=\"changed\""))
    }

    @Test("a tabular model: labels by class name, reference rows from a CSV encoded by the model's features")
    func classNames() throws {
        let dir = try Fixtures.temporaryDirectory("probefarm-names")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Self.root.appendingPathComponent("Deploy/models/adult-mlp.safetensors").path
        let csv = Fixtures.url("ProbeFarmCLITests", "adult-mini.csv").path
        let text = """
            name: rich
            models: {mlp: \(model)}
            space: {data: {dimension: 108, lower: 0, upper: 1}}
            reference: {csv: \(csv)}
            probe: [{fixed-label: {model: mlp, label: ">50K"}}]
            sampler: {method: mala, warmup: 100, draws: 100}
            chains: 2
            """
        let job = try RunCommandTests.write(text, "rich.yaml", in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", job, "-o", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try Self.summary(out)
        let words = ((s["question"] as? [String: Any])?["terms"] as? [[String: Any]])?.first?["words"] as? String
        #expect(words == "mlp assigns x class 1 (>50K)")
        // The CSV's income column is the label: the reference's validity is the share the MLP calls >50K.
        let reference = try #require((s["answer"] as? [String: Any])?["reference"] as? [String: Any])
        #expect(reference["count"] as? Int == 400)
        let accuracy = ((reference["models"] as? [String: Any])?["mlp"] as? [String: Any])?["accuracy"] as? Double ?? 0
        #expect(accuracy > 0.75, "the shipped Adult MLP on its own data: \(accuracy)")
        // The report shows the draws as records: one column per feature, categories by name.
        let dom = try Self.chromium(["--dump-dom", out + "/report.html"])
        #expect(dom.stdout.contains("<th>workclass</th>") && dom.stdout.contains("<th>native-country</th>"), "records in the data's names")
        #expect(!dom.stdout.contains("<th>workclass=Private</th>"))
        let bad = try RunCommandTests.write(text.replacingOccurrences(of: "\">50K\"", with: "rich"), "bad.yaml", in: dir)
        let refused = try CommandRunner.run(["run", bad, "-o", dir.appendingPathComponent("bad").path, "--quiet"])
        #expect(refused.status == 78 && refused.stderr.contains("probe[0].fixed-label.label: 'rich' is not one of the model's classes (<=50K, >50K)"), "\(refused.stderr)")
    }

    @Test("features fixed by name in the data's units, start and anchor from CSV rows")
    func namedFeatures() throws {
        let dir = try Fixtures.temporaryDirectory("probefarm-named")
        defer { try? FileManager.default.removeItem(at: dir) }
        let modelPath = Self.root.appendingPathComponent("Deploy/models/adult-mlp.safetensors").path
        let csv = Fixtures.url("ProbeFarmCLITests", "adult-mini.csv").path
        let e = try JSONDecoder().decode(FeatureEncoding.self, from: Data(try #require(try Model.load(modelPath).metadata["probefarm.features"]).utf8))
        let ranges = e.columnRanges
        func job(_ fixed: String, start: Bool = true) -> String {
            """
            name: named
            models: {mlp: \(modelPath)}
            space: {data: {dimension: 108, lower: 0, upper: 1, fixed: \(fixed)\(start ? ", start: {csv: \(csv), row: 1}" : "")}}
            probe:
              - fixed-label: {model: mlp, label: ">50K"}
              - localize: {anchor: {csv: \(csv), row: 1}, weight: 2}
            sampler: {method: mala, warmup: 60, draws: 60}
            chains: 2
            """
        }
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", try RunCommandTests.write(job("{age: 50, sex: Female, native-country=United-States: 1}"), "a.yaml", in: dir), "-o", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let x = try NumPyArray.read(contentsOf: out + "/samples.npy")
        let v = x.float64Values, n = x.shape[0]
        let age = try #require(e.features.first { $0.name == "age" })
        let sex = try #require(e.features.first { $0.name == "sex" }?.categories)
        let us = try #require(e.columnNames.firstIndex(of: "native-country=United-States"))
        for b in 0..<n {
            #expect(abs(v[b * 108 + ranges["age"]!.lowerBound] - (50 - age.min!) / (age.max! - age.min!)) < 1e-6)
            #expect(ranges["sex"]!.map { v[b * 108 + $0] } == sex.map { $0 == "Female" ? 1 : 0 })
            #expect(v[b * 108 + us] == 1)
        }
        // The list form fixes features at the start's values (the CSV's second row: a 50-year-old white man).
        let listed = dir.appendingPathComponent("listed").path
        let l = try CommandRunner.run(["run", try RunCommandTests.write(job("[age, race]"), "b.yaml", in: dir), "-o", listed, "--quiet"])
        #expect(l.status == 0, "\(l.stderr)")
        let w = try NumPyArray.read(contentsOf: listed + "/samples.npy").float64Values
        #expect(abs(w[ranges["age"]!.lowerBound] - (50 - age.min!) / (age.max! - age.min!)) < 1e-6)
        #expect(w[ranges["race"]!.lowerBound + (e.features.first { $0.name == "race" }!.categories!.firstIndex(of: "White")!)] == 1)
        let terms = try #require(((try Self.summary(listed)["answer"] as? [String: Any])?["draws"] as? [String: Any])?["terms"] as? [[String: Any]])
        #expect(terms[1]["proximity"] != nil, "the anchor from the CSV row is used")
        for (fixed, start, says) in [("{agee: 3}", true, "space.data.fixed.agee: is not a feature of the model (features: age, workclass"),
                                     ("{sex: Other}", true, "'Other' is not a category of sex (Female, Male)"),
                                     ("[age]", false, "space.data.fixed.age: is fixed at the start point's value, but space.data.start is not given")] {
            let bad = try CommandRunner.run(["run", try RunCommandTests.write(job(fixed, start: start), "bad.yaml", in: dir), "-o", dir.appendingPathComponent("bad").path, "--quiet"])
            #expect(bad.status == 78 && bad.stderr.contains(says), "\(fixed): \(bad.stderr)")
        }
    }

    @Test("a level set no draw reaches is said in one line and on the report")
    func unreachableLevelSet() throws {
        let dir = try RunCommandTests.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        // p₀ = p₁ = 1 at once: no input is in this level set.
        let text = RunCommandTests.latentJob.replacingOccurrences(of: "target: {ambiguous: [0, 2]}", with: "target: {probabilities: {0: 1, 1: 1}}")
        let out = dir.appendingPathComponent("run").path
        let r = try CommandRunner.run(["run", try RunCommandTests.write(text, "job.yaml", in: dir), "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("inside the level set 0.0 %") && r.stdout.contains("warning: most draws are outside probe[0].level-set"), "\(r.stdout)")
        let dom = try Self.chromium(["--dump-dom", out + "/report.html"])
        #expect(dom.stdout.contains("0 % of the draws are in probe[0].level-set's level set"))
        // (The Fashion job of latentAnswer, whose draws are in its level set, prints no warning.)
    }

    @Test("malformed reference data is refused before any chain runs, naming the file (exit 65/66/78)")
    func malformedReference() throws {
        let dir = try RunCommandTests.workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        try NumPyArray(shape: [10, 4], float64: Array(repeating: 0.5, count: 40)).write(to: dir.appendingPathComponent("wide.npy").path)
        try NumPyArray(shape: [10, 3], float64: Array(repeating: 0.5, count: 30)).write(to: dir.appendingPathComponent("x.npy").path)
        try NumPyArray(shape: [9], float64: Array(repeating: 1, count: 9)).write(to: dir.appendingPathComponent("short.npy").path)
        try "a,b,c\n0.1,0.2,0.3\n0.4,oops,0.6\n".write(to: dir.appendingPathComponent("text.csv"), atomically: true, encoding: .utf8)
        try Data([0, 0, 9, 3, 0, 0, 0, 1]).write(to: dir.appendingPathComponent("bad.idx"))
        try Data([0, 0, 8, 1, 0, 0, 0, 1, 0]).write(to: dir.appendingPathComponent("labels.idx"))
        let cases: [(reference: String, status: Int32, says: String)] = [
            ("{npy: wide.npy}", 65, "wide.npy: has shape [10, 4]"),
            ("{npy: x.npy, labels: short.npy}", 65, "short.npy: has shape [9]"),
            ("{npy: x.npy, labels: missing.npy}", 66, "missing.npy: no such file"),
            ("{csv: text.csv}", 65, "line 3, column 'b': 'oops' is not a number"),
            ("{idx: bad.idx, labels: labels.idx}", 65, "bad.idx: not an unsigned-byte IDX file (bad magic)"),
            ("{idx: bad.idx}", 78, "reference.labels: missing"),
            ("{npy: x.npy, csv: text.csv}", 78, "reference: names npy and csv"),
        ]
        for (i, c) in cases.enumerated() {
            let job = try RunCommandTests.write(RunCommandTests.dataJob + "\nreference: \(c.reference)\n", "job\(i).yaml", in: dir)
            let out = dir.appendingPathComponent("run\(i)").path
            let r = try CommandRunner.run(["run", job, "-o", out, "--quiet"])
            #expect(r.status == c.status && r.stderr.contains(c.says), "\(c.reference): \(r.status) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out + "/samples.npy"), "no chain ran")
        }
    }
}
