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

    /// Computes every field for `draws` (values `nil` where ArviZ gives NaN).
    public init(_ draws: ChainDraws) {
        rhat = draws.rhat(method: .rank)
        rhatSplit = draws.rhat(method: .split)
        essBulk = draws.ess(method: .bulk)
        essTail = draws.ess(method: .tail)
        essMean = draws.ess(method: .mean)
        essSD = draws.ess(method: .sd)
        mcseMean = draws.mcse(method: .mean)
        mcseSD = draws.mcse(method: .sd)
    }

    /// Whether R-hat is below `rhat` and both bulk and tail ESS reach `ess`
    /// (false when any of them is not computable).
    public func passes(rhat maxRHat: Double, ess minESS: Double) -> Bool {
        guard let r = rhat, let b = essBulk, let t = essTail else { return false }
        return r < maxRHat && b >= minESS && t >= minESS
    }
}
