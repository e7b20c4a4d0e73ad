/// Batched 2-D convolution and transposed convolution over NCHW tensors, with PyTorch's
/// semantics (cross-correlation; weight `[out, in, kh, kw]` for a convolution and
/// `[in, out, kh, kw]` for a transposed one; one group).
///
/// Each pass lowers the whole batch to a column matrix (``Im2Col``) and does one GEMM,
/// so a batch of chains costs one large matrix product per layer.
public enum Convolution {
    /// The geometry of a convolution of `input` (B, C, H, W) with `weight` (O, C, kh, kw).
    public static func geometry(
        input: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)
    ) -> ConvGeometry {
        ConvGeometry(
            channels: input[1], input: (input[2], input[3]), kernel: (weight[2], weight[3]),
            stride: stride, padding: padding, dilation: dilation)
    }

    /// y = conv(x, W) + b.
    public static func forward(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry
    ) -> Tensor {
        let batch = x.shape[0], outC = weight.shape[0]
        let area = g.outputArea, rows = g.columnRows
        var y = Tensor(uninitializedShape: [batch, outC, g.outputHeight, g.outputWidth])
        let scratch = Scratch.shared
        let col = scratch.buffer(0, count: rows * batch * area)
        let prod = scratch.buffer(1, count: outC * batch * area)
        x.withUnsafeBufferPointer { xp in Im2Col.lower(xp.baseAddress!, batch: batch, geometry: g, into: col) }
        weight.withUnsafeBufferPointer { wp in
            BLAS.gemm(m: outC, n: batch * area, k: rows, a: wp.baseAddress!, b: col, c: prod)
        }
        y.withUnsafeMutableBufferPointer { yp in
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    ChannelMajor.toBatchMajor(prod, batch: batch, channels: outC, area: area,
                                              bias: bp.baseAddress!, into: yp.baseAddress!)
                }
            } else {
                ChannelMajor.toBatchMajor(prod, batch: batch, channels: outC, area: area, into: yp.baseAddress!)
            }
        }
        return y
    }

    /// The pullback of ``forward(_:weight:bias:geometry:)``: given dL/dy, returns dL/dx
    /// and, when asked, dL/dW and dL/db.
    public static func backward(
        _ x: Tensor, weight: Tensor, outputGradient dy: Tensor, geometry g: ConvGeometry,
        wantInput: Bool = true, wantParameters: Bool
    ) -> (input: Tensor?, weight: Tensor?, bias: Tensor?) {
        let batch = x.shape[0], outC = weight.shape[0]
        let area = g.outputArea, rows = g.columnRows
        let scratch = Scratch.shared
        let dyc = scratch.buffer(1, count: outC * batch * area)
        dy.withUnsafeBufferPointer { p in
            ChannelMajor.fromBatchMajor(p.baseAddress!, batch: batch, channels: outC, area: area, into: dyc)
        }
        var dx: Tensor? = nil
        if wantInput {
            let dcol = scratch.buffer(0, count: rows * batch * area)
            weight.withUnsafeBufferPointer { wp in
                BLAS.gemm(transA: true, m: rows, n: batch * area, k: outC, a: wp.baseAddress!, b: dyc, c: dcol)
            }
            var g0 = Tensor(shape: x.shape)
            g0.withUnsafeMutableBufferPointer { p in
                Im2Col.accumulate(dcol, batch: batch, geometry: g, into: p.baseAddress!)
            }
            dx = g0
        }
        guard wantParameters else { return (dx, nil, nil) }
        let col = scratch.buffer(0, count: rows * batch * area)
        x.withUnsafeBufferPointer { xp in Im2Col.lower(xp.baseAddress!, batch: batch, geometry: g, into: col) }
        var dw = Tensor(shape: weight.shape)
        dw.withUnsafeMutableBufferPointer { p in
            BLAS.gemm(transB: true, m: outC, n: rows, k: batch * area, a: dyc, b: col, c: p.baseAddress!)
        }
        var db = Tensor(shape: [outC])
        db.withUnsafeMutableBufferPointer { p in
            for o in 0..<outC {
                var s: Float = 0
                let r = dyc + o * batch * area
                for i in 0..<(batch * area) { s += r[i] }
                p[o] = s
            }
        }
        return (dx, dw, db)
    }

    /// The output extent of a transposed convolution along one axis:
    /// `(in − 1)·stride − 2·pad + dil·(k − 1) + outputPadding + 1`.
    public static func transposedExtent(
        input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, outputPadding: Int
    ) -> Int {
        (input - 1) * stride - 2 * padding + dilation * (kernel - 1) + outputPadding + 1
    }

    /// y = conv_transpose(x, W) + b, where `g` is the geometry of the convolution that
    /// maps y's shape to x's shape (channels = out channels, input = y's extent).
    public static func transposedForward(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: ConvGeometry
    ) -> Tensor {
        let batch = x.shape[0], inC = x.shape[1]
        let area = g.outputArea, rows = g.columnRows   // area: x's pixels; rows: outC·kh·kw
        precondition(area == x.shape[2] * x.shape[3], "transposed geometry does not match input")
        var y = Tensor(shape: [batch, g.channels, g.inputHeight, g.inputWidth])
        let scratch = Scratch.shared
        let xc = scratch.buffer(1, count: inC * batch * area)
        let col = scratch.buffer(0, count: rows * batch * area)
        x.withUnsafeBufferPointer { p in
            ChannelMajor.fromBatchMajor(p.baseAddress!, batch: batch, channels: inC, area: area, into: xc)
        }
        weight.withUnsafeBufferPointer { wp in
            BLAS.gemm(transA: true, m: rows, n: batch * area, k: inC, a: wp.baseAddress!, b: xc, c: col)
        }
        y.withUnsafeMutableBufferPointer { yp in
            Im2Col.accumulate(col, batch: batch, geometry: g, into: yp.baseAddress!)
            if let bias {
                bias.withUnsafeBufferPointer { bp in
                    let plane = g.inputArea
                    for b in 0..<batch {
                        for c in 0..<g.channels {
                            let d = yp.baseAddress! + (b * g.channels + c) * plane
                            let v = bp[c]
                            for i in 0..<plane { d[i] += v }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The pullback of ``transposedForward(_:weight:bias:geometry:)``.
    public static func transposedBackward(
        _ x: Tensor, weight: Tensor, outputGradient dy: Tensor, geometry g: ConvGeometry,
        wantInput: Bool = true, wantParameters: Bool
    ) -> (input: Tensor?, weight: Tensor?, bias: Tensor?) {
        let batch = x.shape[0], inC = x.shape[1]
        let area = g.outputArea, rows = g.columnRows
        let scratch = Scratch.shared
        let col = scratch.buffer(0, count: rows * batch * area)
        dy.withUnsafeBufferPointer { p in Im2Col.lower(p.baseAddress!, batch: batch, geometry: g, into: col) }
        var dx: Tensor? = nil
        if wantInput {
            let dxc = scratch.buffer(1, count: inC * batch * area)
            weight.withUnsafeBufferPointer { wp in
                BLAS.gemm(m: inC, n: batch * area, k: rows, a: wp.baseAddress!, b: col, c: dxc)
            }
            var t = Tensor(uninitializedShape: x.shape)
            t.withUnsafeMutableBufferPointer { p in
                ChannelMajor.toBatchMajor(dxc, batch: batch, channels: inC, area: area, into: p.baseAddress!)
            }
            dx = t
        }
        guard wantParameters else { return (dx, nil, nil) }
        let xc = scratch.buffer(1, count: inC * batch * area)
        x.withUnsafeBufferPointer { p in
            ChannelMajor.fromBatchMajor(p.baseAddress!, batch: batch, channels: inC, area: area, into: xc)
        }
        var dw = Tensor(shape: weight.shape)
        dw.withUnsafeMutableBufferPointer { p in
            BLAS.gemm(transB: true, m: inC, n: rows, k: batch * area, a: xc, b: col, c: p.baseAddress!)
        }
        var db = Tensor(shape: [g.channels])
        db.withUnsafeMutableBufferPointer { p in
            dy.withUnsafeBufferPointer { d in
                let plane = g.inputArea
                for b in 0..<batch {
                    for c in 0..<g.channels {
                        var s: Float = 0
                        let r = d.baseAddress! + (b * g.channels + c) * plane
                        for i in 0..<plane { s += r[i] }
                        p[c] += s
                    }
                }
            }
        }
        return (dx, dw, db)
    }
}
