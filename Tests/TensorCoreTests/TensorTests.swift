import CKernels
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

    /// A convolution case for the Winograd comparison: input [B, C, H, W], O outputs, padding.
    struct WinogradCase: Sendable, CustomTestStringConvertible {
        var input: [Int], out: Int, padding: (Int, Int)
        var testDescription: String { "x\(input) o\(out) p\(padding)" }
    }

    @Test("Winograd F(2×2, 3×3) agrees with the column-lowering convolution and its input pullback", arguments: [
        WinogradCase(input: [1, 1, 28, 28], out: 32, padding: (1, 1)),
        WinogradCase(input: [3, 32, 14, 14], out: 64, padding: (1, 1)),
        WinogradCase(input: [2, 5, 7, 9], out: 3, padding: (0, 2)),
        WinogradCase(input: [2, 4, 19, 35], out: 6, padding: (2, 0)),
        WinogradCase(input: [5, 2, 3, 3], out: 1, padding: (0, 0)),
        WinogradCase(input: [1, 3, 1, 1], out: 2, padding: (1, 1)),
        // Chunks of 8 tile rows (~1 MiB) that split images of 15 tile rows part-way.
        WinogradCase(input: [4, 64, 30, 29], out: 64, padding: (1, 1)),
    ])
    func winograd(_ c: WinogradCase) {
        var r = SplitMix64(seed: 11)
        let x = Tensor(shape: c.input) { _ in r.nextNormal() }
        let w = Tensor(shape: [c.out, c.input[1], 3, 3]) { _ in r.nextNormal() * 0.3 }
        let bias = Tensor(shape: [c.out]) { _ in r.nextNormal() }
        let g = Convolution.geometry(input: c.input, weight: w.shape, stride: (1, 1), padding: c.padding, dilation: (1, 1))
        let u = Winograd3x3.transformKernel(w)
        let direct = Convolution.forward(x, weight: w, bias: bias, geometry: g)
        let fast = Winograd3x3.forward(x, kernel: u, bias: bias, padding: c.padding)
        #expect(fast.shape == direct.shape)
        let dy = Tensor(shape: direct.shape) { _ in r.nextNormal() }
        let directGradient = Convolution.backward(x, weight: w, outputGradient: dy, geometry: g, wantParameters: false).input!
        let fastGradient = Winograd3x3.inputGradient(dy, kernel: u, inputShape: c.input, padding: c.padding)
        // The 128-bit transforms give the same bits as the 256-bit ones.
        pf_kernels_allow_avx(0)
        let narrow = Winograd3x3.forward(x, kernel: u, bias: bias, padding: c.padding)
        let narrowGradient = Winograd3x3.inputGradient(dy, kernel: u, inputShape: c.input, padding: c.padding)
        pf_kernels_allow_avx(1)
        #expect(narrow.scalars.map(\.bitPattern) == fast.scalars.map(\.bitPattern))
        #expect(narrowGradient.scalars.map(\.bitPattern) == fastGradient.scalars.map(\.bitPattern))
        // Rounding only: the transforms are exact in ±1 and ½; allow 1e-5 of the largest value.
        for (a, b) in [(fast, direct), (fastGradient, directGradient)] {
            let scale = b.scalars.map(abs).max()!
            let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-5 * max(scale, 1), "largest difference \(worst) of \(scale)")
        }
    }

    @Test("2×2 max pooling over wide rows (8 windows at a time) keeps the first maximum, NaN winning, forward and back",
          arguments: [true, false])
    func pairPoolingFastPath(_ avx: Bool) {
        // Few distinct values, so windows tie; NaNs and signed zeros among them; width 37
        // gives 18 windows per row (two groups of 8 and a tail of 2) and an odd last
        // column; height 7 an odd last row.
        var r = SplitMix64(seed: 5)
        let choices: [Float] = [0, -0.0, 1, 2, .nan, -1]
        let (planes, h, w) = (6, 7, 37)
        let x = Tensor(shape: [2, 3, h, w]) { _ in choices[Int(r.next() % UInt64(choices.count))] }
        let g = Tensor(shape: [2, 3, 3, 18]) { _ in r.nextNormal() }
        let window = Pooling.Window(kernel: (2, 2), stride: (2, 2), padding: (0, 0))
        pf_kernels_allow_avx(avx ? 1 : 0)
        let y = Pooling.maxForward(x, window: window)
        let dx = Pooling.maxBackward(x, outputGradient: g, window: window)
        pf_kernels_allow_avx(1)
        #expect(y.shape == [2, 3, 3, 18])
        var expected = [Float](repeating: 0, count: x.count)
        for p in 0..<planes {
            for oy in 0..<3 {
                for ox in 0..<18 {
                    // The scan-order reference: the first value that is NaN or larger than all before it.
                    let base = (p * h + 2 * oy) * w + 2 * ox
                    let places = [base, base + 1, base + w, base + w + 1]
                    var k = 0
                    for i in 1..<4 where !x[flat: places[k]].isNaN && (x[flat: places[i]] > x[flat: places[k]] || x[flat: places[i]].isNaN) { k = i }
                    let best = x[flat: places[k]], got = y[flat: (p * 3 + oy) * 18 + ox]
                    #expect(got.bitPattern == best.bitPattern || (got.isNaN && best.isNaN), "window \(places.map { x[flat: $0] })")
                    expected[places[k]] = g[flat: (p * 3 + oy) * 18 + ox]
                }
            }
        }
        #expect(dx.scalars.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test("small row products give the same bits on the 256-bit and 128-bit paths, and the right values",
          arguments: [(1, 23, 128), (2, 128, 23), (1, 2, 8), (2, 37, 5), (1, 8, 32), (1, 1, 3),
                      (1, 125, 9), (2, 300, 200)])
    func smallRowProducts(_ m: Int, _ n: Int, _ k: Int) {
        var r = SplitMix64(seed: UInt64(n * 31 + k))
        // A with zeros (skipped terms), as a ReLU gradient has.
        let a = (0..<(m * k)).map { i in i % 3 == 0 ? 0 : r.nextNormal() }
        let b = (0..<(k * n)).map { _ in r.nextNormal() }
        let c0 = (0..<(m * n)).map { _ in r.nextNormal() }
        for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, -2)] {
            var wide = c0, narrow = c0
            pf_gemm_rows_using(1, m, n, k, alpha, a, k, b, n, beta, &wide, n)
            pf_gemm_rows_using(0, m, n, k, alpha, a, k, b, n, beta, &narrow, n)
            #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "α \(alpha) β \(beta)")
            for i in 0..<m {
                for j in 0..<n {
                    var s: Double = 0
                    for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                    let want = Double(alpha) * s + Double(beta) * Double(c0[i * n + j])
                    #expect(abs(Double(wide[i * n + j]) - want) <= 1e-4 * (1 + abs(want)))
                }
            }
        }
    }

    @Test("one- and two-row products of a large matrix, with and without B transposed, against Float64 sums")
    func largeRowProducts() {
        var r = SplitMix64(seed: 5)
        let (n, k) = (700, 3000)
        let b = (0..<(k * n)).map { _ in r.nextNormal() }
        for m in [1, 2] {
            let a = (0..<(m * k)).map { _ in r.nextNormal() }
            for transB in [false, true] {
                var c = [Float](repeating: .nan, count: m * n)   // β = 0 overwrites
                BLAS.gemm(transB: transB, m: m, n: n, k: k, a: a, b: b, c: &c)
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Double = 0
                        for p in 0..<k { s += Double(a[i * k + p]) * Double(transB ? b[j * k + p] : b[p * n + j]) }
                        #expect(abs(Double(c[i * n + j]) - s) <= 1e-4 * (1 + abs(s)), "m \(m) transB \(transB) [\(i), \(j)]")
                    }
                }
            }
        }
    }
}
