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
    static func sortOrder(_ x: [Double]) -> [Int] { RadixSort.order(x) }

    /// The sort order of |x − m| given the sort order of x: the values below m read
    /// backwards and those at or above it read forwards are each already sorted by
    /// |x − m| (rounding is monotone), so one merge orders them in O(n).
    static func foldedOrder(_ x: [Double], order: [Int], center m: Double) -> (folded: [Double], order: [Int]) {
        let folded = x.map { abs($0 - m) }
        var split = order.count
        for (k, i) in order.enumerated() where x[i] >= m { split = k; break }
        var out = [Int]()
        out.reserveCapacity(order.count)
        var left = split - 1, right = split
        while left >= 0 || right < order.count {
            if right >= order.count || (left >= 0 && folded[order[left]] <= folded[order[right]]) {
                out.append(order[left]); left -= 1
            } else {
                out.append(order[right]); right += 1
            }
        }
        return (folded, out)
    }

    /// The rank-normalised z-scores of every value, in the original order.
    static func zScores(_ x: [Double]) -> [Double] {
        zScores(x, order: sortOrder(x))
    }

    static func zScores(_ x: [Double], order: [Int]) -> [Double] {
        zScores(sorted: order.map { x[$0] }, order: order)
    }

    /// z-scores given the sorted values and the permutation that sorted them: ties are
    /// runs of equal neighbours, found without going back to the unsorted values.
    static func zScores(sorted v: [Double], order: [Int]) -> [Double] {
        let table = NormalScores.table(for: v.count)
        let n = v.count
        var z = [Double](repeating: 0, count: n)
        v.withUnsafeBufferPointer { v in
            order.withUnsafeBufferPointer { o in
                table.withUnsafeBufferPointer { t in
                    z.withUnsafeMutableBufferPointer { z in
                        var i = 0
                        while i < n {
                            var j = i
                            while j + 1 < n && v[j + 1] == v[i] { j += 1 }
                            let s = t[i + j]  // twice the average rank, minus 2
                            for k in i...j { z[o[k]] = s }
                            i = j + 1
                        }
                    }
                }
            }
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
        let m = Stat.median(sorted: Stat.sorted(values))
        return mapValues { abs($0 - m) }
    }
}
