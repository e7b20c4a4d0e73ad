/// The diagnostics ProbeFarm reports for one quantity (JOBSPEC §3's `diagnose --json`).
public struct QuantitySummary: Sendable, Equatable, Codable {
    public var rhat: Double?
    public var rhatSplit: Double?
    public var essBulk: Double?
    public var essTail: Double?
    public var essMean: Double?
    public var essSD: Double?
    public var mcseMean: Double?
    public var mcseSD: Double?

    enum CodingKeys: String, CodingKey {
        case rhat, rhatSplit = "rhat_split", essBulk = "ess_bulk", essTail = "ess_tail"
        case essMean = "ess_mean", essSD = "ess_sd", mcseMean = "mcse_mean", mcseSD = "mcse_sd"
    }

    public init(rhat: Double?, rhatSplit: Double?, essBulk: Double?, essTail: Double?,
                essMean: Double?, essSD: Double?, mcseMean: Double?, mcseSD: Double?) {
        self.rhat = rhat; self.rhatSplit = rhatSplit; self.essBulk = essBulk; self.essTail = essTail
        self.essMean = essMean; self.essSD = essSD; self.mcseMean = mcseMean; self.mcseSD = mcseSD
    }

    /// Computes every field for `draws`, sharing work between them: one sort of the split
    /// draws serves rank R-hat, bulk ESS, the folded ranks (by a merge around the median)
    /// and the tail quantiles; ESS of the mean and of the squared deviations are computed
    /// once and reused by the MCSEs. Values are those of the individual functions
    /// (``ChainDraws/rhat(method:)``, ``ChainDraws/ess(method:)``, ``ChainDraws/mcse(method:)``).
    public init(_ draws: ChainDraws) {
        self.init(rhat: nil, rhatSplit: nil, essBulk: nil, essTail: nil, essMean: nil, essSD: nil,
                  mcseMean: nil, mcseSD: nil)
        guard draws.isValid(minimumChains: 1) else { return }
        let s = draws.split()
        let order = RankNormalization.sortOrder(s.values)
        let sortedSplit = order.map { s.values[$0] }
        let z = ChainDraws(chains: s.chains, draws: s.draws, values: RankNormalization.zScores(sorted: sortedSplit, order: order))
        let median = Stat.median(sorted: sortedSplit)
        let fold = RankNormalization.foldedOrder(s.values, order: order, center: median)
        let zFolded = ChainDraws(chains: s.chains, draws: s.draws,
                                 values: RankNormalization.zScores(fold.folded, order: fold.order))
        let twoChains = draws.chains >= 2
        if twoChains {
            let bulk = z.classicRHat(), tail = zFolded.classicRHat()
            rhat = nilIfNaN((bulk.isNaN || tail.isNaN) ? .nan : max(bulk, tail))
            rhatSplit = nilIfNaN(s.classicRHat())
        }
        essBulk = nilIfNaN(z.geyerESS())
        // The tail quantiles are of the unsplit draws: the same values when the draw count is even.
        let sortedAll = draws.draws % 2 == 0 ? sortedSplit : Stat.sorted(draws.values)
        let tails = [0.05, 0.95].map { p -> Double in
            let q = Stat.quantile(sorted: sortedAll, p)
            return draws.mapValues { $0 <= q ? 1 : 0 }.split().geyerESS()
        }
        essTail = nilIfNaN((tails[0].isNaN || tails[1].isNaN) ? .nan : min(tails[0], tails[1]))
        let eMean = s.geyerESS()
        essMean = nilIfNaN(eMean)
        let mean = Stat.mean(draws.values)
        let c2 = draws.mapValues { ($0 - mean) * ($0 - mean) }
        let eSD = c2.split().geyerESS()
        essSD = nilIfNaN(eSD)
        mcseMean = nilIfNaN(Stat.variance(draws.values, ddof: 1).squareRoot() / eMean.squareRoot())
        let evar = Stat.mean(c2.values)
        let varvar = (Stat.mean(c2.values.lazy.map { $0 * $0 }) - evar * evar) / eSD
        mcseSD = nilIfNaN((varvar / evar / 4).squareRoot())
    }

    /// Whether R-hat is below `rhat` and both bulk and tail ESS reach `ess`
    /// (false when any of them is not computable).
    public func passes(rhat maxRHat: Double, ess minESS: Double) -> Bool {
        guard let r = rhat, let b = essBulk, let t = essTail else { return false }
        return r < maxRHat && b >= minESS && t >= minESS
    }
}
