import FarmWire
import Foundation
import Probes
import Samplers

/// A segment abandoned part-way (the worker is leaving): nothing of it is to be sent.
public struct SegmentCancelled: Error {}

/// The computation behind one assignment, the same wherever it runs: start a group's
/// chains (first segment) or continue them from their checkpoints, and package the
/// post-warm-up draws. Results depend only on the job, the group and the iterations.
public struct SegmentWork: Sendable {
    public var plan: JobPlan

    public init(plan: JobPlan) { self.plan = plan }

    /// Starting points: latent z ~ N(0, I); data: the start file (jittered in u by
    /// N(0, 0.1²)), else u ~ N(0, 1) on bounded features and x ~ N(0, 1) otherwise.
    public func initialPosition(chain: Int, attempt: Int) -> [Double] {
        let stream = RandomStream(seed: plan.job.seed, chain: chain)
        let noise = stream.normals(plan.target.dimension, iteration: UInt64(attempt), purpose: .initialization)
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

    /// Checkpoints at iteration 0: every chain at the most probable of `initCandidates`
    /// draws from the initial distribution. The candidates are evaluated as many at a time
    /// as the group has chains, so that starting takes no larger products (and buffers,
    /// which BLAS keeps for the life of the process) than stepping the chains does.
    public func start(chains: [Int], runner: ChainRunner) throws -> [ChainCheckpoint] {
        let candidates = max(1, plan.job.initCandidates)
        let batch = max(1, chains.count)
        var starts = [[Double]]()
        for c in chains {
            let points = (0..<candidates).map { initialPosition(chain: c, attempt: $0) }
            var logDensity = [Double]()
            for first in stride(from: 0, to: candidates, by: batch) {
                let rows = points[first..<min(candidates, first + batch)]
                logDensity += plan.target.describe(rows.flatMap { $0 }, count: rows.count).logDensity
            }
            let best = logDensity.indices.filter { logDensity[$0].isFinite }.max { logDensity[$0] < logDensity[$1] }
            guard let best else {
                throw RunError("chain \(c): no finite log density at \(candidates) starting points; check the probe terms and the space")
            }
            starts.append(points[best])
        }
        let started = runner.start(chains: chains, positions: starts)
        guard started.allSatisfy({ $0 != nil }) else { throw RunError("a chain's starting gradient is not finite") }
        return started.map { $0! }
    }

    /// Runs one assignment; `cancelled` is asked between batched evaluations, and true
    /// abandons the segment (throws ``SegmentCancelled``; its chains stay at their checkpoints).
    public func run(_ a: Assignment, cancelled: @escaping @Sendable () -> Bool = { false }) throws -> SegmentResult {
        let clock = Date()
        var settings = plan.job.sampler
        settings.draws = max(settings.draws, a.firstIteration + a.length - settings.warmup)
        var runner = ChainRunner(settings: settings, seed: plan.job.seed, target: plan.target)
        runner.cancelled = cancelled
        var checkpoints: [ChainCheckpoint]
        if let given = a.checkpoints {
            checkpoints = given
        } else {
            guard a.firstIteration == 0 else { throw RunError("assignment for group \(a.group) at iteration \(a.firstIteration) has no checkpoints") }
            checkpoints = try start(chains: a.chains, runner: runner)
        }
        guard checkpoints.map(\.chain) == a.chains, checkpoints.allSatisfy({ $0.iteration == a.firstIteration }) else {
            throw RunError("assignment for group \(a.group): checkpoints do not match its chains and first iteration")
        }
        let d = plan.target.dimension
        let firstDraw = max(a.firstIteration, settings.warmup)
        let n = max(0, a.firstIteration + a.length - firstDraw)
        let C = a.chains.count
        var logAcceptance = [Double](repeating: 0, count: C * n), acceptance = logAcceptance, stepSize = logAcceptance
        var divergent = [UInt8](repeating: 0, count: C * n)
        var steps = logAcceptance, treeDepth = logAcceptance, energy = logAcceptance
        var gradientEvaluations = 0
        let slot = Dictionary(uniqueKeysWithValues: a.chains.enumerated().map { ($1, $0) })
        var recorded = 0
        // The draws (C × n × d doubles, most of a worker's heap) are written into memory
        // that is touched only as draws arrive, not zero-filled up front.
        let positions = [Double](unsafeUninitializedCapacity: C * n * d) { buffer, count in
            runner.advance(&checkpoints, iterations: a.length) { r in
                gradientEvaluations += r.info.steps
                guard !r.isWarmup else { return }
                let k = slot[r.chain]! * n + (r.iteration - firstDraw)
                r.position.withUnsafeBufferPointer { buffer.baseAddress!.advanced(by: k * d).update(from: $0.baseAddress!, count: d) }
                logAcceptance[k] = r.info.logAcceptance
                acceptance[k] = r.info.acceptanceProbability
                stepSize[k] = r.stepSize
                divergent[k] = r.info.divergent ? 1 : 0
                steps[k] = Double(r.info.steps)
                treeDepth[k] = Double(r.info.treeDepth)
                energy[k] = r.info.energy
                recorded += 1
            }
            count = C * n * d
        }
        if cancelled() { throw SegmentCancelled() }
        guard recorded == C * n else { throw RunError("assignment for group \(a.group): \(recorded) draws recorded, expected \(C * n)") }
        let header = SegmentResult.Header(job: a.job, group: a.group, chains: a.chains, firstIteration: a.firstIteration,
                                          length: a.length, draws: n, firstDraw: firstDraw, dimension: d,
                                          checkpoints: checkpoints, seconds: Date().timeIntervalSince(clock),
                                          gradientEvaluations: gradientEvaluations)
        return SegmentResult(header: header, positions: positions, logAcceptance: logAcceptance, acceptance: acceptance,
                             stepSize: stepSize, divergent: divergent, steps: steps, treeDepth: treeDepth, energy: energy)
    }
}
