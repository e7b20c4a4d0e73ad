import ArgumentParser
import Diagnostics
import Foundation
import TensorCore

struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convergence diagnostics (R-hat, bulk/tail ESS, MCSE) for MCMC draws, as ArviZ computes them.",
        discussion: """
            FILE is an .npy array shaped (chains, draws) — one quantity — or (chains, draws, d) — \
            d quantities x[0]…x[d-1]; a run directory is read through its chains.npy. \
            R-hat is the rank-normalised split R-hat (Vehtari et al. 2021); values that cannot be \
            computed (too few draws, one chain, NaN, constant draws) show as — and as null in JSON.
            """)

    @Argument(help: "An .npy file of draws, or a run directory holding chains.npy.")
    var path: String

    @Flag(help: "Print one JSON object (JOBSPEC §3) instead of a table.")
    var json = false

    @Option(help: "R-hat threshold for the ✓/✗ column.")
    var rhat = 1.01

    @Option(help: "ESS threshold (bulk and tail) for the ✓/✗ column.")
    var ess = 400.0

    func run() throws {
        var file = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = (path as NSString).appendingPathComponent("chains.npy")
        }
        let array = try NumPyArray.read(contentsOf: file)
        guard array.shape.count == 2 || array.shape.count == 3 else {
            throw UsageError("\(file): expected shape (chains, draws) or (chains, draws, d), got \(array.shape)",
                             sysexit: .dataError)
        }
        let (c, n) = (array.shape[0], array.shape[1])
        let d = array.shape.count == 3 ? array.shape[2] : 1
        guard c > 0, n > 0, d > 0 else {
            throw UsageError("\(file): empty array of shape \(array.shape)", sysexit: .dataError)
        }
        let values = array.float64Values
        let rows = ChainDraws.quantities(interleaved: values, chains: c, draws: n, dimension: d).enumerated().map { j, q in
            (array.shape.count == 2 ? "x" : "x[\(j)]", QuantitySummary(q))
        }
        if json {
            printJSON(rows, chains: c, draws: n)
        } else {
            printTable(rows, chains: c, draws: n)
        }
    }

    private func printJSON(_ rows: [(String, QuantitySummary)], chains: Int, draws: Int) {
        func num(_ v: Double?) -> Any { v.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
        let quantities: [[String: Any]] = rows.map { name, s in
            ["name": name, "rhat": num(s.rhat), "rhat_split": num(s.rhatSplit), "ess_bulk": num(s.essBulk),
             "ess_tail": num(s.essTail), "ess_mean": num(s.essMean), "ess_sd": num(s.essSD),
             "mcse_mean": num(s.mcseMean), "mcse_sd": num(s.mcseSD)]
        }
        let root: [String: Any] = ["chains": chains, "draws": draws, "quantities": quantities]
        let data = (try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }

    private func printTable(_ rows: [(String, QuantitySummary)], chains: Int, draws: Int) {
        func f(_ v: Double?, _ format: String) -> String {
            guard let v, v.isFinite else { return "—" }
            return String(format: format, v)
        }
        print("\(chains) chains × \(draws) draws; ✓ = R-hat < \(rhat) and bulk/tail ESS ≥ \(Int(ess))")
        let header = "quantity".padding(toLength: 12, withPad: " ", startingAt: 0)
            + "   R-hat    ESS bulk    ESS tail   MCSE mean"
        print(header)
        var passed = 0
        for (name, s) in rows {
            let ok = s.passes(rhat: rhat, ess: ess)
            if ok { passed += 1 }
            let line = name.padding(toLength: 12, withPad: " ", startingAt: 0)
                + f(s.rhat, "%8.4f").leftPad(8) + f(s.essBulk, "%12.0f").leftPad(12)
                + f(s.essTail, "%12.0f").leftPad(12) + f(s.mcseMean, "%12.4g").leftPad(12)
                + "  " + (ok ? "✓" : "✗")
            print(line)
        }
        let maxR = rows.compactMap { $0.1.rhat }.max()
        let minBulk = rows.compactMap { $0.1.essBulk }.min()
        let minTail = rows.compactMap { $0.1.essTail }.min()
        print("\(passed)/\(rows.count) pass; max R-hat \(f(maxR, "%.4f")), min ESS bulk \(f(minBulk, "%.0f")), min ESS tail \(f(minTail, "%.0f"))")
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
