import Synchronization

/// Rank normalisation: values → average ranks → Blom's back-transform
/// `(r − 3/8) / (N − 3/4 + 1)` → standard normal quantiles (ArviZ's `_z_scale`).
enum RankNormalization {
    /// Ranks of the values (1-based, ties get the average rank) given the permutation
    /// that sorts them.
    static func averageRanks(_ x: [Double], order: [Int]) -> [Double] {
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let r = Double(i + j + 2) / 2  // mean of ranks i+1 … j+1
            for k in i...j { ranks[order[k]] = r }
            i = j + 1
        }
        return ranks
    }

    /// The permutation that sorts `x` ascending (stable).
    static func sortOrder(_ x: [Double]) -> [Int] {
        Array(x.indices).sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
    }

    /// The rank-normalised z-scores of every value, in the original order.
    static func zScores(_ x: [Double]) -> [Double] {
        zScores(x, order: sortOrder(x))
    }

    static func zScores(_ x: [Double], order: [Int]) -> [Double] {
        let table = NormalScores.table(for: x.count)
        var z = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let s = table[i + j]  // twice the average rank, minus 2
            for k in i...j { z[order[k]] = s }
            i = j + 1
        }
        return z
    }
}

/// Normal scores Φ⁻¹((r − 3/8)/(N + 1/4)) for every integer and half-integer rank r of
/// N values, computed once per N and shared (the quantile function dominates otherwise).
enum NormalScores {
    private static let cache = Mutex<[Int: [Double]]>([:])

    /// `table[k]` is the score of rank `(k + 2) / 2`, for k in 0…2N−2.
    static func table(for n: Int) -> [Double] {
        if let t = cache.withLock({ $0[n] }) { return t }
        let denominator = Double(n) - 2 * 0.375 + 1
        let t = (0..<max(2 * n - 1, 1)).map { k in
            SpecialFunctions.normalQuantile((Double(k + 2) / 2 - 0.375) / denominator)
        }
        cache.withLock { c in
            if c.count > 16 { c.removeAll() }
            c[n] = t
        }
        return t
    }
}

extension ChainDraws {
    /// Rank-normalised z-scores over all chains together (ArviZ's `_z_scale`).
    public func zScaled() -> ChainDraws {
        ChainDraws(chains: chains, draws: draws, values: RankNormalization.zScores(values))
    }

    /// |x − median(x)| over all chains together (the folding of the tail diagnostics).
    public func folded() -> ChainDraws {
        let m = Stat.median(sorted: values.sorted())
        return mapValues { abs($0 - m) }
    }
}
