/// A target density for MCMC, evaluated for a batch of chains at once.
///
/// ProbeFarm speaks of an energy G: the log density is −G/τ (plus a log prior or a log
/// Jacobian). Implementations return log p and ∇ log p; a non-finite value marks a
/// point the sampler must reject (it is recorded as divergent, never thrown).
public protocol LogDensity: Sendable {
    /// The dimension of one chain's position.
    var dimension: Int { get }

    /// log p and ∇ log p at `count` positions stored row-major in `positions`
    /// (`count × dimension`); `values` has `count` entries, `gradients` `count × dimension`.
    func evaluate(_ positions: [Double], count: Int) -> (values: [Double], gradients: [Double])

    /// The tempered density used during warm-up annealing: the likelihood-like part scaled
    /// by β ∈ (0, 1] (a prior or Jacobian stays whole). The default scales all of log p.
    func evaluate(_ positions: [Double], count: Int, inverseTemperature beta: Double) -> (values: [Double], gradients: [Double])

    /// The same with an inverse temperature per position (chains of one batch may be at
    /// different warm-up iterations). The default evaluates at β = 1 and scales each row.
    func evaluate(_ positions: [Double], count: Int, inverseTemperatures betas: [Double]) -> (values: [Double], gradients: [Double])

    /// True when a position's value and gradient do not depend on the other positions
    /// evaluated with it, bit for bit. Batched neural networks are not (a product's
    /// blocking depends on the batch size), so a batch with some chains idle is padded to
    /// its full size to keep every chain's draws independent of the others' progress.
    var batchInvariant: Bool { get }
}

extension LogDensity {
    public func evaluate(_ positions: [Double], count: Int, inverseTemperature beta: Double) -> (values: [Double], gradients: [Double]) {
        let r = evaluate(positions, count: count)
        guard beta != 1 else { return r }
        return (r.values.map { $0 * beta }, r.gradients.map { $0 * beta })
    }

    public func evaluate(_ positions: [Double], count: Int, inverseTemperatures betas: [Double]) -> (values: [Double], gradients: [Double]) {
        if let b = betas.first, betas.allSatisfy({ $0 == b }) {
            return evaluate(positions, count: count, inverseTemperature: b)
        }
        var r = evaluate(positions, count: count)
        let d = dimension
        for c in 0..<count where betas[c] != 1 {
            r.values[c] *= betas[c]
            for i in (c * d)..<((c + 1) * d) { r.gradients[i] *= betas[c] }
        }
        return r
    }

    public var batchInvariant: Bool { false }
}

/// A density seen at an inverse temperature per position (tempered replicas in a batch).
struct RowTempered: LogDensity {
    var base: any LogDensity
    var betas: [Double]
    var dimension: Int { base.dimension }
    var batchInvariant: Bool { base.batchInvariant }
    func evaluate(_ positions: [Double], count: Int) -> (values: [Double], gradients: [Double]) {
        precondition(count == betas.count, "one inverse temperature per position")
        return base.evaluate(positions, count: count, inverseTemperatures: betas)
    }
}

/// A log density given by a closure of one position (for tests and small targets).
public struct ClosureDensity: LogDensity {
    public let dimension: Int
    let body: @Sendable ([Double]) -> (Double, [Double])

    public init(dimension: Int, _ body: @escaping @Sendable ([Double]) -> (Double, [Double])) {
        self.dimension = dimension
        self.body = body
    }

    public var batchInvariant: Bool { true }

    public func evaluate(_ positions: [Double], count: Int) -> (values: [Double], gradients: [Double]) {
        var values = [Double](), gradients = [Double]()
        values.reserveCapacity(count)
        gradients.reserveCapacity(count * dimension)
        for c in 0..<count {
            let (v, g) = body(Array(positions[(c * dimension)..<((c + 1) * dimension)]))
            values.append(v)
            gradients += g
        }
        return (values, gradients)
    }
}
