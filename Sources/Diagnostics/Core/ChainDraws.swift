/// Draws of one scalar quantity from several chains: a (chain, draw) array in Float64,
/// row-major (chain `c`, draw `i` at `values[c * draws + i]`).
///
/// Every diagnostic in this module is a pure function of a `ChainDraws`, computed the
/// way ArviZ 0.23.4 computes it (Vehtari, Gelman, Simpson, Carpenter, Bürkner 2021:
/// "Rank-normalization, folding, and localization: an improved R-hat").
public struct ChainDraws: Sendable, Equatable {
    public let chains: Int
    public let draws: Int
    public var values: [Double]

    /// - Precondition: `values.count == chains * draws`.
    public init(chains: Int, draws: Int, values: [Double]) {
        precondition(values.count == chains * draws, "\(values.count) values for \(chains)×\(draws)")
        self.chains = chains
        self.draws = draws
        self.values = values
    }

    /// One row per chain.
    public init(_ rows: [[Double]]) {
        let n = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == n }, "chains of unequal length")
        self.init(chains: rows.count, draws: n, values: rows.flatMap { $0 })
    }

    /// The draws of chain `c`.
    public func chain(_ c: Int) -> ArraySlice<Double> {
        values[(c * draws)..<((c + 1) * draws)]
    }

    /// Whether any value is NaN (ArviZ then reports nothing for this quantity).
    public var containsNaN: Bool { values.contains { $0.isNaN } }

    /// ArviZ's shape check: at least `minimumDraws` draws and `minimumChains` chains,
    /// and no NaN.
    func isValid(minimumChains: Int) -> Bool {
        draws >= 4 && chains >= minimumChains && !containsNaN
    }

    /// Split chains: the first and the last ⌊n/2⌋ draws of each chain become separate
    /// chains (the middle draw of an odd-length chain is dropped), first halves first.
    public func split() -> ChainDraws {
        let half = draws / 2
        var out = [Double]()
        out.reserveCapacity(2 * chains * half)
        for c in 0..<chains { out += values[(c * draws)..<(c * draws + half)] }
        for c in 0..<chains { out += values[((c + 1) * draws - half)..<((c + 1) * draws)] }
        return ChainDraws(chains: 2 * chains, draws: half, values: out)
    }

    /// The same shape with every value transformed.
    func mapValues(_ f: (Double) -> Double) -> ChainDraws {
        ChainDraws(chains: chains, draws: draws, values: values.map(f))
    }
}

extension ChainDraws {
    /// Splits a (chains, draws, d) array stored row-major (quantity fastest) into d
    /// quantities, with a blocked transpose so the large array is read sequentially.
    public static func quantities(interleaved v: [Double], chains: Int, draws: Int, dimension d: Int) -> [ChainDraws] {
        let rows = chains * draws
        precondition(v.count == rows * d)
        var out = [[Double]](repeating: [], count: d)
        for j in 0..<d { out[j].reserveCapacity(rows) }
        let block = 64
        v.withUnsafeBufferPointer { src in
            var r0 = 0
            while r0 < rows {
                let r1 = min(r0 + block, rows)
                for j in 0..<d {
                    for r in r0..<r1 { out[j].append(src[r * d + j]) }
                }
                r0 = r1
            }
        }
        return out.map { ChainDraws(chains: chains, draws: draws, values: $0) }
    }
}
