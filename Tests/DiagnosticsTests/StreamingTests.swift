import Diagnostics
import ProbeFarmTesting
import TensorCore
import Testing

/// The streaming accumulators agree with the batch functions on the same draws.
struct StreamingTests {
    @Test("running moments merge and subtract as one pass would")
    func moments() {
        var g = SplitMix64(seed: 5)
        let x = (0..<1000).map { _ in Double(g.nextNormal()) * 3 + 1 }
        let whole = RunningMoments(x)
        var merged = RunningMoments(x[..<370])
        merged.merge(RunningMoments(x[370...]))
        #expect(Tolerance.isClose(merged.mean, whole.mean, relative: 1e-12))
        #expect(Tolerance.isClose(merged.m2, whole.m2, relative: 1e-12))
        let rest = whole.removing(prefix: RunningMoments(x[..<370]))
        let direct = RunningMoments(x[370...])
        #expect(rest.count == direct.count)
        #expect(Tolerance.isClose(rest.mean, direct.mean, relative: 1e-10))
        #expect(Tolerance.isClose(rest.m2, direct.m2, relative: 1e-10))
    }

    @Test("segment-by-segment diagnostics equal the batch ones", arguments: [(4, 3, 1), (8, 2, 2), (3, 1, 3)])
    func accumulatorMatchesBatch(_ chains: Int, _ quantities: Int, _ seed: UInt64) {
        var g = SplitMix64(seed: seed)
        var acc = DrawAccumulator(chains: chains, quantities: quantities)
        var series = Array(repeating: [Double](), count: chains)
        var state = Array(repeating: Array(repeating: 0.0, count: quantities), count: chains)
        // Segments of uneven lengths arriving chain by chain, as from a farm of workers.
        for round in 0..<6 {
            for c in 0..<chains {
                let length = 37 + Int(g.next() % 50) + round
                var segment = [Double]()
                for _ in 0..<length {
                    for q in 0..<quantities {
                        state[c][q] = 0.8 * state[c][q] + Double(g.nextNormal()) + (c == 0 ? 0.3 : 0)
                        segment.append(state[c][q])
                    }
                }
                acc.append(chain: c, values: segment)
                series[c] += segment
            }
            let n = acc.draws
            #expect(n == series.map { $0.count / quantities }.min())
            for q in 0..<quantities {
                let batch = ChainDraws(chains: chains, draws: n, values: (0..<chains).flatMap { c in
                    (0..<n).map { series[c][$0 * quantities + q] }
                })
                #expect(acc.chainDraws(quantity: q) == batch)
                if let a = acc.splitRHat(quantity: q), let b = batch.rhat(method: .split) {
                    #expect(Tolerance.isClose(a, b, relative: 1e-10), "split R-hat \(a) vs \(b)")
                } else { Issue.record("split R-hat missing") }
                if let a = acc.classicRHat(quantity: q), let b = batch.rhat(method: .identity) {
                    #expect(Tolerance.isClose(a, b, relative: 1e-10), "R-hat \(a) vs \(b)")
                } else { Issue.record("R-hat missing") }
                #expect(acc.summary(quantity: q) == QuantitySummary(batch))
            }
        }
        #expect(acc.memoryBytes >= 8 * quantities * series.reduce(0) { $0 + $1.count } / quantities)
    }
}
