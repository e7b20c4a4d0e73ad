extension ChainDraws {
    /// Nested R-hat (Margossian, Hoffman, Sountsov, Riou-Durand, Vehtari, Gelman 2024)
    /// for chains grouped into superchains of equal size, as arviz-stats defines it:
    /// √(1 + B̂_ν / Ŵ_ν), where B̂_ν is the variance (ddof 1) of the superchain means and
    /// Ŵ_ν the mean over superchains of (mean within-chain variance + variance of the
    /// chain means inside the superchain, 0 with one chain per superchain).
    ///
    /// `method` transforms the draws first, as for ``rhat(method:)`` (splitting keeps
    /// each half-chain in its chain's superchain).
    ///
    /// - Parameter superchain: the superchain of each chain (any integer labels).
    /// - Returns: `nil` when fewer than 2 chains or 4 draws, NaN present, superchains of
    ///   unequal size, or a zero denominator.
    public func nestedRHat(superchain: [Int], method: RHatMethod = .rank) -> Double? {
        guard isValid(minimumChains: 2), superchain.count == chains else { return nil }
        let doubled = superchain + superchain
        let value: Double?
        switch method {
        case .rank:
            let s = split()
            guard let bulk = s.zScaled().classicNestedRHat(doubled),
                  let tail = s.folded().zScaled().classicNestedRHat(doubled) else { return nil }
            value = (bulk.isNaN || tail.isNaN) ? .nan : max(bulk, tail)
        case .split: value = split().classicNestedRHat(doubled)
        case .folded: value = split().folded().zScaled().classicNestedRHat(doubled)
        case .zScale: value = split().zScaled().classicNestedRHat(doubled)
        case .identity: value = classicNestedRHat(superchain)
        }
        guard let value, !value.isNaN else { return nil }
        return value
    }

    func classicNestedRHat(_ superchain: [Int]) -> Double? {
        let labels = Array(Set(superchain)).sorted()
        let groups = labels.map { k in superchain.indices.filter { superchain[$0] == k } }
        let size = groups[0].count
        guard groups.allSatisfy({ $0.count == size }) else { return nil }
        let means = (0..<chains).map { Stat.mean(chain($0)) }
        let variances = (0..<chains).map { draws == 1 ? 0 : Stat.variance(chain($0), ddof: 1) }
        var superMeans = [Double](), withinTerms = [Double]()
        for g in groups {
            let m = g.map { means[$0] }
            superMeans.append(Stat.mean(m))
            let between = size == 1 ? 0 : Stat.variance(m, ddof: 1)
            withinTerms.append(Stat.mean(g.map { variances[$0] }) + between)
        }
        let b = Stat.variance(superMeans, ddof: 1)
        let w = Stat.mean(withinTerms)
        return (1 + b / w).squareRoot()
    }
}
