import Foundation

/// One transition of the No-U-Turn sampler with multinomial sampling, as Stan has it
/// (Hoffman & Gelman 2014; Betancourt 2017, appendix A; Stan's `base_nuts`), written as a
/// state machine that asks for one gradient at a time so that a batch of chains can
/// advance together, each on a trajectory of its own (see ``ChainRunner``).
///
/// Momentum p ~ N(0, M), H(q, p) = −log p(q) + ½ pᵀM⁻¹p. The trajectory doubles in a random
/// direction until the generalised U-turn criterion fails — checked across the whole
/// trajectory and, as Stan does since 2.21, across the two halves joined at every merge —
/// or `maxDepth` doublings are done. Each state on it weighs exp(H₀ − H); within a subtree
/// the kept state is chosen by uniform progressive sampling, and at the top by biased
/// progressive sampling (a new subtree's state replaces the current one with probability
/// min(1, w_new / w_old)). A leaf with H − H₀ > 1000 or a non-finite density is a
/// divergence: the subtree is dropped and the transition ends. The acceptance statistic
/// for step-size adaptation is the mean of min(1, exp(H₀ − H)) over the leapfrog steps.
///
/// Random numbers: momentum from the chain's `.momentum` normals at the transition's
/// iteration; direction choices and selections are the `.trajectory` uniforms in the
/// order they are needed, so a transition depends only on (seed, chain, iteration, state).
public struct NUTSTransition: Sendable {
    /// A point on the trajectory.
    struct Point: Sendable {
        var q: [Double]
        var p: [Double]
        var g: [Double]
        var logDensity: Double
        var energy: Double
    }

    /// What a finished subtree leaves for its parent.
    struct Subtree: Sendable {
        var logSumWeight: Double
        var proposal: Point
        var rho: [Double]
        var pBegin: [Double], pSharpBegin: [Double]
        var pEnd: [Double], pSharpEnd: [Double]
    }

    /// A subtree under construction: `first` is its finished first half, if any.
    struct Frame: Sendable {
        var depth: Int
        var first: Subtree?
    }

    let stepSize: Double
    let metric: Metric
    let maxDepth: Int
    let stream: RandomStream
    let iteration: UInt64
    let d: Int
    let h0: Double
    let acrossSubtrees: Bool
    let weighted: Bool

    var depth = 0, steps = 0, sumMetroProb = 0.0, divergent = false, moved = false
    var logSumWeight = 0.0
    var sample: Point
    var rho: [Double]
    var forward: Point, backward: Point
    // Momenta and velocities at the outer (FF, BB) and inner (FB, BF) ends of the two halves.
    var pFF: [Double], pSharpFF: [Double], pFB: [Double], pSharpFB: [Double]
    var pBF: [Double], pSharpBF: [Double], pBB: [Double], pSharpBB: [Double]
    // The doubling in progress.
    var sign = 1.0
    var frames = [Frame]()
    var cursor: Point
    var uniforms: UInt32 = 0

    /// The position whose log density and gradient the transition needs next (nil when done).
    public private(set) var pending: [Double]?

    /// Starts a transition from `state`: draws the momentum and asks for the first leapfrog step.
    public init(state: ChainState, stepSize: Double, metric: Metric, maxDepth: Int, stream: RandomStream,
                iteration: UInt64, fault: ChainRunner.Fault? = nil) {
        self.stepSize = stepSize
        self.metric = metric
        self.maxDepth = maxDepth
        self.stream = stream
        self.iteration = iteration
        acrossSubtrees = fault != .noChecksAcrossSubtrees
        weighted = fault != .ignoreWeights
        d = state.position.count
        var p = stream.normals(d, iteration: iteration, purpose: .momentum)
        let dim = d
        p.withUnsafeMutableBufferPointer { metric.momentum(fromNormals: $0.baseAddress!, dimension: dim) }
        let v = Self.velocity(metric, p)
        h0 = -state.logDensity + 0.5 * Self.dot(p, v)
        let start = Point(q: state.position, p: p, g: state.gradient, logDensity: state.logDensity, energy: h0)
        sample = start
        forward = start
        backward = start
        cursor = start
        rho = p
        pFF = p; pFB = p; pBF = p; pBB = p
        pSharpFF = v; pSharpFB = v; pSharpBF = v; pSharpBB = v
        beginDoubling()
    }

    /// The kept state and what the transition did, once `pending` is nil.
    public var result: (state: ChainState, info: StepInfo) {
        let accept = steps == 0 ? 0 : sumMetroProb / Double(steps)
        return (ChainState(position: sample.q, logDensity: sample.logDensity, gradient: sample.g),
                StepInfo(acceptanceProbability: accept, logAcceptance: log(accept), accepted: moved, divergent: divergent,
                         steps: steps, treeDepth: depth, energy: sample.energy))
    }

    /// Completes the pending leapfrog step with log p and ∇log p at `pending`.
    public mutating func receive(logDensity: Double, gradient: ArraySlice<Double>) {
        precondition(pending != nil, "no evaluation was asked for")
        pending = nil
        let half = 0.5 * sign * stepSize
        var finite = logDensity.isFinite
        cursor.g = Array(gradient)
        for i in 0..<d {
            cursor.p[i] += half * cursor.g[i]
            if !cursor.g[i].isFinite { finite = false }
        }
        cursor.logDensity = logDensity
        steps += 1
        let v = Self.velocity(metric, cursor.p)
        var h = -logDensity + 0.5 * Self.dot(cursor.p, v)
        if !finite || h.isNaN { h = .infinity }
        cursor.energy = h
        let delta = h0 - h
        sumMetroProb += delta > 0 ? 1 : exp(delta)
        if -delta > StepInfo.divergenceThreshold {
            divergent = true
            return  // the subtree is invalid: the transition ends with the state it has
        }
        complete(Subtree(logSumWeight: delta, proposal: cursor, rho: cursor.p,
                         pBegin: cursor.p, pSharpBegin: v, pEnd: cursor.p, pSharpEnd: v))
    }

    // MARK: - The doubling

    mutating func nextUniform() -> Double {
        defer { uniforms += 1 }
        return stream.uniform(uniforms, iteration: iteration, purpose: .trajectory)
    }

    mutating func beginDoubling() {
        guard depth < maxDepth else { return }
        sign = nextUniform() > 0.5 ? 1 : -1
        cursor = sign > 0 ? forward : backward
        frames = stride(from: depth, to: 0, by: -1).map { Frame(depth: $0, first: nil) }
        askForLeaf()
    }

    /// Half a momentum step and a full position step from the cursor; the gradient at the
    /// new position is asked for.
    mutating func askForLeaf() {
        let half = 0.5 * sign * stepSize
        for i in 0..<d { cursor.p[i] += half * cursor.g[i] }
        let v = Self.velocity(metric, cursor.p)
        for i in 0..<d { cursor.q[i] += sign * stepSize * v[i] }
        pending = cursor.q
    }

    /// A subtree is finished: hand it to its parent frame, or to the trajectory.
    mutating func complete(_ finished: Subtree) {
        var sub = finished
        while var frame = frames.popLast() {
            guard let first = frame.first else {
                // The first half is done: build the second half from where the cursor is.
                frame.first = sub
                frames.append(frame)
                frames += stride(from: frame.depth - 1, to: 0, by: -1).map { Frame(depth: $0, first: nil) }
                askForLeaf()
                return
            }
            guard let merged = merge(first, sub) else { return }  // U-turn inside: the doubling is dropped
            sub = merged
        }
        extendTrajectory(with: sub)
    }

    /// Joins two halves of a subtree (uniform progressive sampling); nil on a U-turn.
    mutating func merge(_ a: Subtree, _ b: Subtree) -> Subtree? {
        let total = Self.logAddExp(a.logSumWeight, b.logSumWeight)
        let takeB = !weighted || b.logSumWeight > total || nextUniform() < exp(b.logSumWeight - total)
        let rho = Self.sum(a.rho, b.rho)
        var persist = criterion(a.pSharpBegin, b.pSharpEnd, rho)
        if acrossSubtrees {
            persist = persist && criterion(a.pSharpBegin, b.pSharpBegin, Self.sum(a.rho, b.pBegin))
                && criterion(a.pSharpEnd, b.pSharpEnd, Self.sum(b.rho, a.pEnd))
        }
        guard persist else { return nil }
        return Subtree(logSumWeight: total, proposal: takeB ? b.proposal : a.proposal, rho: rho,
                       pBegin: a.pBegin, pSharpBegin: a.pSharpBegin, pEnd: b.pEnd, pSharpEnd: b.pSharpEnd)
    }

    /// Adds a finished doubling to the trajectory (biased progressive sampling), checks the
    /// U-turn criterion over the whole and across the two halves, and doubles again or stops.
    mutating func extendTrajectory(with sub: Subtree) {
        let rhoFwd: [Double], rhoBck: [Double]
        if sign > 0 {
            rhoBck = rho
            pBF = pFF; pSharpBF = pSharpFF
            pFB = sub.pBegin; pSharpFB = sub.pSharpBegin
            pFF = sub.pEnd; pSharpFF = sub.pSharpEnd
            forward = cursor
            rhoFwd = sub.rho
        } else {
            rhoFwd = rho
            pFB = pBB; pSharpFB = pSharpBB
            pBF = sub.pBegin; pSharpBF = sub.pSharpBegin
            pBB = sub.pEnd; pSharpBB = sub.pSharpEnd
            backward = cursor
            rhoBck = sub.rho
        }
        depth += 1
        if !weighted || sub.logSumWeight > logSumWeight || nextUniform() < exp(sub.logSumWeight - logSumWeight) {
            sample = sub.proposal
            moved = true
        }
        logSumWeight = Self.logAddExp(logSumWeight, sub.logSumWeight)
        rho = Self.sum(rhoBck, rhoFwd)
        var persist = criterion(pSharpBB, pSharpFF, rho)
        if acrossSubtrees {
            persist = persist && criterion(pSharpBB, pSharpFB, Self.sum(rhoBck, pFB))
                && criterion(pSharpBF, pSharpFF, Self.sum(rhoFwd, pBF))
        }
        if persist { beginDoubling() }
    }

    /// The generalised no-U-turn criterion: both ends' velocities point along ρ.
    func criterion(_ pSharpMinus: [Double], _ pSharpPlus: [Double], _ rho: [Double]) -> Bool {
        Self.dot(pSharpPlus, rho) > 0 && Self.dot(pSharpMinus, rho) > 0
    }

    static func velocity(_ metric: Metric, _ p: [Double]) -> [Double] {
        let d = p.count
        return [Double](unsafeUninitializedCapacity: d) { v, n in
            p.withUnsafeBufferPointer { metric.velocity($0.baseAddress!, into: v.baseAddress!, dimension: d) }
            n = d
        }
    }

    @inline(__always) static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { s += a[i] * b[i] }
        return s
    }

    @inline(__always) static func sum(_ a: [Double], _ b: [Double]) -> [Double] {
        var s = a
        for i in s.indices { s[i] += b[i] }
        return s
    }

    @inline(__always) static func logAddExp(_ a: Double, _ b: Double) -> Double {
        let m = max(a, b)
        guard m > -.infinity else { return -.infinity }
        return m + log(exp(a - m) + exp(b - m))
    }
}
