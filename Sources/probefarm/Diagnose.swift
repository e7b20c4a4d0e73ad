import ArgumentParser
import Diagnostics
import Foundation
import Reports
import TensorCore

struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convergence diagnostics (R-hat, bulk/tail ESS, MCSE) for MCMC draws, as ArviZ computes them.",
        discussion: """
            FILE is an .npy array shaped (chains, draws) — one quantity — or (chains, draws, d) — \
            d quantities x[0]…x[d-1]; with --chains C, a 2-d array (C·N, d) of merged draws \
            (samples.npy, latent.npy, outputs.npy) is read as C chains of N draws. A 2-d array with \
            more rows than columns and no --chains is refused rather than read as that many chains. \
            A run directory is judged as the run was: the sampler's coordinates (z from latent.npy, \
            or the free features of samples.npy) against the job's stop rule, with G (from \
            stats.npy) listed but not judged — the verdict summary.json records (of the draws the \
            files keep: with sampler.thin k, every k-th). R-hat is the rank-normalised \
            split R-hat (Vehtari et al. 2021). An inference_data.nc is judged the same way: its \
            posterior z (or the features of x that vary) against the stop rule in its \
            attributes, G listed; values that cannot be computed (too few draws, one \
            chain, NaN, constant draws) show as — and as null in JSON.
            """)

    @Argument(help: "An .npy file of draws, a run directory, or an inference_data.nc.")
    var path: String

    @Flag(help: "Print one JSON object (JOBSPEC §3) instead of a table.")
    var json = false

    @Option(help: "Read a 2-d (chains·draws, d) file as this many chains.")
    var chains: Int?

    @Option(help: "R-hat threshold for the ✓/✗ column (default 1.01, or the run's stop rule).")
    var rhat: Double?

    @Option(help: "ESS threshold, bulk and tail, for the ✓/✗ column (default 400, or the run's stop rule).")
    var ess: Double?

    /// One row of the table: a quantity, its diagnostics, and whether the verdict counts it.
    struct Row {
        var name: String
        var summary: QuantitySummary
        var judged = true
    }

    /// The thresholds in use.
    struct Rule {
        var rhat: Double
        var bulk: Double
        var tail: Double

        func passes(_ s: QuantitySummary) -> Bool {
            guard let r = s.rhat, let b = s.essBulk, let t = s.essTail else { return false }
            return r < rhat && b >= bulk && t >= tail
        }
    }

    func validate() throws {
        if let chains, chains < 1 { throw ValidationError("--chains must be at least 1") }
    }

    func run() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let summaryPath = (path as NSString).appendingPathComponent("summary.json")
            guard FileManager.default.fileExists(atPath: summaryPath) else {
                throw UsageError("\(path): not a run directory (no summary.json); name an .npy file of draws instead", sysexit: .noInput)
            }
            return try runDirectory(summaryPath)
        }
        if path.hasSuffix(".nc") { return try inferenceData(path) }
        try report(file: path)
    }

    /// inference_data.nc: the posterior's z (or x: its features that vary) judged by the
    /// stop rule in its attributes, G listed — as summary.json judged the run.
    func inferenceData(_ file: String) throws {
        let (variables, attributes) = try InferenceData.read(file, group: "posterior", names: ["z", "x", "G"])
        guard let judged = variables.first(where: { $0.name != "G" }), judged.shape.count >= 2 else {
            throw UsageError("\(file): the posterior holds neither z nor x", sysexit: .dataError)
        }
        let c = judged.shape[0], n = judged.shape[1], d = judged.shape.dropFirst(2).reduce(1, *)
        var rows = ChainDraws.quantities(interleaved: judged.values, chains: c, draws: n, dimension: d).enumerated()
            .filter { _, q in judged.name == "z" || q.values.contains { $0 != q.values[0] } }
            .map { j, q in Row(name: "\(judged.name)[\(j)]", summary: QuantitySummary(q)) }
        if let g = variables.first(where: { $0.name == "G" }) {
            rows.append(Row(name: "G", summary: QuantitySummary(ChainDraws(chains: c, draws: n, values: g.values)), judged: false))
        }
        let rule = Rule(rhat: rhat ?? attributes["stop_rhat"].flatMap(Double.init) ?? 1.01,
                        bulk: ess ?? attributes["stop_ess_bulk"].flatMap(Double.init) ?? 400,
                        tail: ess ?? attributes["stop_ess_tail"].flatMap(Double.init) ?? 400)
        show(rows, chains: c, draws: n, rule: rule)
    }

    func report(file: String) throws {
        let array = try NumPyArray.read(contentsOf: file)
        guard array.shape.count == 2 || array.shape.count == 3 else {
            throw UsageError("\(file): expected shape (chains, draws) or (chains, draws, d), got \(array.shape)",
                             sysexit: .dataError)
        }
        var (c, n) = (array.shape[0], array.shape[1])
        var d = array.shape.count == 3 ? array.shape[2] : 1
        var names = { (j: Int) in array.shape.count == 2 ? "x" : "x[\(j)]" }
        if let chains {
            guard array.shape.count == 2 else { throw UsageError("\(file): --chains applies to 2-d files of merged draws; this one is \(array.shape)", sysexit: .usage) }
            guard array.shape[0] % chains == 0 else {
                throw UsageError("\(file): \(array.shape[0]) rows do not split into \(chains) chains", sysexit: .usage)
            }
            (c, n, d) = (chains, array.shape[0] / chains, array.shape[1])
            names = { "x[\($0)]" }
        } else if array.shape.count == 2, array.shape[0] > array.shape[1] {
            throw UsageError("\(file): shape \(array.shape) has more rows than columns, like merged draws (chains·draws, d); pass --chains C (a (chains, draws) file is one quantity)", sysexit: .usage)
        }
        guard c > 0, n > 0, d > 0 else {
            throw UsageError("\(file): empty array of shape \(array.shape)", sysexit: .dataError)
        }
        let rows = ChainDraws.quantities(interleaved: array.float64Values, chains: c, draws: n, dimension: d).enumerated().map { j, q in
            Row(name: names(j), summary: QuantitySummary(q))
        }
        show(rows, chains: c, draws: n, rule: Rule(rhat: rhat ?? 1.01, bulk: ess ?? 400, tail: ess ?? 400))
    }

    /// A run directory: the quantities and the rule summary.json's verdict used.
    func runDirectory(_ summaryPath: String) throws {
        let dir = (summaryPath as NSString).deletingLastPathComponent
        guard let data = FileManager.default.contents(atPath: summaryPath),
              let summary = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let c = summary["chains"] as? Int, let n = summary["draws_written_per_chain"] as? Int ?? summary["draws_per_chain"] as? Int,
              let diagnostics = summary["diagnostics"] as? [String: Any] else {
            throw UsageError("\(summaryPath): not a ProbeFarm summary (chains, draws_per_chain, diagnostics)", sysexit: .dataError)
        }
        let thresholds = diagnostics["thresholds"] as? [String: Any] ?? [:]
        let legacy = thresholds["ess"] as? Double
        let rule = Rule(rhat: rhat ?? thresholds["rhat"] as? Double ?? 1.01, bulk: ess ?? thresholds["ess_bulk"] as? Double ?? legacy ?? 400,
                        tail: ess ?? thresholds["ess_tail"] as? Double ?? legacy ?? 400)
        func read(_ name: String, columns: Int? = nil) throws -> (values: [Double], width: Int) {
            let a = try NumPyArray.read(contentsOf: (dir as NSString).appendingPathComponent(name))
            guard a.shape.count == 2, a.shape[0] == c * n else {
                throw UsageError("\(dir)/\(name): shape \(a.shape), expected (\(c * n), …) for \(c) chains × \(n) draws", sysexit: .dataError)
            }
            return (a.float64Values, a.shape[1])
        }
        func quantity(_ values: [Double], width: Int, column: Int) -> QuantitySummary {
            QuantitySummary(ChainDraws(chains: c, draws: n, values: (0..<(c * n)).map { values[$0 * width + column] }))
        }
        var rows = [Row]()
        if summary["space"] as? String == "latent" {
            let z = try read("latent.npy")
            rows = (0..<z.width).map { Row(name: "z[\($0)]", summary: quantity(z.values, width: z.width, column: $0)) }
        } else {
            let x = try read("samples.npy")
            let listed = (diagnostics["quantities"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            let free = listed.compactMap { name -> Int? in
                guard name.hasPrefix("x["), name.hasSuffix("]") else { return nil }
                return Int(name.dropFirst(2).dropLast())
            }
            rows = free.filter { $0 < x.width }.map { Row(name: "x[\($0)]", summary: quantity(x.values, width: x.width, column: $0)) }
        }
        let stats = try read("stats.npy")
        rows.append(Row(name: "G", summary: quantity(stats.values, width: stats.width, column: 2), judged: false))
        if let thin = summary["thin"] as? Int, thin > 1, !json {
            print("note: the files keep every \(thin)th draw; summary.json's figures are of all \(summary["draws_per_chain"] as? Int ?? 0) draws per chain")
        }
        show(rows, chains: c, draws: n, rule: rule)
    }

    func show(_ rows: [Row], chains: Int, draws: Int, rule: Rule) {
        if json {
            printJSON(rows, chains: chains, draws: draws, rule: rule)
        } else {
            printTable(rows, chains: chains, draws: draws, rule: rule)
        }
    }

    private func printJSON(_ rows: [Row], chains: Int, draws: Int, rule: Rule) {
        func num(_ v: Double?) -> Any { v.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
        let quantities: [[String: Any]] = rows.map { row in
            let s = row.summary
            return ["name": row.name, "rhat": num(s.rhat), "rhat_split": num(s.rhatSplit), "ess_bulk": num(s.essBulk),
                    "ess_tail": num(s.essTail), "ess_mean": num(s.essMean), "ess_sd": num(s.essSD),
                    "mcse_mean": num(s.mcseMean), "mcse_sd": num(s.mcseSD), "judged": row.judged]
        }
        let judged = rows.filter(\.judged)
        let root: [String: Any] = ["chains": chains, "draws": draws, "quantities": quantities,
                                   "converged": !judged.isEmpty && judged.allSatisfy { rule.passes($0.summary) },
                                   "thresholds": ["rhat": rule.rhat, "ess_bulk": rule.bulk, "ess_tail": rule.tail]]
        let data = (try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }

    private func printTable(_ rows: [Row], chains: Int, draws: Int, rule: Rule) {
        func f(_ v: Double?, _ format: String) -> String {
            guard let v, v.isFinite else { return "—" }
            return String(format: format, v)
        }
        let ess = rule.bulk == rule.tail ? "bulk/tail ESS ≥ \(Int(rule.bulk))" : "ESS bulk ≥ \(Int(rule.bulk)), tail ≥ \(Int(rule.tail))"
        print("\(chains) chains × \(draws) draws; ✓ = R-hat < \(rule.rhat) and \(ess)")
        print("quantity".padding(toLength: 12, withPad: " ", startingAt: 0) + "   R-hat    ESS bulk    ESS tail   MCSE mean")
        for row in rows {
            let s = row.summary
            let mark = row.judged ? (rule.passes(s) ? "✓" : "✗") : "(listed, not judged)"
            print(row.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                + f(s.rhat, "%8.4f").leftPad(8) + f(s.essBulk, "%12.0f").leftPad(12)
                + f(s.essTail, "%12.0f").leftPad(12) + f(s.mcseMean, "%12.4g").leftPad(12) + "  " + mark)
        }
        let judged = rows.filter(\.judged).map(\.summary)
        let passed = judged.filter(rule.passes).count
        let maxR = judged.compactMap(\.rhat).max()
        let minBulk = judged.compactMap(\.essBulk).min()
        let minTail = judged.compactMap(\.essTail).min()
        print("\(passed)/\(judged.count) pass; max R-hat \(f(maxR, "%.4f")), min ESS bulk \(f(minBulk, "%.0f")), min ESS tail \(f(minTail, "%.0f"))")
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
