/// Draws of `quantities` scalar quantities from `chains` chains, fed segment by segment
/// as a coordinator receives them, with diagnostics available at any time.
///
/// - Per chain and quantity it keeps running moments of the whole chain, plus a
///   checkpoint of those moments at every segment boundary. Classic R-hat is then O(C)
///   per quantity, and split R-hat O(C + segment length): the first half's moments are a
///   checkpoint extended by at most one partial segment, the second half's are the total
///   minus the moments of the prefix before it.
/// - Rank-based diagnostics (rank R-hat, bulk/tail ESS) and ESS of the mean need every
///   draw, so the draws are stored too and those are recomputed on demand from them.
///
/// Memory: 8 bytes per draw per quantity (the stored draws) plus 24 bytes per quantity
/// per chain per segment (the checkpoints); see ``memoryBytes``. Diagnostics use the
/// first n draws of every chain, n the shortest chain's length.
public struct DrawAccumulator: Sendable {
    public let chains: Int
    public let quantities: Int
    /// Per chain: draw-major values (draw i, quantity q at i·quantities + q).
    private var stored: [[Double]]
    /// Per chain: whole-chain moments per quantity.
    private var totals: [[RunningMoments]]
    /// Per chain: (draw count, moments per quantity) at each segment's end.
    private var checkpoints: [[(count: Int, moments: [RunningMoments])]]

    public init(chains: Int, quantities: Int) {
        precondition(chains > 0 && quantities > 0)
        self.chains = chains
        self.quantities = quantities
        stored = Array(repeating: [], count: chains)
        totals = Array(repeating: Array(repeating: RunningMoments(), count: quantities), count: chains)
        checkpoints = Array(repeating: [], count: chains)
    }

    /// Appends a segment of draws for `chain`: `values.count / quantities` draws, draw-major.
    public mutating func append(chain: Int, values: [Double]) {
        precondition(values.count % quantities == 0, "a segment must hold whole draws")
        stored[chain] += values
        for (i, v) in values.enumerated() { totals[chain][i % quantities].add(v) }
        checkpoints[chain].append((stored[chain].count / quantities, totals[chain]))
    }

    /// Draws per chain in every chain (the shortest chain's length).
    public var draws: Int { (0..<chains).map { stored[$0].count / quantities }.min() ?? 0 }

    /// Bytes held: stored draws plus moment checkpoints.
    public var memoryBytes: Int {
        stored.reduce(0) { $0 + 8 * $1.count }
            + checkpoints.reduce(0) { $0 + $1.count * (8 + quantities * MemoryLayout<RunningMoments>.stride) }
    }

    /// Moments of draws [0, k) of one chain's quantity: the last checkpoint at or below k,
    /// extended with the stored draws after it.
    private func prefixMoments(chain c: Int, quantity q: Int, upTo k: Int) -> RunningMoments {
        var m = RunningMoments()
        var from = 0
        if let cp = checkpoints[c].last(where: { $0.count <= k }) {
            m = cp.moments[q]
            from = cp.count
        }
        for i in from..<k { m.add(stored[c][i * quantities + q]) }
        return m
    }

    /// Classic R-hat (no split) over the common length, from running moments.
    public func classicRHat(quantity q: Int) -> Double? {
        let n = draws
        guard n >= 4 else { return nil }
        return RunningMoments.rhat((0..<chains).map { prefixMoments(chain: $0, quantity: q, upTo: n) })
    }

    /// Classic split R-hat over the common length, from running moments.
    public func splitRHat(quantity q: Int) -> Double? {
        let n = draws
        guard n >= 4, chains >= 2 else { return nil }
        let half = n / 2
        var halves = [RunningMoments]()
        var seconds = [RunningMoments]()
        for c in 0..<chains {
            halves.append(prefixMoments(chain: c, quantity: q, upTo: half))
            let whole = prefixMoments(chain: c, quantity: q, upTo: n)
            seconds.append(whole.removing(prefix: prefixMoments(chain: c, quantity: q, upTo: n - half)))
        }
        return RunningMoments.rhat(halves + seconds)
    }

    /// The stored draws of one quantity over the common length.
    public func chainDraws(quantity q: Int) -> ChainDraws {
        let n = draws
        var v = [Double]()
        v.reserveCapacity(chains * n)
        for c in 0..<chains { for i in 0..<n { v.append(stored[c][i * quantities + q]) } }
        return ChainDraws(chains: chains, draws: n, values: v)
    }

    /// Every diagnostic of one quantity, recomputed from the stored draws.
    public func summary(quantity q: Int) -> QuantitySummary {
        QuantitySummary(chainDraws(quantity: q))
    }
}
