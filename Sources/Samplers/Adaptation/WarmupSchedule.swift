import Foundation

/// Stan's windowed warm-up as data (Stan's `windowed_adaptation`): a fast initial buffer
/// in which only the step size adapts, slow windows that double in length and each end
/// with a new metric estimated from the draws inside it, and a fast terminal buffer.
///
/// Defaults are Stan's: 75 initial, 25 for the first window, 50 terminal. When warm-up is
/// shorter than 150 they scale to 15 % / 75 % / 10 %; under 20 iterations there are no
/// windows (the step size alone adapts).
public struct WarmupSchedule: Sendable, Equatable, Codable {
    public var warmup: Int
    /// The slow windows, in iteration order; each ends with a metric update.
    public var windows: [Range<Int>]

    public init(warmup: Int, adaptMetric: Bool, initBuffer: Int = 75, termBuffer: Int = 50, baseWindow: Int = 25) {
        self.warmup = warmup
        guard adaptMetric, warmup >= 20 else {
            windows = []
            return
        }
        var initial = initBuffer, terminal = termBuffer, base = baseWindow
        if initial + base + terminal > warmup {
            initial = warmup * 15 / 100
            terminal = warmup / 10
            base = warmup - initial - terminal
        }
        let end = warmup - terminal
        var windows = [Range<Int>]()
        var start = initial, size = base
        while start < end {
            var stop = start + size
            // A window whose successor would not fit takes the rest of the slow phase.
            if stop + 2 * size > end { stop = end }
            windows.append(start..<stop)
            start = stop
            size *= 2
        }
        self.windows = windows
    }

    /// The window containing `iteration`, with its index.
    public func window(containing iteration: Int) -> (index: Int, range: Range<Int>)? {
        for (i, w) in windows.enumerated() where w.contains(iteration) { return (i, w) }
        return nil
    }

    /// Where the last slow window starts (warm-up annealing ends there, so the metric that
    /// is kept is estimated on the untempered target).
    public var lastWindowStart: Int? { windows.last?.lowerBound }

    /// Iterations where a group's chains meet during warm-up: after each window (to pool
    /// the window's draws into one metric) and at the end of warm-up (to restart a chain
    /// stranded away from the others).
    public func meetings(pooling: Bool, restarting: Bool) -> Set<Int> {
        Set((pooling ? windows.map(\.upperBound) : []) + (restarting && warmup > 0 ? [warmup] : []))
    }
}

/// One chain's warm-up adaptation: dual averaging of the step size and the windowed
/// metric estimate, composed by the driver. `update` takes what a transition did and
/// says what changes; after warm-up nothing does (the step is frozen at ε̄).
public struct WarmupAdaptation: Sendable, Codable, Equatable {
    public var stepSize: DualAveraging
    /// The current window's running estimate (nil outside windows and after warm-up).
    public var estimator: MetricEstimator?
    /// The window that just ended, kept for the driver to pool across a group's chains.
    public var finishedWindow: MetricEstimator?

    /// Where dual averaging aims after a new metric: μ = log(restartScale·ε). Stan's 10 for
    /// Hamiltonian kernels; a random walk's acceptance falls off faster with the step, so
    /// MALA and RWM restart closer (2).
    public var restartScale: Double

    public init(initialStep: Double, targetAcceptance: Double, restartScale: Double = 10) {
        stepSize = DualAveraging(initialStep: initialStep, target: targetAcceptance)
        self.restartScale = restartScale
    }

    /// What the driver applies after an update.
    public struct Change: Sendable, Equatable {
        public var stepSize: Double
        public var metric: Metric?
    }

    /// Folds in warm-up iteration `iteration`: its acceptance statistic and the position
    /// the chain holds after it.
    public mutating func update(iteration: Int, acceptance: Double, position: [Double],
                                schedule: WarmupSchedule, metricKind: Metric.Kind) -> Change {
        stepSize.update(acceptance: acceptance)
        var change = Change(stepSize: stepSize.current, metric: nil)
        if let (_, window) = schedule.window(containing: iteration), metricKind != .identity {
            if iteration == window.lowerBound { estimator = MetricEstimator(kind: metricKind, dimension: position.count) }
            estimator?.add(position)
            if iteration == window.upperBound - 1, let e = estimator {
                change.metric = e.metric()
                finishedWindow = e
                estimator = nil
                // A new metric changes the geometry: dual averaging starts again around ε.
                stepSize.restart(at: stepSize.current, scale: restartScale)
                change.stepSize = stepSize.current
            }
        }
        if iteration == schedule.warmup - 1 {
            change.stepSize = stepSize.final
            estimator = nil
        }
        return change
    }
}
