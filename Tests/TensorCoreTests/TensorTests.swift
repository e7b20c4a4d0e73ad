import ProbeFarmTesting
import TensorCore
import Testing

struct TensorTests {
    @Test("copies share storage until one is mutated")
    func copyOnWrite() {
        let a = Tensor(shape: [2, 3], scalars: (0..<6).map(Float.init))
        var b = a
        b[flat: 0] = 42
        #expect(a[flat: 0] == 0)
        #expect(b[flat: 0] == 42)
        #expect(a.reshaped([3, 2]).scalars == a.scalars)
    }

    @Test("GEMM matches a naive triple loop for every transpose combination",
          arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemm(_ ta: Bool, _ tb: Bool) {
        let (m, n, k) = (5, 7, 3)
        var g = SplitMix64(seed: 1)
        let a = (0..<(m * k)).map { _ in g.nextNormal() }
        let b = (0..<(k * n)).map { _ in g.nextNormal() }
        var c = [Float](repeating: 1, count: m * n)
        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 2, a: a, b: b, beta: 0.5, c: &c)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j])
                }
                #expect(abs(c[i * n + j] - (2 * s + 0.5)) < 1e-4)
            }
        }
    }

    @Test("column accumulation is the adjoint of column lowering", arguments: [
        ConvGeometry(channels: 2, input: (5, 6), kernel: (3, 3), padding: (1, 1)),
        ConvGeometry(channels: 1, input: (7, 7), kernel: (3, 2), stride: (2, 3), padding: (2, 0), dilation: (2, 1)),
    ])
    func im2colAdjoint(_ g: ConvGeometry) {
        // ⟨lower(x), c⟩ = ⟨x, accumulate(c)⟩ for random x, c.
        var r = SplitMix64(seed: 3)
        let batch = 2
        let x = (0..<(batch * g.channels * g.inputArea)).map { _ in Double(r.nextNormal()) }
        let cols = g.columnRows * batch * g.outputArea
        let c = (0..<cols).map { _ in Double(r.nextNormal()) }
        var lowered = [Float](repeating: 0, count: cols)
        Im2Col.lower(x.map(Float.init), batch: batch, geometry: g, into: &lowered)
        var back = [Float](repeating: 0, count: x.count)
        Im2Col.accumulate(c.map(Float.init), batch: batch, geometry: g, into: &back)
        let lhs = zip(lowered, c).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        let rhs = zip(back, x).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        #expect(Tolerance.isClose(lhs, rhs, relative: 1e-5))
    }
}
