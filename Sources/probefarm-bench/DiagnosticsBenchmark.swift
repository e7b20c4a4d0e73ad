import Diagnostics
import Foundation
import TensorCore

/// All diagnostics (rank R-hat, split R-hat, bulk/tail/mean/sd ESS, MCSE of mean and sd)
/// for every quantity of a (chains, draws, d) array, on one thread.
enum DiagnosticsBenchmark {
    static func run(path: String) throws -> (seconds: Double, quantities: Int, summaries: [QuantitySummary]) {
        let a = try NumPyArray.read(contentsOf: path)
        let (c, n, d) = (a.shape[0], a.shape[1], a.shape.count == 3 ? a.shape[2] : 1)
        let v = a.float64Values
        let t0 = Date()
        let out = ChainDraws.quantities(interleaved: v, chains: c, draws: n, dimension: d).map(QuantitySummary.init)
        return (Date().timeIntervalSince(t0), d, out)
    }
}
