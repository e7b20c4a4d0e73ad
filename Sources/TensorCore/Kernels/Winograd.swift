import CKernels

/// 3×3, stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3)
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
///
/// Each 2×2 block of output comes from a 4×4 tile of input: with the transforms
/// `V = Bᵀ d B` (input tile), `U = G g Gᵀ` (kernel) and `Y = Aᵀ M A`, the 16 products
/// `M[ξ] = Σ_c U[ξ, o, c] · V[ξ, c]` are 16 matrix products over channels — 2.25× fewer
/// multiply-adds than the direct convolution and no 9× column matrix. The transforms use
/// only ±1 and ½, so the result differs from the direct sum by rounding alone (≈ 1e-6
/// relative). The transforms only add and subtract, so their vector width (chosen at run
/// time in CKernels) never changes a bit.
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
        // Tile rows (b, ty) go through in chunks whose transformed input and products stay
        // in cache together, so the 16 products read what the transform just wrote.
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
            // OpenBLAS clears C element by element when beta = 0; memset is several times
            // faster. Only each plane's products, not the padding between planes.
            for xi in 0..<tileEntries { (m + xi * mStride).update(repeating: 0, count: outChannels * tiles) }
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

    /// The budget of one chunk's transformed input and products. Measured on Zen (512 KiB
    /// L2): 1 MiB beat 256 KiB by ~15 % (fewer, larger products amortise OpenBLAS's
    /// packing) and matched 4 MiB.
    static let chunkBytes = 1024 * 1024

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
    /// The rows an image's tiles read are first copied into a zero-padded buffer; then
    /// `pf_winograd_input_tiles` (CKernels: 8 tiles at a time with AVX, else 4) takes each
    /// tile's four columns from the even and odd lanes of contiguous loads. A row's last
    /// group may write up to 7 tiles past its end, into the next row (written after it:
    /// channels outermost) or the plane's padding (see ``entryStride(_:)``).
    static func transformInput(
        _ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, padding: (Int, Int),
        tilesY: Int, tilesX: Int, rows: Range<Int>, entryStride es: Int, into v: UnsafeMutablePointer<Float>
    ) {
        let tiles = rows.count * tilesX
        let rowWidth = (2 * tilesX + 32 + 15) / 16 * 16   // the last group reads 2·tx + 17 < 2·tilesX + 32
        let paddedRows = 2 * tilesY + 2
        // Zero once: padding rows and columns stay zero, image rows are copied in per image.
        let planes = UnsafeMutablePointer<Float>.allocate(capacity: paddedRows * rowWidth)
        planes.initialize(repeating: 0, count: paddedRows * rowWidth)
        defer { planes.deallocate() }
        for c in 0..<channels {
            var image = -1
            for row in rows {
                let (b, ty) = row.quotientAndRemainder(dividingBy: tilesY)
                if b != image {
                    // The padded rows this chunk's tiles of image b read.
                    image = b
                    let lastTileRow = min(rows.upperBound - 1, (b + 1) * tilesY - 1) - b * tilesY
                    pf_pad_rows(x + (b * channels + c) * h * w, h, w, padding.0, padding.1,
                                2 * ty, 2 * lastTileRow + 4, rowWidth, planes)
                }
                let d0 = planes + 2 * ty * rowWidth
                pf_winograd_input_tiles(d0, d0 + rowWidth, d0 + 2 * rowWidth, d0 + 3 * rowWidth, tilesX,
                                        v + c * tiles + (row - rows.lowerBound) * tilesX, es)
            }
        }
    }

    /// `y[b, o, 2ty + i, 2tx + j] = (Aᵀ M A)[i, j] (+ bias[o])`, with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]];
    /// the last row or column of a tile is dropped where the extent is odd. The tiles of a
    /// row go through `pf_winograd_output_tiles` (CKernels), whose last group reads past the
    /// row's end (values never stored).
    static func transformOutput(
        _ m: UnsafePointer<Float>, channels: Int, height oh: Int, width ow: Int, tilesY: Int, tilesX: Int,
        rows: Range<Int>, entryStride es: Int, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>
    ) {
        let tiles = rows.count * tilesX
        for row in rows {
            let (b, ty) = row.quotientAndRemainder(dividingBy: tilesY)
            for o in 0..<channels {
                let upper = y + ((b * channels + o) * oh + 2 * ty) * ow
                pf_winograd_output_tiles(m + o * tiles + (row - rows.lowerBound) * tilesX, es, tilesX, bias?[o] ?? 0,
                                         upper, 2 * ty + 1 < oh ? upper + ow : nil, ow)
            }
        }
    }
}
