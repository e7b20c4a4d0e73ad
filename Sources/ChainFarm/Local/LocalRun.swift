import Diagnostics
import Foundation
import Probes
import Samplers

/// Progress of a run, reported after every round of segments.
public struct RunProgress: Sendable {
    public var iteration: Int
    public var totalIterations: Int
    public var warmup: Int
    public var chains: Int
    public var drawsPerSecond: Double
    public var acceptance: Double
    public var divergences: Int
    public var maxRHat: Double?
    public var minESS: Double?
    public var elapsed: Double
}

/// Runs a job's chains on this machine: chains in fixed groups (a group is stepped in
/// lockstep as one batch), groups spread over worker threads, in rounds of `segment`
/// iterations. The group a chain belongs to depends only on its id, never on the
/// number of workers, so the draws do not either.
public struct LocalRun {
    public var plan: JobPlan
    public var workers: Int
    public var groupSize: Int
    public var segment: Int

    public init(plan: JobPlan, workers: Int, segment: Int = 100) {
        self.plan = plan
        self.workers = max(1, workers)
        self.groupSize = max(1, plan.job.batch)
        self.segment = max(1, segment)
    }

    /// Every post-warm-up iteration of every chain.
    public struct Draws: Sendable {
        public var chains: Int
        public var dimension: Int
        /// Per chain: positions (draws × dimension), then per-draw statistics.
        public var positions: [[Double]]
        public var logAcceptance: [[Double]]
        public var acceptance: [[Double]]
        public var stepSize: [[Double]]
        public var divergent: [[Bool]]
        public var draws: Int { positions.first.map { $0.count / max(dimension, 1) } ?? 0 }
    }

    public struct Outcome: Sendable {
        public var draws: Draws
        public var checkpoints: [ChainCheckpoint]
        public var settings: SamplerSettings
        public var converged: Bool?
        public var seconds: Double
    }

    /// Starting points: latent z ~ N(0, I); data: the start file (jittered in u by
    /// N(0, 0.1²)), else u ~ N(0, 1) on bounded features and x ~ N(0, 1) otherwise.
    public func initialPositions(chain: Int, attempt: Int) -> [Double] {
        let stream = RandomStream(seed: plan.job.seed, chain: chain)
        let k = plan.target.dimension
        let noise = stream.normals(k, iteration: UInt64(attempt), purpose: .initialization)
        switch plan.target.space {
        case .latent:
            return noise
        case .data(let space):
            if let x0 = plan.startPoint {
                return space.free.enumerated().map { j, i in space.inverse(i, x0[i]) + 0.1 * noise[j] }
            }
            return noise
        }
    }

    public func run(progress: @escaping @Sendable (RunProgress) -> Void) throws -> Outcome {
        let job = plan.job
        var settings = job.sampler
        let chainCount = job.chains
        let groups = stride(from: 0, to: chainCount, by: groupSize).map { Array($0..<min($0 + groupSize, chainCount)) }
        var runner = ChainRunner(settings: settings, seed: job.seed, target: plan.target)

        // Start every chain at the most probable of `initCandidates` draws from the
        // initial distribution (one batched evaluation per chain).
        var checkpoints = [[ChainCheckpoint]]()
        let candidates = max(1, job.initCandidates)
        for g in groups {
            var starts = [[Double]]()
            for c in g {
                let points = (0..<candidates).map { initialPositions(chain: c, attempt: $0) }
                let e = plan.target.describe(points.flatMap { $0 }, count: candidates)
                let best = e.logDensity.indices.filter { e.logDensity[$0].isFinite }.max { e.logDensity[$0] < e.logDensity[$1] }
                guard let best else {
                    throw RunError("chain \(c): no finite log density at \(candidates) starting points; check the probe terms and the space")
                }
                starts.append(points[best])
            }
            let started = runner.start(chains: g, positions: starts)
            guard started.allSatisfy({ $0 != nil }) else { throw RunError("a chain's starting gradient is not finite") }
            checkpoints.append(started.map { $0! })
        }

        let d = plan.target.dimension
        let store = DrawStore(chains: chainCount, dimension: d)
        let start = Date()
        var converged: Bool? = nil
        var iteration = 0
        while true {
            let target = runner.totalIterations
            while iteration < target {
                let steps = min(segment, target - iteration)
                let (roundRunner, roundCheckpoints) = (runner, checkpoints)
                parallelRound(groups.count) { gi in
                    var cps = roundCheckpoints[gi]
                    roundRunner.advance(&cps, iterations: steps) { r in
                        if !r.isWarmup { store.add(r) }
                    }
                    return cps
                } merge: { gi, cps in checkpoints[gi] = cps }
                iteration += steps
                let elapsed = Date().timeIntervalSince(start)
                let stats = store.runningStatistics()
                progress(RunProgress(iteration: iteration, totalIterations: target, warmup: settings.warmup, chains: chainCount,
                                     drawsPerSecond: Double(iteration * chainCount) / max(elapsed, 1e-9),
                                     acceptance: stats.acceptance, divergences: stats.divergences,
                                     maxRHat: nil, minESS: nil, elapsed: elapsed))
            }
            guard let stop = job.stop else { break }
            let check = store.convergence()
            converged = check.maxRHat.map { $0 < stop.rhat } == true && (check.minBulk ?? 0) >= stop.essBulk
                && (check.minTail ?? 0) >= stop.essTail
            let elapsed = Date().timeIntervalSince(start)
            let stats = store.runningStatistics()
            progress(RunProgress(iteration: iteration, totalIterations: runner.totalIterations, warmup: settings.warmup,
                                 chains: chainCount, drawsPerSecond: Double(iteration * chainCount) / max(elapsed, 1e-9),
                                 acceptance: stats.acceptance, divergences: stats.divergences,
                                 maxRHat: check.maxRHat, minESS: min(check.minBulk ?? 0, check.minTail ?? 0), elapsed: elapsed))
            if converged == true || settings.draws >= stop.maxDraws { break }
            settings.draws = min(stop.maxDraws, settings.draws * 2)
            runner.settings = settings
        }
        return Outcome(draws: store.draws(), checkpoints: checkpoints.flatMap { $0 }, settings: settings,
                       converged: converged, seconds: Date().timeIntervalSince(start))
    }

    /// Runs `body` for every group index on up to `workers` threads, then merges results
    /// on the calling thread (in group order).
    func parallelRound(_ count: Int, _ body: @escaping @Sendable (Int) -> [ChainCheckpoint],
                       merge: (Int, [ChainCheckpoint]) -> Void) {
        let results = ResultBox(count: count)
        let next = NextIndex()
        let threads = min(workers, count)
        let done = DispatchGroup()
        for _ in 0..<threads {
            done.enter()
            let t = Thread {
                while let i = next.take(below: count) { results.set(i, body(i)) }
                done.leave()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        done.wait()
        for i in 0..<count { merge(i, results.get(i)) }
    }
}

public struct RunError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A shared counter handing out work items.
final class NextIndex: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func take(below n: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < n else { return nil }
        value += 1
        return value - 1
    }
}

final class ResultBox: @unchecked Sendable {
    private var items: [[ChainCheckpoint]]
    private let lock = NSLock()
    init(count: Int) { items = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [ChainCheckpoint]) { lock.lock(); items[i] = v; lock.unlock() }
    func get(_ i: Int) -> [ChainCheckpoint] { lock.lock(); defer { lock.unlock() }; return items[i] }
}

/// Post-warm-up draws of every chain, appended from worker threads.
final class DrawStore: @unchecked Sendable {
    private let lock = NSLock()
    private var data: LocalRun.Draws

    init(chains: Int, dimension: Int) {
        data = LocalRun.Draws(chains: chains, dimension: dimension,
                              positions: Array(repeating: [], count: chains), logAcceptance: Array(repeating: [], count: chains),
                              acceptance: Array(repeating: [], count: chains), stepSize: Array(repeating: [], count: chains),
                              divergent: Array(repeating: [], count: chains))
    }

    func add(_ r: DrawRecord) {
        lock.lock(); defer { lock.unlock() }
        data.positions[r.chain] += r.position
        data.logAcceptance[r.chain].append(r.info.logAcceptance)
        data.acceptance[r.chain].append(r.info.acceptanceProbability)
        data.stepSize[r.chain].append(r.stepSize)
        data.divergent[r.chain].append(r.info.divergent)
    }

    func draws() -> LocalRun.Draws { lock.lock(); defer { lock.unlock() }; return data }

    func runningStatistics() -> (acceptance: Double, divergences: Int) {
        lock.lock(); defer { lock.unlock() }
        let n = data.acceptance.reduce(0) { $0 + $1.count }
        let a = data.acceptance.reduce(0.0) { $0 + $1.reduce(0, +) }
        return (n == 0 ? .nan : a / Double(n), data.divergent.reduce(0) { $0 + $1.filter { $0 }.count })
    }

    /// Worst R-hat and ESS over the sampler's coordinates.
    func convergence() -> (maxRHat: Double?, minBulk: Double?, minTail: Double?) {
        let d = draws()
        let n = d.draws
        var maxR: Double? = nil, minB: Double? = nil, minT: Double? = nil
        for q in 0..<d.dimension {
            let values = (0..<d.chains).flatMap { c in (0..<n).map { d.positions[c][$0 * d.dimension + q] } }
            let s = QuantitySummary(ChainDraws(chains: d.chains, draws: n, values: values))
            guard let r = s.rhat, let b = s.essBulk, let t = s.essTail else { return (nil, nil, nil) }
            maxR = max(maxR ?? r, r); minB = min(minB ?? b, b); minT = min(minT ?? t, t)
        }
        return (maxR, minB, minT)
    }
}
