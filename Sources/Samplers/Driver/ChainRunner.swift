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
    public var adaptation: WarmupAdaptation
    /// The inverse metric in use (adapted at the end of each warm-up window).
    public var metric: Metric

    public init(chain: Int, iteration: Int, state: ChainState, stepSize: Double, adaptation: WarmupAdaptation,
                metric: Metric = .identity) {
        self.chain = chain
        self.iteration = iteration
        self.state = state
        self.stepSize = stepSize
        self.adaptation = adaptation
        self.metric = metric
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

/// Runs groups of chains as one batch. The driver owns warm-up (``WarmupAdaptation`` on
/// Stan's ``WarmupSchedule``) and checkpoints; kernels know nothing of either (NumPyro's
/// MCMC vs MCMCKernel).
///
/// MALA, HMC and RWM advance every chain one iteration per batched kernel step. NUTS
/// trajectories differ in length from chain to chain and transition to transition, so
/// each batched evaluation advances every chain by one leapfrog step of its own
/// trajectory, and a chain that finishes a transition starts its next one at once: a call
/// costs the largest of the chains' own step totals, not the sum over iterations of the
/// longest trajectory. Chains meet again at the end of the call (checkpoints are always
/// at the same iteration), and a chain's draws depend on (seed, chain, start) alone.
public struct ChainRunner: Sendable {
    public var settings: SamplerSettings
    public var seed: UInt64
    public var target: any LogDensity
    /// Deliberate errors, for the negative controls of the kernel tests.
    public enum Fault: Sendable {
        /// NUTS without the U-turn checks across subtrees (Stan before 2.21).
        case noChecksAcrossSubtrees
        /// NUTS that keeps each new subtree's state whatever its weight.
        case ignoreWeights
        /// Preconditioned MALA whose proposal density uses the identity, not the metric.
        case malaDensityIgnoresMetric
    }

    /// For tests only: a deliberate error (nil: the correct kernels).
    public var fault: Fault?

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
                adaptation: WarmupAdaptation(initialStep: settings.initialStepSize, targetAcceptance: settings.targetAcceptance,
                                             restartScale: settings.method == .nuts || settings.method == .hmc ? 10 : 2))
        }
    }

    /// Advances every chain by `iterations` (or to the end of the run), calling `record`
    /// for each chain after each of its iterations (in order per chain).
    /// - Returns: the number of batched density evaluations made.
    /// - Precondition: all checkpoints are at the same iteration.
    @discardableResult
    public func advance(_ checkpoints: inout [ChainCheckpoint], iterations: Int, record: (DrawRecord) -> Void) -> Int {
        guard let first = checkpoints.first else { return 0 }
        precondition(checkpoints.allSatisfy { $0.iteration == first.iteration }, "chains of a group must be in lockstep")
        let end = min(first.iteration + iterations, totalIterations)
        guard first.iteration < end else { return 0 }
        // The states live here for the whole call and go back into the checkpoints at the
        // end: a kernel then updates their arrays in place instead of copying shared ones.
        var states = checkpoints.map(\.state)
        for k in checkpoints.indices { checkpoints[k].state = ChainState(position: [], logDensity: 0, gradient: []) }
        defer { for k in checkpoints.indices { checkpoints[k].state = states[k] } }
        if var kernel = settings.kernel {
            if fault == .malaDensityIgnoresMetric { kernel = MALA(densityIgnoresMetric: true) }
            return advanceLockstep(&checkpoints, &states, kernel: kernel, end: end, record: record)
        }
        return advanceTrajectories(&checkpoints, &states, end: end, record: record)
    }

    /// Adaptation and recording after chain `k`'s iteration `it`.
    func conclude(_ cp: inout ChainCheckpoint, iteration it: Int, state: ChainState, info: StepInfo,
                  schedule: WarmupSchedule, record: (DrawRecord) -> Void) {
        let usedStep = cp.stepSize
        if it < settings.warmup {
            let change = cp.adaptation.update(iteration: it, acceptance: info.acceptanceProbability, position: state.position,
                                              schedule: schedule, metricKind: settings.metric)
            cp.stepSize = change.stepSize
            if let m = change.metric { cp.metric = m }
        }
        cp.iteration = it + 1
        record(DrawRecord(chain: cp.chain, iteration: it, isWarmup: it < settings.warmup, position: state.position,
                          logDensity: state.logDensity, info: info, stepSize: usedStep))
    }

    func advanceLockstep(_ checkpoints: inout [ChainCheckpoint], _ states: inout [ChainState], kernel: any Kernel,
                         end: Int, record: (DrawRecord) -> Void) -> Int {
        let schedule = settings.schedule
        let streams = checkpoints.map { RandomStream(seed: seed, chain: $0.chain) }
        var context = StepContext(stepSizes: checkpoints.map(\.stepSize), streams: streams, iteration: 0)
        var evaluations = 0
        for it in checkpoints[0].iteration..<end {
            context.iteration = UInt64(it)
            for k in checkpoints.indices { context.stepSizes[k] = checkpoints[k].stepSize }
            context.metrics = checkpoints.allSatisfy { $0.metric.kind == .identity } ? [] : checkpoints.map(\.metric)
            let beta = settings.inverseTemperature(at: it)
            let nextBeta = settings.inverseTemperature(at: it + 1)
            let infos = kernel.step(&states, context: context, target: beta == 1 ? target : Tempered(base: target, beta: beta))
            evaluations += infos.first?.steps ?? 1
            if nextBeta != beta {
                // The temperature changes: re-evaluate the cached density and gradient.
                let r = target.evaluate(states.flatMap(\.position), count: states.count, inverseTemperature: nextBeta)
                evaluations += 1
                let d = target.dimension
                for k in states.indices {
                    states[k].logDensity = r.values[k]
                    states[k].gradient = Array(r.gradients[(k * d)..<((k + 1) * d)])
                }
            }
            for k in checkpoints.indices {
                conclude(&checkpoints[k], iteration: it, state: states[k], info: infos[k], schedule: schedule, record: record)
            }
        }
        return evaluations
    }

    func advanceTrajectories(_ checkpoints: inout [ChainCheckpoint], _ states: inout [ChainState], end: Int,
                             record: (DrawRecord) -> Void) -> Int {
        let schedule = settings.schedule, d = target.dimension, n = checkpoints.count
        let streams = checkpoints.map { RandomStream(seed: seed, chain: $0.chain) }
        let padded = !target.batchInvariant
        var transitions = [NUTSTransition?](repeating: nil, count: n)
        // A chain whose next iteration is at another annealing temperature first has its
        // cached density and gradient evaluated again, as the lockstep driver does.
        var refreshing = [Bool](repeating: false, count: n)
        var evaluations = 0
        while true {
            for k in 0..<n where transitions[k] == nil && !refreshing[k] && checkpoints[k].iteration < end {
                transitions[k] = NUTSTransition(
                    state: states[k], stepSize: checkpoints[k].stepSize, metric: checkpoints[k].metric,
                    maxDepth: settings.maxTreeDepth, stream: streams[k], iteration: UInt64(checkpoints[k].iteration),
                    fault: fault)
            }
            let active = (0..<n).filter { refreshing[$0] || transitions[$0]?.pending != nil }
            guard !active.isEmpty else { break }
            let rows = padded ? Array(0..<n) : active
            var positions = [Double]()
            positions.reserveCapacity(rows.count * d)
            for k in rows { positions += transitions[k]?.pending ?? states[k].position }
            let betas = rows.map { settings.inverseTemperature(at: checkpoints[$0].iteration) }
            let r = target.evaluate(positions, count: rows.count, inverseTemperatures: betas)
            evaluations += 1
            for (row, k) in rows.enumerated() {
                let gradient = r.gradients[(row * d)..<((row + 1) * d)]
                if refreshing[k] {
                    states[k].logDensity = r.values[row]
                    states[k].gradient = Array(gradient)
                    refreshing[k] = false
                    continue
                }
                guard transitions[k]?.pending != nil else { continue }
                transitions[k]!.receive(logDensity: r.values[row], gradient: gradient)
                guard transitions[k]!.pending == nil else { continue }
                let (state, info) = transitions[k]!.result
                transitions[k] = nil
                states[k] = state
                let it = checkpoints[k].iteration
                conclude(&checkpoints[k], iteration: it, state: state, info: info, schedule: schedule, record: record)
                refreshing[k] = settings.inverseTemperature(at: it + 1) != settings.inverseTemperature(at: it)
            }
        }
        return evaluations
    }
}
