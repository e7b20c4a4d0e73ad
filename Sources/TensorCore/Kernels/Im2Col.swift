/// Column lowering for convolutions over a batch of NCHW images.
///
/// The column matrix has `geometry.columnRows` rows, indexed (c, kh, kw), and
/// `batch · outputArea` columns, indexed (b, oh, ow):
/// `col[(c,kh,kw), (b,oh,ow)] = x[b, c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]`
/// (0 outside the image). A convolution is then one GEMM for the whole batch.
public enum Im2Col {
    /// Lowers `batch` images into `col` (rows × batch·outputArea, row-major).
    public static func lower(
        _ x: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
        into col: UnsafeMutablePointer<Float>
    ) {
        let oh = g.outputHeight, ow = g.outputWidth
        let ih = g.inputHeight, iw = g.inputWidth
        let rowLength = batch * oh * ow
        for c in 0..<g.channels {
            for kh in 0..<g.kernelHeight {
                for kw in 0..<g.kernelWidth {
                    let row = col + ((c * g.kernelHeight + kh) * g.kernelWidth + kw) * rowLength
                    let xOffW = kw * g.dilationW - g.padW
                    for b in 0..<batch {
                        let image = x + (b * g.channels + c) * ih * iw
                        let dstB = row + b * oh * ow
                        for y in 0..<oh {
                            let sy = y * g.strideH - g.padH + kh * g.dilationH
                            let dst = dstB + y * ow
                            if sy < 0 || sy >= ih {
                                dst.initialize(repeating: 0, count: ow)
                                continue
                            }
                            let src = image + sy * iw
                            if g.strideW == 1 {
                                // Contiguous run with zero margins.
                                let lo = max(0, -xOffW), hi = min(ow, iw - xOffW)
                                if lo > 0 { dst.initialize(repeating: 0, count: min(lo, ow)) }
                                if hi > lo { (dst + lo).update(from: src + lo + xOffW, count: hi - lo) }
                                if hi < ow { (dst + max(hi, lo)).initialize(repeating: 0, count: ow - max(hi, lo)) }
                            } else {
                                for xo in 0..<ow {
                                    let sx = xo * g.strideW + xOffW
                                    dst[xo] = (sx >= 0 && sx < iw) ? src[sx] : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the columns back onto `batch` images: the adjoint of ``lower(_:batch:geometry:into:)``.
    /// `x` is accumulated into, not overwritten.
    public static func accumulate(
        _ col: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
        into x: UnsafeMutablePointer<Float>
    ) {
        let oh = g.outputHeight, ow = g.outputWidth
        let ih = g.inputHeight, iw = g.inputWidth
        let rowLength = batch * oh * ow
        for c in 0..<g.channels {
            for kh in 0..<g.kernelHeight {
                for kw in 0..<g.kernelWidth {
                    let row = col + ((c * g.kernelHeight + kh) * g.kernelWidth + kw) * rowLength
                    let xOffW = kw * g.dilationW - g.padW
                    for b in 0..<batch {
                        let image = x + (b * g.channels + c) * ih * iw
                        let srcB = row + b * oh * ow
                        for y in 0..<oh {
                            let sy = y * g.strideH - g.padH + kh * g.dilationH
                            if sy < 0 || sy >= ih { continue }
                            let dst = image + sy * iw
                            let src = srcB + y * ow
                            if g.strideW == 1 {
                                let lo = max(0, -xOffW), hi = min(ow, iw - xOffW)
                                if hi > lo {
                                    for xo in lo..<hi { dst[xo + xOffW] += src[xo] }
                                }
                            } else {
                                for xo in 0..<ow {
                                    let sx = xo * g.strideW + xOffW
                                    if sx >= 0 && sx < iw { dst[sx] += src[xo] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Moves between batch-major (B × C × P) and channel-major (C × B·P) layouts, the
/// permutation between NCHW tensors and the GEMM's output of a batched convolution.
public enum ChannelMajor {
    /// `dst[c, b·P + p] = src[b, c, p]`.
    public static func fromBatchMajor(
        _ src: UnsafePointer<Float>, batch: Int, channels: Int, area: Int,
        into dst: UnsafeMutablePointer<Float>
    ) {
        for b in 0..<batch {
            for c in 0..<channels {
                (dst + c * batch * area + b * area).update(from: src + (b * channels + c) * area, count: area)
            }
        }
    }

    /// `dst[b, c, p] = src[c, b·P + p] (+ bias[c])`.
    public static func toBatchMajor(
        _ src: UnsafePointer<Float>, batch: Int, channels: Int, area: Int,
        bias: UnsafePointer<Float>? = nil, into dst: UnsafeMutablePointer<Float>
    ) {
        for b in 0..<batch {
            for c in 0..<channels {
                let s = src + c * batch * area + b * area
                let d = dst + (b * channels + c) * area
                if let bias {
                    let v = bias[c]
                    for p in 0..<area { d[p] = s[p] + v }
                } else {
                    d.update(from: s, count: area)
                }
            }
        }
    }
}
