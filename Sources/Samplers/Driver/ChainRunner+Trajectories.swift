extension ChainRunner {
    /// Where a chain is within its iteration.
    enum ChainPhase {
        /// Its replicas are on their trajectories (or done, waiting for the others).
        case moving
        /// Its replicas' swap evaluations are asked for.
        case swapping(partner: [Int: Int])
        /// Its replicas' cached densities are evaluated again (a β changed).
        case refreshing
    }

    /// NUTS: every batched evaluation advances each slot's own trajectory by one leapfrog
    /// step (or evaluates a swap or a refresh); see ``ChainRunner``.
    func advanceTrajectories(_ checkpoints: inout [ChainCheckpoint], _ batch: inout Batch, end: Int,
                             record: (DrawRecord) -> Void) -> Int {
        let schedule = settings.schedule, d = target.dimension, n = checkpoints.count, R = batch.replicas
        let padded = !target.batchInvariant
        var transitions = [NUTSTransition?](repeating: nil, count: n * R)
        var infos = [StepInfo?](repeating: nil, count: n * R)
        var phases = [ChainPhase](repeating: .moving, count: n)
        var evaluations = 0
        // Warm-up iterations where the group's chains wait for each other (``meet``); one
        // a call starts at was met at the end of the call before.
        let meetings = schedule.meetings(pooling: settings.poolMetric, restarting: settings.restartStranded)
        var met: Set<Int> = [checkpoints[0].iteration]
        while !cancelled() {
            let at = checkpoints[0].iteration
            if meetings.contains(at), !met.contains(at), checkpoints.allSatisfy({ $0.iteration == at }),
               phases.allSatisfy({ if case .moving = $0 { true } else { false } }),
               transitions.allSatisfy({ $0 == nil }), infos.allSatisfy({ $0 == nil }) {
                meet(&checkpoints, &batch, at: at)
                met.insert(at)
            }
            for k in 0..<n where checkpoints[k].iteration < end {
                guard case .moving = phases[k] else { continue }
                let it = checkpoints[k].iteration
                guard !meetings.contains(it) || met.contains(it) else { continue }
                for s in (k * R)..<((k + 1) * R) where transitions[s] == nil && infos[s] == nil {
                    transitions[s] = NUTSTransition(
                        state: batch.states[s], stepSize: batch.stepSizes[s], metric: batch.metrics[s],
                        maxDepth: settings.maxTreeDepth, stream: batch.streams[s],
                        iteration: UInt64(checkpoints[k].iteration), fault: fault)
                }
            }
            // What each slot asks to have evaluated (nil: nothing; it is padding if padded).
            let asks: [[Double]?] = (0..<(n * R)).map { s in
                switch phases[s / R] {
                case .moving: transitions[s]?.pending
                case .swapping(let partner): partner[s].map { batch.states[$0].position }
                case .refreshing: batch.states[s].position
                }
            }
            let active = (0..<(n * R)).filter { asks[$0] != nil }
            guard !active.isEmpty else { break }
            let rows = padded ? Array(0..<(n * R)) : active
            var positions = [Double]()
            positions.reserveCapacity(rows.count * d)
            for s in rows { positions += asks[s] ?? batch.states[s].position }
            let betas = rows.map { beta(batch, slot: $0, iteration: checkpoints[$0 / R].iteration, checkpoints: checkpoints) }
            let r = target.evaluate(positions, count: rows.count, inverseTemperatures: betas)
            evaluations += 1
            var cross = [Int: (Double, ArraySlice<Double>)]()
            for (row, s) in rows.enumerated() where asks[s] != nil {
                let gradient = r.gradients[(row * d)..<((row + 1) * d)]
                switch phases[s / R] {
                case .moving:
                    transitions[s]!.receive(logDensity: r.values[row], gradient: gradient)
                    guard transitions[s]!.pending == nil else { continue }
                    let (state, info) = transitions[s]!.result
                    transitions[s] = nil
                    batch.states[s] = state
                    infos[s] = info
                case .swapping:
                    cross[s] = (r.values[row], gradient)
                case .refreshing:
                    batch.states[s].logDensity = r.values[row]
                    batch.states[s].gradient = Array(gradient)
                }
            }
            for k in 0..<n {
                let it = checkpoints[k].iteration
                switch phases[k] {
                case .refreshing:
                    phases[k] = .moving
                    continue
                case .moving:
                    guard it < end, infos[(k * R)..<((k + 1) * R)].allSatisfy({ $0 != nil }) else { continue }
                    if R > 1, let pairs = checkpoints[k].ladder?.pairs(at: it), !pairs.isEmpty {
                        var partner = [Int: Int]()
                        for p in pairs { partner[k * R + p] = k * R + p + 1; partner[k * R + p + 1] = k * R + p }
                        phases[k] = .swapping(partner: partner)
                        continue
                    }
                case .swapping:
                    swap(&batch, chain: k, iteration: it, cross: cross, ladder: &checkpoints[k].ladder!)
                }
                let chainInfos = infos[(k * R)..<((k + 1) * R)].map { $0! }
                for s in (k * R)..<((k + 1) * R) { infos[s] = nil }
                let stale = conclude(&checkpoints, &batch, chain: k, iteration: it, infos: chainInfos, schedule: schedule,
                                     record: record)
                phases[k] = stale ? .refreshing : .moving
            }
        }
        return evaluations
    }
}
