import Foundation
import TensorCore

/// report.html (JOBSPEC §4): one self-contained page (inline CSS, SVG and PNG; no script,
/// no network) made from the run directory's files alone, so `probefarm report` can
/// rewrite it at any time: the question, the verdict and why, the answer, its metrics
/// beside the reference data's, diagnostics with trace and rank plots, densities.
public enum Report {
    public static let fileName = "report.html"

    /// Why a report could not be made: the file at fault and what is wrong.
    public struct Failure: ProbeFarmError {
        public var description: String
        public var sysexit: Sysexit
    }

    /// Writes RUN_DIR/report.html (atomically) and returns its path.
    @discardableResult
    public static func write(runDirectory: String) throws -> String {
        let page = try html(run: Run(directory: runDirectory))
        let path = (runDirectory as NSString).appendingPathComponent(fileName)
        try AtomicFile.write(Data(page.utf8), to: path)
        return path
    }

    /// The run directory's files, as the report reads them.
    struct Run {
        var directory: String
        var summary: [String: Any]
        var samples: NumPyArray?
        var latent: NumPyArray?
        var outputs: NumPyArray?
        var stats: NumPyArray?
        var referenceOutputs: NumPyArray?
        var referenceSamples: NumPyArray?
        var referenceLabels: [Int]?

        init(directory: String) throws {
            self.directory = directory
            let path = (directory as NSString).appendingPathComponent("summary.json")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Failure(description: "\(path): no summary.json (is \(directory) a run directory?)", sysexit: .noInput)
            }
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw Failure(description: "\(path): not a JSON object", sysexit: .dataError)
            }
            summary = json
            func read(_ name: String) throws -> NumPyArray? {
                let p = (directory as NSString).appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: p) else { return nil }
                do { return try NumPyArray.read(contentsOf: p) } catch {
                    throw Failure(description: "\(p): \(error)", sysexit: .dataError)
                }
            }
            samples = try read("samples.npy")
            latent = try read("latent.npy")
            outputs = try read("outputs.npy")
            stats = try read("stats.npy")
            referenceOutputs = try read("reference_outputs.npy")
            referenceSamples = try read("reference_samples.npy")
            referenceLabels = try read("reference_labels.npy")?.float64Values.map { Int($0) }
            let rows = chains * drawsWritten
            for (name, a) in [("samples.npy", samples), ("latent.npy", latent), ("outputs.npy", outputs), ("stats.npy", stats)] {
                if let a, a.shape.first != rows {
                    throw Failure(description: "\((directory as NSString).appendingPathComponent(name)): \(a.shape[0]) rows, summary.json says \(chains) chains × \(drawsWritten) draws", sysexit: .dataError)
                }
            }
        }

        var chains: Int { summary["chains"] as? Int ?? 0 }
        var drawsWritten: Int { summary["draws_written_per_chain"] as? Int ?? summary["draws_per_chain"] as? Int ?? 0 }
        var dataShape: [Int] { summary["data_shape"] as? [Int] ?? [] }
        var outputModels: [(model: String, columns: Range<Int>, classifier: Bool)] {
            (summary["outputs"] as? [[String: Any]] ?? []).compactMap { o in
                guard let m = o["model"] as? String, let c = o["columns"] as? [Int], c.count == 2 else { return nil }
                return (m, c[0]..<c[1], (o["kind"] as? String) == "probabilities")
            }
        }
        var outputWidth: Int { outputs?.shape.last ?? 0 }

        /// Column `j` of a 2-d array split by chain (chain-major rows).
        func perChain(_ a: NumPyArray, column j: Int) -> [[Double]] {
            let width = a.shape.count > 1 ? a.shape[1] : 1, n = drawsWritten
            let v = a.float64Values
            return (0..<chains).map { c in (0..<n).map { v[(c * n + $0) * width + j] } }
        }
    }

    static func html(run: Run) throws -> String {
        let s = run.summary
        let name = SVGPlot.escape(s["name"] as? String ?? "run")
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(name) — ProbeFarm report</title>
            <style>\(css)</style></head><body><main>
            <header><p class="kicker">ProbeFarm report</p><h1>\(name)</h1></header>

            """
        page += questionSection(run)
        page += verdictSection(run)
        page += answerSection(run)
        page += metricsSection(run)
        page += diagnosticsSection(run)
        page += densitySection(run)
        page += provenanceSection(run)
        page += "</main></body></html>\n"
        return page
    }

    // MARK: Sections

    static func questionSection(_ run: Run) -> String {
        let q = run.summary["question"] as? [String: Any] ?? [:]
        let terms = q["terms"] as? [[String: Any]] ?? []
        var out = "<section id=\"question\"><h2>The question</h2>"
        let words = terms.compactMap { $0["words"] as? String }
        if !words.isEmpty {
            out += "<p class=\"lead\">The inputs x where " + words.map(SVGPlot.escape).joined(separator: "; and where ") + ".</p>"
        }
        out += "<table class=\"terms\"><tr><th>term</th><th>G's part</th><th>in words</th></tr>"
        for t in terms {
            out += "<tr><td><code>\(SVGPlot.escape(t["term"] as? String ?? ""))</code></td><td class=\"formula\">\(SVGPlot.escape(t["formula"] as? String ?? ""))</td><td>\(SVGPlot.escape(t["words"] as? String ?? ""))</td></tr>"
        }
        out += "</table>"
        if let density = q["density"] as? String { out += "<p class=\"formula\">\(SVGPlot.escape(density))</p>" }
        if let space = q["space"] as? String { out += "<p>Chains live in: <span class=\"formula\">\(SVGPlot.escape(space))</span>.</p>" }
        return out + "</section>\n"
    }

    static func verdictSection(_ run: Run) -> String {
        let s = run.summary
        let d = s["diagnostics"] as? [String: Any] ?? [:]
        let thresholds = d["thresholds"] as? [String: Any] ?? [:]
        let converged = s["converged"] as? Bool ?? false
        let rhat = d["max_rhat"] as? Double, bulk = d["min_ess_bulk"] as? Double, tail = d["min_ess_tail"] as? Double
        let rhatLimit = thresholds["rhat"] as? Double ?? 1.01, bulkLimit = thresholds["ess_bulk"] as? Double ?? 400
        let tailLimit = thresholds["ess_tail"] as? Double ?? 400
        let judged = SVGPlot.escape(d["judged"] as? String ?? "the sampler's coordinates")
        var out = "<section id=\"verdict\"><h2>Verdict</h2>"
        out += converged
            ? "<p class=\"badge ok\">✓ converged</p><p>Every quantity judged (\(judged)) has R-hat ≤ \(SVGPlot.format(rhatLimit)) and bulk and tail ESS ≥ \(SVGPlot.format(min(bulkLimit, tailLimit))): the draws can be read as a sample of p*.</p>"
            : "<p class=\"badge bad\">✗ not converged</p><p>The draws below are not yet a sample of p*; read them as examples, not as frequencies.</p>"
        let terms = ((s["answer"] as? [String: Any])?["draws"] as? [String: Any])?["terms"] as? [[String: Any]] ?? []
        for t in terms {
            guard let inside = t["inside"] as? Double, inside < 0.5 else { continue }
            out += "<p class=\"badge bad\">⚠ \(String(format: "%.0f %%", inside * 100)) of the draws are in \(SVGPlot.escape(t["term"] as? String ?? "the level set"))'s level set</p><p>Most draws are not what the question asks for: the chains have not reached the level set, or the decoder cannot produce it. A converged verdict then describes p*, not the level set.</p>"
        }
        var why = [String]()
        func check(_ label: String, _ value: Double?, _ limit: Double, above: Bool, meaning: String) {
            guard let value else { why.append("<li>\(label): cannot be computed (too few draws)</li>"); return }
            let pass = above ? value >= limit : value <= limit
            let shown = above ? String(format: "%.0f", value) : String(format: "%.4f", value)
            why.append("<li class=\"\(pass ? "pass" : "fail")\">\(pass ? "✓" : "✗") \(label) \(shown) \(pass ? (above ? "≥" : "≤") : (above ? "<" : ">")) \(above ? String(format: "%.0f", limit) : SVGPlot.format(limit))\(pass ? "" : " — \(meaning)")</li>")
        }
        check("max R-hat", rhat, rhatLimit, above: false, meaning: "the chains disagree about where p* puts its mass (they have not mixed)")
        check("min bulk ESS", bulk, bulkLimit, above: true, meaning: "too few effective draws for means")
        check("min tail ESS", tail, tailLimit, above: true, meaning: "too few effective draws for the tails (quantiles)")
        out += "<ul class=\"checks\">" + why.joined() + "</ul>"
        let sampler = s["sampler"] as? [String: Any] ?? [:]
        let facts: [(String, String)] = [
            ("stopped", s["stop_reason"] as? String ?? "—"),
            ("chains × draws", "\(run.chains) × \(s["draws_per_chain"] as? Int ?? 0) (after \(s["warmup"] as? Int ?? 0) warm-up; files keep every \(s["thin"] as? Int ?? 1))"),
            ("sampler", "\(sampler["method"] as? String ?? "—"), \(sampler["metric"] as? String ?? "—") metric"),
            ("acceptance", (s["acceptance_rate"] as? Double).map { String(format: "%.2f", $0) } ?? "—"),
            ("divergences", "\(s["divergences"] as? Int ?? 0)"),
            ("wall time", (s["wall_time_seconds"] as? Double).map { String(format: "%.1f s", $0) } ?? "—"),
        ]
        out += "<dl class=\"facts\">" + facts.map { "<dt>\($0.0)</dt><dd>\(SVGPlot.escape($0.1))</dd>" }.joined() + "</dl>"
        return out + "</section>\n"
    }

    static func answerSection(_ run: Run) -> String {
        var out = "<section id=\"answer\"><h2>The answer</h2>"
        guard let samples = run.samples, run.chains > 0, run.drawsWritten > 0 else {
            return out + "<p>No draws were written.</p></section>\n"
        }
        let shape = run.dataShape, D = samples.shape.count > 1 ? samples.shape[1] : 1
        let picks = spread(chains: run.chains, draws: run.drawsWritten, count: 24)
        let thin = run.summary["thin"] as? Int ?? 1
        let x = samples.float64Values
        let outputs = run.outputs?.float64Values ?? []
        func caption(_ row: Int) -> String {
            run.outputModels.filter(\.classifier).prefix(3).map { m in
                let p = m.columns.map { outputs[row * run.outputWidth + $0] }
                let order = p.indices.sorted { p[$0] > p[$1] }
                // The top class, and the runner-up when it is not negligible (ambiguous draws).
                let second = order.count > 1 && p[order[1]] >= 0.1 ? " · \(order[1]) \(String(format: "%.2f", p[order[1]]))" : ""
                return "\(SVGPlot.escape(m.model)) <b>\(order[0])</b> \(String(format: "%.2f", p[order[0]]))\(second)"
            }.joined(separator: "<br>")
        }
        let isImage = shape.count >= 2 && shape.suffix(2).allSatisfy { $0 >= 8 } && shape.dropLast(2).allSatisfy { $0 == 1 }
        if isImage {
            let h = shape[shape.count - 2], w = shape[shape.count - 1]
            out += "<p>\(picks.count) draws spread over the chains (chain c, draw i), each with the class each model gives it and that class's probability (and the runner-up's, when it is at least 0.1).</p><div class=\"grid\">"
            for (c, i) in picks {
                let row = c * run.drawsWritten + i
                let pixels = (0..<(h * w)).map { UInt8((min(max(x[row * D + $0], 0), 1) * 255).rounded()) }
                let png = PNGImage(width: w, height: h, pixels: pixels).encoded()
                out += "<figure><img alt=\"draw \(i * thin) of chain \(c)\" src=\"data:image/png;base64,\(Data(png).base64EncodedString())\"><figcaption><span class=\"where\">chain \(c) · draw \(i * thin)</span><br>\(caption(row))</figcaption></figure>"
            }
            out += "</div>"
        } else if let encoding = run.summary["encoding"] as? [String: Any], let features = encoding["features"] as? [[String: Any]],
                  let record = Record(features: features, width: D) {
            out += recordTable(run, record: record, picks: picks, x: x, D: D, caption: caption)
        } else {
            let names = run.summary["features"] as? [String] ?? (0..<D).map { "x[\($0)]" }
            let anchor = ((run.summary["question"] as? [String: Any])?["anchor"] as? [Double]).flatMap { $0.count == D ? $0 : nil }
            // Wide data: the 40 features that move furthest from the anchor (else the first 40).
            var columns = Array(0..<D)
            if D > 40, let anchor {
                let moved = (0..<D).map { j in picks.reduce(0.0) { $0 + abs(x[($1.0 * run.drawsWritten + $1.1) * D + j] - anchor[j]) } }
                columns = Array(columns.sorted { moved[$0] > moved[$1] }.prefix(40)).sorted()
            }
            columns = Array(columns.prefix(40))
            let which = D <= 40 ? "" : (anchor == nil ? "; the first 40 of \(D) features" : "; the 40 of \(D) features that move furthest from the anchor")
            out += "<p>\(picks.count) draws spread over the chains\(anchor == nil ? "" : "; cells that differ from the anchor are marked")\(which).</p>"
            out += "<div class=\"scroll\"><table class=\"draws\"><tr><th></th>" + columns.map { "<th>\(SVGPlot.escape(names[$0]))</th>" }.joined() + "<th>outputs</th></tr>"
            if let anchor {
                out += "<tr class=\"anchor\"><th>anchor</th>" + columns.map { "<td>\(SVGPlot.format(anchor[$0]))</td>" }.joined() + "<td></td></tr>"
            }
            for (c, i) in picks {
                let row = c * run.drawsWritten + i
                out += "<tr><th>c\(c) · \(i * thin)</th>" + columns.map { j -> String in
                    let v = x[row * D + j], changed = anchor.map { abs($0[j] - v) > 1e-3 } ?? false
                    return "<td\(changed ? " class=\"changed\"" : "")>\(SVGPlot.format(v))</td>"
                }.joined() + "<td>\(caption(row))</td></tr>"
            }
            out += "</table></div>"
        }
        return out + "</section>\n"
    }

    /// How a model's inputs decode into a record: per feature, its columns and kind.
    struct Record {
        struct Feature {
            var name: String
            var columns: Range<Int>
            var categories: [String]?
            var min = 0.0, max = 1.0
        }
        var features: [Feature]

        init?(features list: [[String: Any]], width: Int) {
            var c = 0
            features = []
            for f in list {
                guard let name = f["name"] as? String else { return nil }
                let categories = (f["kind"] as? String) == "categorical" ? f["categories"] as? [String] : nil
                let w = categories?.count ?? 1
                features.append(Feature(name: name, columns: c..<(c + w), categories: categories,
                                        min: f["min"] as? Double ?? 0, max: f["max"] as? Double ?? 1))
                c += w
            }
            guard c == width else { return nil }
        }

        /// A feature's value in the data's units: a number, or the category with the largest
        /// input (with that input's weight when the block is not one-hot).
        func value(_ f: Feature, _ v: (Int) -> Double) -> (text: String, key: Double) {
            if let categories = f.categories {
                let best = f.columns.max { v($0) < v($1) }!
                let weight = v(best), total = f.columns.reduce(0.0) { $0 + v($1) }
                let exact = abs(weight - 1) < 1e-6 && abs(total - 1) < 1e-6
                return (categories[best - f.columns.lowerBound] + (exact ? "" : String(format: " (%.2f of %.2f)", weight, total)), Double(best))
            }
            let u = f.min + v(f.columns.lowerBound) * (f.max - f.min)
            return (abs(u) >= 100 ? String(format: "%.0f", u) : SVGPlot.format(u), u)
        }
    }

    /// Tabular draws as records in the data's names and units, against the anchor.
    static func recordTable(_ run: Run, record: Record, picks: [(Int, Int)], x: [Double], D: Int, caption: (Int) -> String) -> String {
        let thin = run.summary["thin"] as? Int ?? 1
        let anchor = ((run.summary["question"] as? [String: Any])?["anchor"] as? [Double]).flatMap { $0.count == D ? $0 : nil }
        var out = "<p>\(picks.count) draws spread over the chains, as records in the data's names and units\(anchor == nil ? "" : "; values that differ from the anchor are marked"). A categorical feature shows its largest input, with that input's weight and the block's sum when the draw is not one-hot.</p>"
        out += "<div class=\"scroll\"><table class=\"draws\"><tr><th></th>" + record.features.map { "<th>\(SVGPlot.escape($0.name))</th>" }.joined() + "<th>outputs</th></tr>"
        if let anchor {
            out += "<tr class=\"anchor\"><th>anchor</th>" + record.features.map { "<td>\(SVGPlot.escape(record.value($0) { anchor[$0] }.text))</td>" }.joined() + "<td></td></tr>"
        }
        for (c, i) in picks {
            let row = c * run.drawsWritten + i
            out += "<tr><th>c\(c) · \(i * thin)</th>" + record.features.map { f -> String in
                let drawn = record.value(f) { x[row * D + $0] }
                var changed = false
                if let anchor {
                    let anchored = record.value(f) { anchor[$0] }
                    changed = f.categories == nil ? abs(drawn.key - anchored.key) > 1e-3 * max(f.max - f.min, 1e-12) : drawn.key != anchored.key
                }
                return "<td\(changed ? " class=\"changed\"" : "")>\(SVGPlot.escape(drawn.text))</td>"
            }.joined() + "<td>\(caption(row))</td></tr>"
        }
        return out + "</table></div>"
    }

    static func metricsSection(_ run: Run) -> String {
        let answer = run.summary["answer"] as? [String: Any] ?? [:]
        let draws = answer["draws"] as? [String: Any] ?? [:], reference = answer["reference"] as? [String: Any]
        var out = "<section id=\"metrics\"><h2>Metrics\(reference == nil ? "" : " against the reference data")</h2>"
        if let reference {
            out += "<p>Reference: <b>\(SVGPlot.escape(reference["source"] as? String ?? ""))</b>, \(reference["count"] as? Int ?? 0) items. Every figure is computed the same way over the draws and over the reference items; level-set confidences on the reference are over its items of the target classes (BAYES-TREX's Table 2).</p>"
        } else {
            out += "<p>No <code>reference:</code> data in the job, so the draws stand alone.</p>"
        }
        let drawTerms = draws["terms"] as? [[String: Any]] ?? [], refTerms = reference?["terms"] as? [[String: Any]] ?? []
        out += "<table class=\"metrics\"><tr><th>term</th><th>figure</th><th>draws</th>\(reference == nil ? "" : "<th>reference</th>")</tr>"
        for (i, t) in drawTerms.enumerated() {
            let rows = flatten(t), refRows = Dictionary(i < refTerms.count ? flatten(refTerms[i]) : [], uniquingKeysWith: { a, _ in a })
            for (label, value) in rows {
                out += "<tr><td><code>\(SVGPlot.escape(t["term"] as? String ?? ""))</code></td><td>\(SVGPlot.escape(label))</td><td>\(value)</td>\(reference == nil ? "" : "<td>\(refRows[label] ?? "—")</td>")</tr>"
            }
        }
        let models = draws["models"] as? [String: Any] ?? [:], refModels = reference?["models"] as? [String: Any] ?? [:]
        for m in models.keys.sorted() {
            if let acc = (refModels[m] as? [String: Any])?["accuracy"] as? Double {
                out += "<tr><td><code>\(SVGPlot.escape(m))</code></td><td>accuracy on the reference</td><td>—</td><td>\(String(format: "%.1f %%", acc * 100))</td></tr>"
            }
        }
        out += "</table><div class=\"plots\">"
        for m in models.keys.sorted() {
            guard let predicted = (models[m] as? [String: Any])?["predicted"] as? [Double] else { continue }
            var series: [(name: String, values: [Double], color: String)] = [("draws", predicted, SVGPlot.drawsColor)]
            if let r = (refModels[m] as? [String: Any])?["predicted"] as? [Double] { series.append(("reference", r, SVGPlot.referenceColor)) }
            out += SVGPlot.bars(predicted.indices.map(String.init), series, title: "\(m): share of items per predicted class")
        }
        return out + "</div></section>\n"
    }

    static func diagnosticsSection(_ run: Run) -> String {
        let d = run.summary["diagnostics"] as? [String: Any] ?? [:]
        let quantities = d["quantities"] as? [[String: Any]] ?? []
        var out = "<section id=\"diagnostics\"><h2>Diagnostics</h2>"
        let judged = quantities.filter { ($0["name"] as? String) != "G" }
        let worst = judged.sorted { ($0["rhat"] as? Double ?? .infinity) > ($1["rhat"] as? Double ?? .infinity) }
        let shown = quantities.filter { ($0["name"] as? String) == "G" } + worst.prefix(8)
        out += "<p>\(judged.count) quantities judged by the stop rule; G (the energy) and the \(min(8, worst.count)) with the highest R-hat are listed. Rank-normalised split R-hat and ESS (Vehtari et al. 2021), as ArviZ computes them.</p>"
        out += "<table class=\"diag\"><tr><th>quantity</th><th>R-hat</th><th>ESS bulk</th><th>ESS tail</th><th>MCSE mean</th></tr>"
        let thresholds = d["thresholds"] as? [String: Any] ?? [:]
        for q in shown {
            let r = q["rhat"] as? Double
            let bad = r.map { $0 > (thresholds["rhat"] as? Double ?? 1.01) } ?? true
            out += "<tr\(bad ? " class=\"fail\"" : "")><td><code>\(SVGPlot.escape(q["name"] as? String ?? ""))</code></td>"
                + [("rhat", "%.3f"), ("ess_bulk", "%.0f"), ("ess_tail", "%.0f")].map { key, f in "<td>\((q[key] as? Double).map { String(format: f, $0) } ?? "—")</td>" }.joined()
                + "<td>\((q["mcse_mean"] as? Double).map(SVGPlot.format) ?? "—")</td></tr>"
        }
        out += "</table><div class=\"plots\">"
        var series = [(String, [[Double]])]()
        if let stats = run.stats { series.append(("G", run.perChain(stats, column: 2))) }
        for q in worst.prefix(2) {
            guard let name = q["name"] as? String, let j = index(name) else { continue }
            if name.hasPrefix("z["), let latent = run.latent { series.append((name, run.perChain(latent, column: j))) }
            if name.hasPrefix("x["), let samples = run.samples { series.append((name, run.perChain(samples, column: j))) }
        }
        for (name, chains) in series {
            out += SVGPlot.trace(chains, title: name, thin: run.summary["thin"] as? Int ?? 1) + SVGPlot.rank(chains, title: name)
        }
        return out + "</div></section>\n"
    }

    static func densitySection(_ run: Run) -> String {
        var out = "<section id=\"densities\"><h2>Densities</h2>"
        var plots = [String]()
        let outputs = run.outputs?.float64Values ?? [], ref = run.referenceOutputs?.float64Values
        let rows = run.outputs?.shape.first ?? 0, refRows = run.referenceOutputs?.shape.first ?? 0
        let terms = ((run.summary["answer"] as? [String: Any])?["draws"] as? [String: Any])?["terms"] as? [[String: Any]] ?? []
        let targets = Set(terms.flatMap { ($0["target_confidence"] as? [String: Any])?.keys.compactMap { Int($0) } ?? [] })
        for m in run.outputModels {
            let classes = m.classifier ? (targets.isEmpty ? [] : targets.sorted()) : [0]
            for k in classes where k < m.columns.count {
                let j = m.columns.lowerBound + k
                let drawn = (0..<rows).map { outputs[$0 * run.outputWidth + j] }
                var reference: [Double]? = ref.map { r in (0..<refRows).map { r[$0 * run.outputWidth + j] } }
                var title = m.classifier ? "\(m.model): p(class \(k))" : "\(m.model): output"
                if m.classifier, let labels = run.referenceLabels, let r = reference {
                    reference = zip(labels, r).filter { $0.0 == k }.map(\.1)
                    title += " — reference items of class \(k)"
                }
                plots.append(m.classifier ? SVGPlot.densities(drawn.map(logit), reference?.map(logit), title: "logit " + title)
                                          : SVGPlot.densities(drawn, reference, title: title))
            }
            if m.classifier {
                let top = (0..<rows).map { b in m.columns.map { outputs[b * run.outputWidth + $0] }.max() ?? 0 }
                let refTop = ref.map { r in (0..<refRows).map { b in m.columns.map { r[b * run.outputWidth + $0] }.max() ?? 0 } }
                plots.append(SVGPlot.densities(top.map(logit), refTop?.map(logit), title: "logit \(m.model): top-class probability"))
            }
        }
        if let samples = run.samples, let D = samples.shape.last, D <= 256 {
            let x = samples.float64Values, n = samples.shape[0]
            let r = run.referenceSamples?.float64Values, rn = run.referenceSamples?.shape.first ?? 0
            let names = run.summary["features"] as? [String] ?? (0..<D).map { "x[\($0)]" }
            let varying = (0..<D).filter { j in Set((0..<min(n, 500)).map { x[$0 * D + j] }).count > 1 }
            for j in varying.prefix(12) {
                plots.append(SVGPlot.densities((0..<n).map { x[$0 * D + j] }, r.map { r in (0..<rn).map { r[$0 * D + j] } }, title: names[j]))
            }
        }
        out += plots.isEmpty ? "<p>Nothing to compare.</p>" : "<p class=\"legend\"><span style=\"color:\(SVGPlot.drawsColor)\">■ draws</span> <span style=\"color:\(SVGPlot.referenceColor)\">■ reference data</span></p><div class=\"plots small\">" + plots.joined() + "</div>"
        return out + "</section>\n"
    }

    static func provenanceSection(_ run: Run) -> String {
        let p = run.summary["provenance"] as? [String: Any] ?? [:]
        func text(_ v: Any?) -> String {
            guard let v else { return "—" }
            if let s = v as? String { return s }
            if let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]) {
                return String(decoding: d, as: UTF8.self)
            }
            return "\(v)"
        }
        let keys = ["probefarm", "job_file", "job_sha256", "seed", "weights_sha256", "blas", "hosts", "workers"]
        return "<footer id=\"provenance\"><h2>Provenance</h2><dl class=\"facts\">"
            + keys.map { "<dt>\($0)</dt><dd><code>\(SVGPlot.escape(text(p[$0])))</code></dd>" }.joined()
            + "</dl><p>Files: summary.json, samples.npy, outputs.npy, stats.csv, inference_data.nc (ArviZ). <code>probefarm report</code> rewrites this page.</p></footer>\n"
    }

    // MARK: Helpers

    /// log(p / (1 − p)), within ±12: probabilities near 0 or 1 spread out where they differ.
    static func logit(_ p: Double) -> Double { min(12, max(-12, log(p / (1 - p)))) }

    /// `count` (chain, draw) pairs spread evenly over the chains and, within each, over the draws.
    static func spread(chains: Int, draws: Int, count: Int) -> [(Int, Int)] {
        guard chains > 0, draws > 0 else { return [] }
        if chains >= count { return (0..<count).map { ($0 * chains / count, draws - 1) } }
        let per = count / chains
        return (0..<chains).flatMap { c in (0..<per).map { (c, min(draws - 1, ($0 + 1) * draws / per - 1)) } }
    }

    static func index(_ name: String) -> Int? {
        guard let open = name.firstIndex(of: "["), let close = name.lastIndex(of: "]") else { return nil }
        return Int(name[name.index(after: open)..<close])
    }

    /// A term's figures as (label, value) rows, nested objects flattened.
    static func flatten(_ term: [String: Any]) -> [(String, String)] {
        var rows = [(String, String)]()
        func value(_ v: Any) -> String? {
            if let d = v as? [String: Any], let m = d["mean"] as? Double {
                return SVGPlot.format(m) + ((d["sd"] as? Double).map { " ± " + SVGPlot.format($0) } ?? "")
            }
            if let x = v as? Double { return SVGPlot.format(x) }
            if let i = v as? Int { return "\(i)" }
            return nil
        }
        let labels = ["inside": "share inside the level set (every statistic within 2σ)", "validity": "validity (share given the label)",
                      "disagreement": "share where the models disagree", "sparsity": "sparsity (features changed)",
                      "diversity": "diversity (mean pairwise L1)", "items": "items", "entropy": "entropy (nats), mean ± sd",
                      "absolute_error": "|y − target|, mean ± sd", "absolute_difference": "|y_a − y_b|, mean ± sd"]
        for key in term.keys.sorted() where key != "term" {
            let v = term[key]!
            if key == "inside" || key == "validity" || key == "disagreement", let x = v as? Double {
                rows.append((labels[key]!, String(format: "%.1f %%", x * 100)))
            } else if key == "target_confidence", let d = v as? [String: Any] {
                for k in d.keys.sorted() { if let s = value(d[k]!) { rows.append(("confidence in class \(k), mean ± sd", s)) } }
            } else if key == "proximity" || key == "proximity_data_units", let d = v as? [String: Any] {
                for k in d.keys.sorted() { if let s = value(d[k]!) { rows.append(("\(key.replacingOccurrences(of: "_", with: " ")) \(k.uppercased())", s)) } }
            } else if let s = value(v) {
                rows.append((labels[key] ?? key, s))
            }
        }
        return rows
    }

    static let css = """
        :root{--ink:#1d232b;--muted:#5b6670;--line:#e3e7eb;--ok:#1a7f37;--bad:#c62828;--bg:#f6f7f9}
        *{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",sans-serif}
        main{max-width:1120px;margin:0 auto;padding:24px}
        header h1{margin:0 0 8px;font-size:28px}.kicker{margin:0;color:var(--muted);text-transform:uppercase;letter-spacing:.08em;font-size:12px}
        section,footer{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:16px 0}
        h2{margin:0 0 10px;font-size:19px}.lead{font-size:17px}
        table{border-collapse:collapse;margin:8px 0;font-size:13.5px}th,td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top}
        th{background:#fafbfc;font-weight:600}.formula{font-family:"DejaVu Sans Mono",monospace;font-size:13px}
        code{font-family:"DejaVu Sans Mono",monospace;font-size:12.5px;background:#f1f3f5;padding:1px 4px;border-radius:4px;word-break:break-all}
        .badge{display:inline-block;padding:4px 12px;border-radius:999px;font-weight:700;margin:0 0 6px}
        .ok{background:#e6f4ea;color:var(--ok)}.bad{background:#fdecea;color:var(--bad)}
        .checks{list-style:none;padding:0}.checks li{margin:2px 0}.pass{color:var(--ok)}.fail,.fail td{color:var(--bad)}
        .facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}.facts dt{color:var(--muted)}.facts dd{margin:0}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(110px,1fr));gap:10px}
        figure{margin:0;background:#fafbfc;border:1px solid var(--line);border-radius:8px;padding:6px;text-align:center}
        figure img{width:100%;max-width:112px;image-rendering:pixelated;background:#000;border-radius:4px}
        figcaption{font-size:12px;line-height:1.35}.where{color:var(--muted)}
        .plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{background:#fff}
        .scroll{overflow-x:auto}.draws td,.draws th{font-family:"DejaVu Sans Mono",monospace;font-size:12px;white-space:nowrap}
        .draws .changed{background:#fff3cd;font-weight:700}.anchor td{background:#eef4ff}
        .legend{font-size:13px}
        """
}
