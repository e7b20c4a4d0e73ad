/// Everything needed to continue a chain exactly where it stopped. Resuming from a
/// checkpoint gives the same draws, bit for bit, as running straight through: the random
/// numbers depend only on (seed, chain, iteration) and the cached density and gradient
/// are carried, not recomputed.
public struct ChainCheckpoint: Sendable, Codable, Equatable {
    public var chain: Int
    /// The next iteration to run (warm-up iterations count from 0).
    public var iteration: Int
    public var state: ChainState
    /// The step size in use (adapting during warm-up, frozen after).
    public var stepSize: Double
    public var adaptation: DualAveraging
    public var inverseMetric: [Double]?
    public var metricEstimate: VarianceAccumulator?

    public init(chain: Int, iteration: Int, state: ChainState, stepSize: Double, adaptation: DualAveraging,
                inverseMetric: [Double]? = nil, metricEstimate: VarianceAccumulator? = nil) {
        self.chain = chain
        self.iteration = iteration
        self.state = state
        self.stepSize = stepSize
        self.adaptation = adaptation
        self.inverseMetric = inverseMetric
        self.metricEstimate = metricEstimate
    }
}

/// One iteration of one chain, as recorded.
public struct DrawRecord: Sendable {
    public var chain: Int
    public var iteration: Int
    public var isWarmup: Bool
    public var position: [Double]
    public var logDensity: Double
    public var info: StepInfo
    public var stepSize: Double
}

/// Runs groups of chains in lockstep: every chain of the group advances one iteration
/// per batched kernel step. The driver owns warm-up (dual averaging, metric windows) and
/// checkpoints; kernels know nothing of either (NumPyro's MCMC vs MCMCKernel).
public struct ChainRunner: Sendable {
    public var settings: SamplerSettings
    public var seed: UInt64
    public var target: any LogDensity

    public init(settings: SamplerSettings, seed: UInt64, target: any LogDensity) {
        self.settings = settings
        self.seed = seed
        self.target = target
    }

    public var totalIterations: Int { settings.warmup + settings.draws }

    /// Checkpoints at iteration 0 from initial positions (one batched evaluation).
    /// - Returns: nil for a chain whose initial density is not finite.
    public func start(chains: [Int], positions: [[Double]]) -> [ChainCheckpoint?] {
        let d = target.dimension
        let (values, gradients) = target.evaluate(positions.flatMap { $0 }, count: chains.count,
                                                  inverseTemperature: settings.inverseTemperature(at: 0))
        return chains.indices.map { k in
            let g = Array(gradients[(k * d)..<((k + 1) * d)])
            guard values[k].isFinite, g.allSatisfy(\.isFinite) else { return nil }
            return ChainCheckpoint(
                chain: chains[k], iteration: 0,
                state: ChainState(position: positions[k], logDensity: values[k], gradient: g),
                stepSize: settings.initialStepSize,
                adaptation: DualAveraging(initialStep: settings.initialStepSize, target: settings.targetAcceptance),
                inverseMetric: nil,
                metricEstimate: settings.adaptMetric ? VarianceAccumulator(dimension: d) : nil)
        }
    }

    /// Advances every chain by `iterations` (or to the end of the run), calling `record`
    /// for each chain after each iteration.
    /// - Precondition: all checkpoints are at the same iteration.
    public func advance(_ checkpoints: inout [ChainCheckpoint], iterations: Int, record: (DrawRecord) -> Void) {
        guard let first = checkpoints.first else { return }
        precondition(checkpoints.allSatisfy { $0.iteration == first.iteration }, "chains of a group must be in lockstep")
        let kernel = settings.kernel
        let window = settings.metricWindow
        let end = min(first.iteration + iterations, totalIterations)
        // The states live here for the whole call and go back into the checkpoints at the
        // end: a kernel then updates their arrays in place instead of copying shared ones.
        var states = checkpoints.map(\.state)
        for k in checkpoints.indices { checkpoints[k].state = ChainState(position: [], logDensity: 0, gradient: []) }
        defer { for k in checkpoints.indices { checkpoints[k].state = states[k] } }
        let streams = checkpoints.map { RandomStream(seed: seed, chain: $0.chain) }
        var context = StepContext(stepSizes: checkpoints.map(\.stepSize), inverseMetric: nil, streams: streams, iteration: 0)
        for it in first.iteration..<end {
            let warmup = it < settings.warmup
            context.iteration = UInt64(it)
            for k in checkpoints.indices { context.stepSizes[k] = checkpoints[k].stepSize }
            context.inverseMetric = checkpoints.first!.inverseMetric == nil ? nil : checkpoints.map { $0.inverseMetric! }
            let beta = settings.inverseTemperature(at: it)
            let nextBeta = settings.inverseTemperature(at: it + 1)
            let infos = kernel.step(&states, context: context, target: beta == 1 ? target : Tempered(base: target, beta: beta))
            if nextBeta != beta {
                // The temperature changes: re-evaluate the cached density and gradient.
                let r = target.evaluate(states.flatMap(\.position), count: states.count, inverseTemperature: nextBeta)
                let d = target.dimension
                for k in states.indices {
                    states[k].logDensity = r.values[k]
                    states[k].gradient = Array(r.gradients[(k * d)..<((k + 1) * d)])
                }
            }
            for k in checkpoints.indices {
                var cp = checkpoints[k]
                let usedStep = cp.stepSize
                if warmup {
                    cp.adaptation.update(acceptance: infos[k].acceptanceProbability)
                    cp.stepSize = cp.adaptation.current
                    if window.contains(it) {
                        cp.metricEstimate?.add(states[k].position)
                        if it == window.upperBound - 1, let estimate = cp.metricEstimate {
                            cp.inverseMetric = estimate.regularizedVariance
                            cp.adaptation.restart(at: cp.stepSize)
                            cp.stepSize = cp.adaptation.current
                        }
                    }
                    if it == settings.warmup - 1 {
                        cp.stepSize = cp.adaptation.final
                        cp.metricEstimate = nil
                    }
                }
                cp.iteration = it + 1
                checkpoints[k] = cp
                record(DrawRecord(chain: cp.chain, iteration: it, isWarmup: warmup, position: states[k].position,
                                  logDensity: states[k].logDensity, info: infos[k], stepSize: usedStep))
            }
        }
    }
}
