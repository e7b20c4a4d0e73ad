import Foundation

/// 3×3, stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3)
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
///
/// Each 2×2 block of output comes from a 4×4 tile of input: with the transforms
/// `V = Bᵀ d B` (input tile), `U = G g Gᵀ` (kernel) and `Y = Aᵀ M A`, the 16 products
/// `M[ξ] = Σ_c U[ξ, o, c] · V[ξ, c]` are 16 matrix products over channels — 2.25× fewer
/// multiply-adds than the direct convolution and no 9× column matrix. The transforms use
/// only ±1 and ½, so the result differs from the direct sum by rounding alone (≈ 1e-6
/// relative).
///
/// The pullback with respect to the input is the same kind of convolution: the adjoint
/// of a 3×3 correlation with padding p is a correlation of the output gradient with the
/// flipped, channel-transposed kernel and padding 2 − p. Flipping a kernel permutes its
/// transform (`G·J₃ = S·G`, S swapping rows 0 and 3), so one transformed kernel serves
/// both directions.
public enum Winograd3x3 {
    /// Transformed tile entries: 4×4.
    static let tileEntries = 16

    /// Whether a convolution with this kernel, stride, dilation and padding runs here.
    public static func applies(kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int), padding: (Int, Int)) -> Bool {
        kernel == (3, 3) && stride == (1, 1) && dilation == (1, 1)
            && (0...2).contains(padding.0) && (0...2).contains(padding.1)
    }

    /// `U[ξ, o, c] = (G · W[o, c] · Gᵀ)[ξ]` for a weight [O, C, 3, 3]; shape [16, O, C].
    public static func transformKernel(_ weight: Tensor) -> Tensor {
        precondition(weight.shape.count == 4 && weight.shape[2] == 3 && weight.shape[3] == 3, "Winograd needs a 3×3 kernel")
        let (outC, inC) = (weight.shape[0], weight.shape[1])
        var u = Tensor(uninitializedShape: [tileEntries, outC, inC])
        let plane = outC * inC
        weight.withUnsafeBufferPointer { w in
            u.withUnsafeMutableBufferPointer { up in
                for pair in 0..<plane {
                    let g = w.baseAddress! + pair * 9
                    // G·g (4 rows of 3), then each row (a, b, c) of it times Gᵀ.
                    for i in 0..<4 {
                        func entry(_ j: Int) -> Float {
                            let (a, b, c) = (g[j], g[3 + j], g[6 + j])
                            switch i {
                            case 0: return a
                            case 1: return (a + b + c) * 0.5
                            case 2: return (a - b + c) * 0.5
                            default: return c
                            }
                        }
                        let (a, b, c) = (entry(0), entry(1), entry(2))
                        let o = up.baseAddress! + 4 * i * plane + pair
                        o[0] = a
                        o[plane] = (a + b + c) * 0.5
                        o[2 * plane] = (a - b + c) * 0.5
                        o[3 * plane] = c
                    }
                }
            }
        }
        return u
    }

    /// y = conv(x, W) + b for x [B, C, H, W], with `u` = ``transformKernel(_:)`` of W [O, C, 3, 3].
    public static func forward(_ x: Tensor, kernel u: Tensor, bias: Tensor?, padding: (Int, Int)) -> Tensor {
        let (outC, inC) = (u.shape[1], u.shape[2])
        precondition(x.shape.count == 4 && x.shape[1] == inC, "Winograd input does not match the kernel")
        var y = Tensor(uninitializedShape: [x.shape[0], outC, x.shape[2] + 2 * padding.0 - 2, x.shape[3] + 2 * padding.1 - 2])
        x.withUnsafeBufferPointer { xp in
            u.withUnsafeBufferPointer { up in
                y.withUnsafeMutableBufferPointer { yp in
                    if let bias {
                        bias.withUnsafeBufferPointer { bp in
                            convolve(xp.baseAddress!, shape: x.shape, padding: padding, kernel: up.baseAddress!,
                                     outChannels: outC, adjoint: false, bias: bp.baseAddress!, into: yp.baseAddress!)
                        }
                    } else {
                        convolve(xp.baseAddress!, shape: x.shape, padding: padding, kernel: up.baseAddress!,
                                 outChannels: outC, adjoint: false, bias: nil, into: yp.baseAddress!)
                    }
                }
            }
        }
        return y
    }

    /// dL/dx of ``forward(_:kernel:bias:padding:)`` given dL/dy [B, O, H', W'], for an input of
    /// `inputShape` [B, C, H, W].
    public static func inputGradient(_ dy: Tensor, kernel u: Tensor, inputShape: [Int], padding: (Int, Int)) -> Tensor {
        let (outC, inC) = (u.shape[1], u.shape[2])
        precondition(dy.shape.count == 4 && dy.shape[1] == outC, "Winograd gradient does not match the kernel")
        let adjointPadding = (2 - padding.0, 2 - padding.1)
        var dx = Tensor(uninitializedShape: inputShape)
        precondition(dy.shape[2] + 2 * adjointPadding.0 - 2 == inputShape[2]
                     && dy.shape[3] + 2 * adjointPadding.1 - 2 == inputShape[3], "Winograd gradient extent mismatch")
        dy.withUnsafeBufferPointer { gp in
            u.withUnsafeBufferPointer { up in
                dx.withUnsafeMutableBufferPointer { dp in
                    convolve(gp.baseAddress!, shape: dy.shape, padding: adjointPadding, kernel: up.baseAddress!,
                             outChannels: inC, adjoint: true, bias: nil, into: dp.baseAddress!)
                }
            }
        }
        return dx
    }

    /// The correlation of `x` (shape [B, C, H, W]) with a transformed kernel, padding `padding`:
    /// output [B, outChannels, H + 2ph − 2, W + 2pw − 2]. With `adjoint`, the kernel `u` is
    /// [16, C, outChannels] and is applied flipped and transposed (the input pullback).
    static func convolve(
        _ x: UnsafePointer<Float>, shape: [Int], padding: (Int, Int), kernel u: UnsafePointer<Float>,
        outChannels: Int, adjoint: Bool, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>
    ) {
        let (batch, channels, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let oh = h + 2 * padding.0 - 2, ow = w + 2 * padding.1 - 2
        let tilesY = (oh + 1) / 2, tilesX = (ow + 1) / 2
        // Tile rows (b, ty) go through in chunks whose transformed input and products fit
        // in L2 together, so the 16 products read what the transform just wrote.
        let perRow = tileEntries * (channels + outChannels) * tilesX * MemoryLayout<Float>.stride
        let chunkRows = max(1, chunkBytes / perRow)
        let scratch = Scratch.shared
        let most = min(chunkRows, batch * tilesY) * tilesX
        let vStride = entryStride(channels * most), mStride = entryStride(outChannels * most)
        let v = scratch.buffer(0, count: tileEntries * vStride)
        let m = scratch.buffer(1, count: tileEntries * mStride)
        let kernelPlane = channels * outChannels
        for first in stride(from: 0, to: batch * tilesY, by: chunkRows) {
            let rows = first..<min(first + chunkRows, batch * tilesY)
            let tiles = rows.count * tilesX
            transformInput(x, channels: channels, height: h, width: w, padding: padding,
                           tilesY: tilesY, tilesX: tilesX, rows: rows, entryStride: vStride, into: v)
            // OpenBLAS clears C element by element when beta = 0; memset is several times faster.
            m.update(repeating: 0, count: tileEntries * mStride)
            for xi in 0..<tileEntries {
                let vb = v + xi * vStride, mb = m + xi * mStride
                if adjoint {
                    // Flipping the kernel swaps transform rows/columns 0 and 3.
                    let (i, j) = (xi / 4, xi % 4)
                    let flipped = 4 * (i == 0 ? 3 : i == 3 ? 0 : i) + (j == 0 ? 3 : j == 3 ? 0 : j)
                    BLAS.gemm(transA: true, m: outChannels, n: tiles, k: channels,
                              a: u + flipped * kernelPlane, b: vb, beta: 1, c: mb)
                } else {
                    BLAS.gemm(m: outChannels, n: tiles, k: channels, a: u + xi * kernelPlane, b: vb, beta: 1, c: mb)
                }
            }
            transformOutput(m, channels: outChannels, height: oh, width: ow, tilesY: tilesY, tilesX: tilesX,
                            rows: rows, entryStride: mStride, bias: bias, into: y)
        }
    }

    /// The budget of one chunk's transformed input and products.
    static let chunkBytes: Int = {
        if let s = getenv("PROBEFARM_WINOGRAD_KB"), let k = Int(String(cString: s)) { return k * 1024 }
        return 256 * 1024
    }()

    /// The distance between the 16 planes of a transformed buffer, for planes of `count`
    /// floats: a multiple of 4 KiB plus one cache line, so the 16 streams a tile reads or
    /// writes fall in different cache sets (at a power-of-two distance they would all
    /// compete for one set and thrash L1).
    /// The input transform may write 7 floats past a plane's `count`; the padding holds them.
    static func entryStride(_ count: Int) -> Int {
        (count + 1023) / 1024 * 1024 + 16
    }

    /// `V[ξ, c, t] = (Bᵀ d B)[ξ]` for every 4×4 input tile d (zero outside the image), with
    /// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]];
    /// tile t = (b, ty, tx) starts at row 2·ty − ph, column 2·tx − pw.
    ///
    /// The rows an image's tiles read are first copied with their zero padding; then 8
    /// tiles at a time take their four columns from two 16-wide loads per row (even and
    /// odd lanes), so every load and store is contiguous. A row's last group may write up
    /// to 7 tiles past its end, into the next row (written after it: channels outermost)
    /// or the plane's padding (see ``entryStride(_:)``).
    static func transformInput(
        _ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, padding: (Int, Int),
        tilesY: Int, tilesX: Int, rows: Range<Int>, entryStride es: Int, into v: UnsafeMutablePointer<Float>
    ) {
        let tiles = rows.count * tilesX
        let rowWidth = (2 * tilesX + 32 + 15) / 16 * 16   // the last group reads 2·tx + 17 < 2·tilesX + 32
        let paddedRows = 2 * tilesY + 2
        let planes = UnsafeMutablePointer<Float>.allocate(capacity: paddedRows * rowWidth)
        defer { planes.deallocate() }
        for c in 0..<channels {
            var image = -1
            for row in rows {
                let (b, ty) = row.quotientAndRemainder(dividingBy: tilesY)
                if b != image {
                    // The padded rows this chunk's tiles of image b read.
                    image = b
                    let lastTileRow = min(rows.upperBound - 1, (b + 1) * tilesY - 1) - b * tilesY
                    let src = x + (b * channels + c) * h * w
                    for r in (2 * ty)..<(2 * lastTileRow + 4) {
                        let dst = planes + r * rowWidth, sy = r - padding.0
                        guard sy >= 0 && sy < h else {
                            dst.update(repeating: 0, count: rowWidth)
                            continue
                        }
                        dst.update(repeating: 0, count: padding.1)
                        (dst + padding.1).update(from: src + sy * w, count: w)
                        (dst + padding.1 + w).update(repeating: 0, count: rowWidth - padding.1 - w)
                    }
                }
                let d0 = planes + 2 * ty * rowWidth, d1 = d0 + rowWidth, d2 = d1 + rowWidth, d3 = d2 + rowWidth
                let out = v + c * tiles + (row - rows.lowerBound) * tilesX
                let r = SIMD16<Float>.self
                for tx in stride(from: 0, to: tilesX, by: 8) {
                    // Columns 2·tx + j of each row: j = 0, 1 from one load, j = 2, 3 from the next.
                    let a0 = load(r, d0 + 2 * tx), b0 = load(r, d0 + 2 * tx + 2)
                    let a1 = load(r, d1 + 2 * tx), b1 = load(r, d1 + 2 * tx + 2)
                    let a2 = load(r, d2 + 2 * tx), b2 = load(r, d2 + 2 * tx + 2)
                    let a3 = load(r, d3 + 2 * tx), b3 = load(r, d3 + 2 * tx + 2)
                    // Bᵀ d (rows combined), as pairs of columns (0, 1) and (2, 3), then
                    // (Bᵀ d) B along each row i: ξ = 4i + j.
                    let o = out + tx
                    storeRow(a0 - a2, b0 - b2, o, es)
                    storeRow(a1 + a2, b1 + b2, o + 4 * es, es)
                    storeRow(a2 - a1, b2 - b1, o + 8 * es, es)
                    storeRow(a1 - a3, b1 - b3, o + 12 * es, es)
                }
            }
        }
    }

    /// One row of Bᵀ d for 8 tiles — columns 0, 1 interleaved in `a`, 2, 3 in `b` — times B.
    @inline(__always)
    static func storeRow(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ o: UnsafeMutablePointer<Float>, _ es: Int) {
        let t0 = a.evenHalf, t1 = a.oddHalf, t2 = b.evenHalf, t3 = b.oddHalf
        store(t0 - t2, o); store(t1 + t2, o + es)
        store(t2 - t1, o + 2 * es); store(t1 - t3, o + 3 * es)
    }

    /// `y[b, o, 2ty + i, 2tx + j] = (Aᵀ M A)[i, j] (+ bias[o])`, with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]];
    /// the last row or column of a tile is dropped where the extent is odd. Runs over 8
    /// tiles at once; a row's last group reads past its end (values never stored) and is
    /// stored through a small buffer.
    static func transformOutput(
        _ m: UnsafePointer<Float>, channels: Int, height oh: Int, width ow: Int, tilesY: Int, tilesX: Int,
        rows: Range<Int>, entryStride es: Int, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>
    ) {
        let tiles = rows.count * tilesX
        let lines = UnsafeMutablePointer<Float>.allocate(capacity: 32)   // a row's last, partial group
        defer { lines.deallocate() }
        let top = lines, bottom = lines + 16
        let r = SIMD8<Float>.self
        for row in rows {
            let (b, ty) = row.quotientAndRemainder(dividingBy: tilesY)
            for o in 0..<channels {
                let plane = y + (b * channels + o) * oh * ow
                let add = SIMD8<Float>(repeating: bias?[o] ?? 0)
                let p = m + o * tiles + (row - rows.lowerBound) * tilesX
                let upperRow = plane + 2 * ty * ow, lowerRow = upperRow + ow, hasLower = 2 * ty + 1 < oh
                do {
                    for tx in stride(from: 0, to: tilesX, by: 8) {
                        let q = p + tx
                        // Aᵀ M (rows combined), per column j, then times A.
                        let m10 = load(r, q + 4 * es), m11 = load(r, q + 5 * es)
                        let m12 = load(r, q + 6 * es), m13 = load(r, q + 7 * es)
                        let m20 = load(r, q + 8 * es), m21 = load(r, q + 9 * es)
                        let m22 = load(r, q + 10 * es), m23 = load(r, q + 11 * es)
                        let s00 = load(r, q) + m10 + m20, s01 = load(r, q + es) + m11 + m21
                        let s02 = load(r, q + 2 * es) + m12 + m22, s03 = load(r, q + 3 * es) + m13 + m23
                        let s10 = m10 - m20 - load(r, q + 12 * es), s11 = m11 - m21 - load(r, q + 13 * es)
                        let s12 = m12 - m22 - load(r, q + 14 * es), s13 = m13 - m23 - load(r, q + 15 * es)
                        var upper = SIMD16<Float>(), lower = SIMD16<Float>()
                        upper.evenHalf = s00 + s01 + s02 + add
                        upper.oddHalf = s01 - s02 - s03 + add
                        lower.evenHalf = s10 + s11 + s12 + add
                        lower.oddHalf = s11 - s12 - s13 + add
                        let x0 = 2 * tx
                        if x0 + 16 <= ow {
                            store(upper, upperRow + x0)
                            if hasLower { store(lower, lowerRow + x0) }
                        } else {
                            store(upper, top)
                            store(lower, bottom)
                            (upperRow + x0).update(from: top, count: ow - x0)
                            if hasLower { (lowerRow + x0).update(from: bottom, count: ow - x0) }
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    static func load<V: SIMD>(_: V.Type, _ p: UnsafePointer<Float>) -> V where V.Scalar == Float {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func load<V: SIMD>(_ t: V.Type, _ p: UnsafeMutablePointer<Float>) -> V where V.Scalar == Float {
        load(t, UnsafePointer(p))
    }

    @inline(__always)
    static func store<V: SIMD>(_ value: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: V.self)
    }
}
