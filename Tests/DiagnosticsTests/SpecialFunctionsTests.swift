import Diagnostics
import ProbeFarmTesting
import Testing

struct SpecialFunctionsTests {
    // Reference values from SciPy 1.17 (scipy.stats.norm.ppf, scipy.stats.beta.ppf).
    @Test("normal quantile matches SciPy", arguments: [
        (0.5, 0.0), (0.975, 1.959963984540054), (0.025, -1.9599639845400545),
        (1e-10, -6.361340902404056), (0.999999, 4.753424308817087),
        (0.3, -0.5244005127080409),
    ])
    func normalQuantile(_ p: Double, _ expected: Double) {
        #expect(Tolerance.isClose(SpecialFunctions.normalQuantile(p), expected, relative: 1e-13, absolute: 1e-15))
    }

    @Test("beta quantile matches SciPy", arguments: [
        (0.1586553, 101.0, 301.0, 0.22962386343234792),
        (0.8413447, 3.5, 1.5, 0.8943420747407069),
    ])
    func betaQuantile(_ p: Double, _ a: Double, _ b: Double, _ expected: Double) {
        #expect(Tolerance.isClose(SpecialFunctions.betaQuantile(p, a, b), expected, relative: 1e-12))
    }
}
