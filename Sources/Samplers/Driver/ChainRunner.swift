import Foundation

/// A tempered replica's part of a checkpoint (replica exchange; the β = 1 replica is the
/// checkpoint itself).
public struct ReplicaCheckpoint: Sendable, Codable, Equatable {
    public var state: ChainState
    public var stepSize: Double
    public var adaptation: WarmupAdaptation
    public var metric: Metric

    public init(state: ChainState, stepSize: Double, adaptation: WarmupAdaptation, metric: Metric = .identity) {
        self.state = state
        self.stepSize = stepSize
        self.adaptation = adaptation
        self.metric = metric
    }
}

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
    /// Replica exchange: the hot replicas (β < 1, coldest first) and the ladder.
    public var replicas: [ReplicaCheckpoint]
    public var ladder: TemperingLadder?
    /// The chain whose warm-up state this chain was restarted from, if it was stranded.
    public var restartedFrom: Int?

    /// The β = 1 replica's part, as a replica's.
    public var slot: ReplicaCheckpoint {
        get { ReplicaCheckpoint(state: state, stepSize: stepSize, adaptation: adaptation, metric: metric) }
        set {
            state = newValue.state
            stepSize = newValue.stepSize
            adaptation = newValue.adaptation
            metric = newValue.metric
        }
    }

    public init(chain: Int, iteration: Int, state: ChainState, stepSize: Double, adaptation: WarmupAdaptation,
                metric: Metric = .identity, replicas: [ReplicaCheckpoint] = [], ladder: TemperingLadder? = nil) {
        self.chain = chain
        self.iteration = iteration
        self.state = state
        self.stepSize = stepSize
        self.adaptation = adaptation
        self.metric = metric
        self.replicas = replicas
        self.ladder = ladder
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
/// Stan's ``WarmupSchedule``), replica exchange (``TemperingLadder``) and checkpoints;
/// kernels know nothing of either (NumPyro's MCMC vs MCMCKernel).
///
/// Every replica of every chain is a slot of the batch (chains × replicas rows). MALA, HMC
/// and RWM advance every slot one iteration per batched kernel step. NUTS trajectories
/// differ in length from slot to slot and iteration to iteration, so each batched
/// evaluation advances every slot by one leapfrog step of its own trajectory, and a slot
/// that finishes a transition starts its next one at once (with tempering, once its
/// chain's replicas have all finished the iteration and swapped): a call costs the largest
/// of the chains' own step totals, not the sum over iterations of the longest trajectory.
/// Chains meet again at the end of the call (checkpoints are always at the same iteration)
/// and, in warm-up, at the schedule's meetings (``meet``); between meetings a chain's draws
/// do not depend on how far the others have got, so they are a function of (seed, group)
/// wherever and in however many segments the group runs.
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
        /// Differential evolution whose difference may involve the moving chain itself.
        case evolutionIncludesSelf
    }

    /// For tests only: a deliberate error (nil: the correct kernels).
    public var fault: Fault?

    /// Asked between batched evaluations: true abandons the call (``advance`` returns
    /// early, its checkpoints no longer in lockstep and not to be used). A worker that must
    /// leave stops a long NUTS segment with it rather than exit under a running BLAS call.
    public var cancelled: @Sendable () -> Bool = { false }

    public init(settings: SamplerSettings, seed: UInt64, target: any LogDensity) {
        self.settings = settings
        self.seed = seed
        self.target = target
    }

    public var totalIterations: Int { settings.warmup + settings.draws }

    func newAdaptation() -> WarmupAdaptation {
        WarmupAdaptation(initialStep: settings.initialStepSize, targetAcceptance: settings.targetAcceptance,
                         restartScale: settings.method == .nuts || settings.method == .hmc ? 10 : 2)
    }

    /// Checkpoints at iteration 0 from initial positions (one batched evaluation; with
    /// tempering every replica starts where its chain does).
    /// - Returns: nil for a chain whose initial density is not finite.
    public func start(chains: [Int], positions: [[Double]]) -> [ChainCheckpoint?] {
        let d = target.dimension, R = settings.replicas
        let ladder = settings.tempering.map { TemperingLadder(replicas: $0.replicas, maxTemperature: $0.maxTemperature) }
        let betas = ladder?.betas ?? [1]
        let beta0 = settings.inverseTemperature(at: 0)
        let rows = chains.indices.flatMap { k in Array(repeating: positions[k], count: R) }
        let (values, gradients) = target.evaluate(rows.flatMap { $0 }, count: rows.count,
                                                  inverseTemperatures: (0..<rows.count).map { beta0 * betas[$0 % R] })
        return chains.indices.map { k in
            let slots = (0..<R).map { r -> ChainState? in
                let s = k * R + r
                let g = Array(gradients[(s * d)..<((s + 1) * d)])
                guard values[s].isFinite, g.allSatisfy(\.isFinite) else { return nil }
                return ChainState(position: positions[k], logDensity: values[s], gradient: g)
            }
            guard slots.allSatisfy({ $0 != nil }) else { return nil }
            return ChainCheckpoint(
                chain: chains[k], iteration: 0, state: slots[0]!, stepSize: settings.initialStepSize,
                adaptation: newAdaptation(),
                replicas: slots.dropFirst().map { ReplicaCheckpoint(state: $0!, stepSize: settings.initialStepSize, adaptation: newAdaptation()) },
                ladder: ladder)
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
        var batch = Batch(checkpoints, seed: seed, replicas: settings.replicas)
        for k in checkpoints.indices { checkpoints[k].state = ChainState(position: [], logDensity: 0, gradient: []) }
        defer { batch.write(into: &checkpoints) }
        if var kernel = settings.kernel {
            if fault == .malaDensityIgnoresMetric { kernel = MALA(densityIgnoresMetric: true) }
            if fault == .evolutionIncludesSelf { kernel = DifferentialEvolution(includesSelf: true) }
            return advanceLockstep(&checkpoints, &batch, kernel: kernel, end: end, record: record)
        }
        return advanceTrajectories(&checkpoints, &batch, end: end, record: record)
    }

    /// The inverse temperature slot `s` sees at `iteration`: annealing × its rung of the ladder.
    func beta(_ batch: Batch, slot s: Int, iteration: Int, checkpoints: [ChainCheckpoint]) -> Double {
        let R = batch.replicas
        let annealed = settings.inverseTemperature(at: iteration)
        guard R > 1, let ladder = checkpoints[s / R].ladder else { return annealed }
        return annealed * ladder.betas[s % R]
    }

    /// Replica exchange for chain `k` after iteration `it`, from the cross evaluations:
    /// `cross[s]` is slot s's β applied to its partner's position.
    func swap(_ batch: inout Batch, chain k: Int, iteration it: Int, cross: [Int: (Double, ArraySlice<Double>)],
              ladder: inout TemperingLadder) {
        let R = batch.replicas
        for r in ladder.pairs(at: it) {
            let a = k * R + r, b = a + 1
            guard let (va, ga) = cross[a], let (vb, gb) = cross[b] else { continue }
            let logAlpha = va + vb - batch.states[a].logDensity - batch.states[b].logDensity
            let finite = logAlpha.isFinite || logAlpha == .infinity
            ladder.record(pair: r, probability: finite ? min(1, exp(min(logAlpha, 0))) : 0, warmup: it < settings.warmup)
            let u = batch.streams[a - r].uniform(UInt32(r), iteration: UInt64(it), purpose: .swap)
            guard finite, log(u) < logAlpha else { continue }
            let xa = batch.states[a].position
            batch.states[a] = ChainState(position: batch.states[b].position, logDensity: va, gradient: Array(ga))
            batch.states[b] = ChainState(position: xa, logDensity: vb, gradient: Array(gb))
        }
    }

    /// Adaptation, the ladder and recording after chain `k`'s iteration `it` (swaps done).
    /// - Returns: whether the chain's replicas must have their cached densities evaluated
    ///   again before the next iteration (annealing or the ladder changed their β).
    func conclude(_ checkpoints: inout [ChainCheckpoint], _ batch: inout Batch, chain k: Int, iteration it: Int,
                  infos: [StepInfo], schedule: WarmupSchedule, record: (DrawRecord) -> Void) -> Bool {
        let R = batch.replicas
        let usedStep = batch.stepSizes[k * R]
        if it < settings.warmup {
            for s in (k * R)..<((k + 1) * R) {
                let change = batch.adaptations[s].update(iteration: it, acceptance: infos[s - k * R].acceptanceProbability,
                                                         position: batch.states[s].position, schedule: schedule,
                                                         metricKind: settings.metric)
                batch.stepSizes[s] = change.stepSize
                if let m = change.metric { batch.metrics[s] = m }
                if !settings.poolMetric { batch.adaptations[s].finishedWindow = nil }
            }
        }
        var stale = settings.inverseTemperature(at: it + 1) != settings.inverseTemperature(at: it)
        if R > 1, it < settings.warmup, LadderSchedule(schedule: schedule).adaptsAfter(it), checkpoints[k].ladder!.adapt() {
            stale = true
        }
        checkpoints[k].iteration = it + 1
        let s0 = batch.states[k * R]
        record(DrawRecord(chain: checkpoints[k].chain, iteration: it, isWarmup: it < settings.warmup, position: s0.position,
                          logDensity: s0.logDensity, info: infos[0], stepSize: usedStep))
        return stale
    }

    /// What a group's chains do together when they meet at `iteration` of warm-up (see
    /// ``WarmupSchedule/meetings``): pool the window that just ended into one metric per
    /// rung, and at the end of warm-up restart stranded chains. Depends only on the
    /// group's states, so it is the same wherever the group runs.
    func meet(_ checkpoints: inout [ChainCheckpoint], _ batch: inout Batch, at iteration: Int) {
        let R = batch.replicas, n = checkpoints.count, d = target.dimension
        if settings.poolMetric, n > 1 {
            for r in 0..<R {
                var pooled: MetricEstimator?
                for k in 0..<n {
                    guard let e = batch.adaptations[k * R + r].finishedWindow else { continue }
                    if pooled == nil { pooled = e } else { pooled!.merge(e) }
                }
                if let m = pooled?.metric() { for k in 0..<n { batch.metrics[k * R + r] = m } }
            }
        }
        for s in batch.adaptations.indices { batch.adaptations[s].finishedWindow = nil }
        guard iteration == settings.warmup, settings.restartStranded, n > 1 else { return }
        // A chain is stranded when its log density lies further below the group's upper
        // median than 5 standard deviations of a d-dimensional Gaussian's (√(d/2)), and at
        // least 20: on a plateau of G, say, while the others found the level set.
        let logDensity = (0..<n).map { batch.states[$0 * R].logDensity }
        let reference = logDensity.sorted()[n / 2]
        let threshold = max(20, 5 * (Double(d) / 2).squareRoot())
        guard let best = (0..<n).max(by: { logDensity[$0] < logDensity[$1] || (logDensity[$0] == logDensity[$1] && $0 > $1) }) else { return }
        for k in 0..<n where k != best && (reference - logDensity[k] > threshold || !logDensity[k].isFinite) {
            for r in 0..<R {
                batch.states[k * R + r] = batch.states[best * R + r]
                batch.stepSizes[k * R + r] = batch.stepSizes[best * R + r]
                batch.adaptations[k * R + r] = batch.adaptations[best * R + r]
                batch.metrics[k * R + r] = batch.metrics[best * R + r]
            }
            checkpoints[k].ladder = checkpoints[best].ladder
            checkpoints[k].restartedFrom = checkpoints[best].chain
        }
    }

    func advanceLockstep(_ checkpoints: inout [ChainCheckpoint], _ batch: inout Batch, kernel: any Kernel,
                         end: Int, record: (DrawRecord) -> Void) -> Int {
        let schedule = settings.schedule, R = batch.replicas, n = checkpoints.count, d = target.dimension
        let meetings = schedule.meetings(pooling: settings.poolMetric, restarting: settings.restartStranded)
        var context = StepContext(stepSizes: batch.stepSizes, streams: batch.streams, iteration: 0)
        var evaluations = 0
        for it in checkpoints[0].iteration..<end {
            if cancelled() { break }
            context.iteration = UInt64(it)
            context.stepSizes = batch.stepSizes
            context.metrics = batch.metrics.allSatisfy { $0.kind == .identity } ? [] : batch.metrics
            let betas = (0..<(n * R)).map { beta(batch, slot: $0, iteration: it, checkpoints: checkpoints) }
            let tempered: any LogDensity = betas.allSatisfy { $0 == 1 } ? target : RowTempered(base: target, betas: betas)
            let infos = kernel.step(&batch.states, context: context, target: tempered)
            evaluations += infos.first?.steps ?? 1
            if R > 1 {
                // Every slot of a proposed pair evaluates its partner's position at its own β.
                var partner = Array(0..<(n * R))
                for k in 0..<n {
                    for r in checkpoints[k].ladder!.pairs(at: it) {
                        partner[k * R + r] = k * R + r + 1
                        partner[k * R + r + 1] = k * R + r
                    }
                }
                let paired = Set((0..<(n * R)).filter { partner[$0] != $0 })
                var positions = [Double]()
                positions.reserveCapacity(n * R * d)
                for s in 0..<(n * R) { positions += batch.states[partner[s]].position }
                let r = target.evaluate(positions, count: n * R, inverseTemperatures: betas)
                evaluations += 1
                for k in 0..<n {
                    var cross = [Int: (Double, ArraySlice<Double>)]()
                    for s in (k * R)..<((k + 1) * R) where paired.contains(s) { cross[s] = (r.values[s], r.gradients[(s * d)..<((s + 1) * d)]) }
                    swap(&batch, chain: k, iteration: it, cross: cross, ladder: &checkpoints[k].ladder!)
                }
            }
            var stale = false
            for k in 0..<n {
                let chainInfos = Array(infos[(k * R)..<((k + 1) * R)])
                if conclude(&checkpoints, &batch, chain: k, iteration: it, infos: chainInfos, schedule: schedule, record: record) {
                    stale = true
                }
            }
            if stale {
                // Annealing or a ladder changed some β: evaluate the cached densities again.
                let next = (0..<(n * R)).map { beta(batch, slot: $0, iteration: it + 1, checkpoints: checkpoints) }
                let r = target.evaluate(batch.states.flatMap(\.position), count: n * R, inverseTemperatures: next)
                evaluations += 1
                for s in 0..<(n * R) {
                    batch.states[s].logDensity = r.values[s]
                    batch.states[s].gradient = Array(r.gradients[(s * d)..<((s + 1) * d)])
                }
            }
            if meetings.contains(it + 1) { meet(&checkpoints, &batch, at: it + 1) }
        }
        return evaluations
    }
}

/// The slots of a call: every chain's replicas (coldest first), chain after chain. Their
/// arrays live here for the whole call and go back into the checkpoints at the end, so a
/// kernel updates them in place instead of copying shared ones.
struct Batch {
    let replicas: Int
    var states: [ChainState]
    var stepSizes: [Double]
    var adaptations: [WarmupAdaptation]
    var metrics: [Metric]
    let streams: [RandomStream]

    init(_ checkpoints: [ChainCheckpoint], seed: UInt64, replicas R: Int) {
        replicas = R
        var slots = [ReplicaCheckpoint](), streams = [RandomStream]()
        for cp in checkpoints {
            precondition(cp.replicas.count == R - 1, "checkpoint of chain \(cp.chain) has \(cp.replicas.count + 1) replicas, the sampler \(R)")
            slots += [cp.slot] + cp.replicas
            streams += (0..<R).map { RandomStream(seed: seed, chain: cp.chain, replica: $0) }
        }
        states = slots.map(\.state)
        stepSizes = slots.map(\.stepSize)
        adaptations = slots.map(\.adaptation)
        metrics = slots.map(\.metric)
        self.streams = streams
    }

    func slot(_ s: Int) -> ReplicaCheckpoint {
        ReplicaCheckpoint(state: states[s], stepSize: stepSizes[s], adaptation: adaptations[s], metric: metrics[s])
    }

    func write(into checkpoints: inout [ChainCheckpoint]) {
        let R = replicas
        for k in checkpoints.indices {
            checkpoints[k].slot = slot(k * R)
            checkpoints[k].replicas = (1..<R).map { slot(k * R + $0) }
        }
    }
}
