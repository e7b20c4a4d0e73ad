/// 2-D max and average pooling over NCHW tensors with PyTorch's semantics
/// (`ceil_mode=False`; average pooling counts padding, `count_include_pad=True`;
/// max pooling pads with −∞ and takes the first maximum in scan order).
public enum Pooling {
    public struct Window: Hashable, Sendable {
        public var kernel: (h: Int, w: Int)
        public var stride: (h: Int, w: Int)
        public var padding: (h: Int, w: Int)

        public init(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) {
            self.kernel = (kernel.0, kernel.1)
            self.stride = (stride.0, stride.1)
            self.padding = (padding.0, padding.1)
        }

        public func outputExtent(_ h: Int, _ w: Int) -> (Int, Int) {
            ((h + 2 * padding.h - kernel.h) / stride.h + 1, (w + 2 * padding.w - kernel.w) / stride.w + 1)
        }

        public static func == (a: Window, b: Window) -> Bool {
            a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding
        }
        public func hash(into h: inout Hasher) {
            h.combine(kernel.h); h.combine(kernel.w); h.combine(stride.h)
            h.combine(stride.w); h.combine(padding.h); h.combine(padding.w)
        }
    }

    /// Calls `body(planeIndex, outIndex, inIndex)` for the arg-max of every window.
    private static func forEachArgmax(
        _ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int, window: Window,
        _ body: (Int, Int, Int) -> Void
    ) {
        let (oh, ow) = window.outputExtent(h, w)
        for p in 0..<planes {
            let plane = x + p * h * w
            for y in 0..<oh {
                let y0 = y * window.stride.h - window.padding.h
                for xo in 0..<ow {
                    let x0 = xo * window.stride.w - window.padding.w
                    var best = -Float.infinity, bestIndex = -1
                    for ky in max(0, -y0)..<min(window.kernel.h, h - y0) {
                        for kx in max(0, -x0)..<min(window.kernel.w, w - x0) {
                            let i = (y0 + ky) * w + x0 + kx
                            let v = plane[i]
                            if v > best || v.isNaN || bestIndex < 0 {
                                best = v; bestIndex = i
                                if v.isNaN { break }
                            }
                        }
                    }
                    body(p, y * ow + xo, bestIndex)
                }
            }
        }
    }

    /// Whether the window is the common 2×2, stride-2, unpadded one (a fast path).
    static func isPair(_ w: Window) -> Bool {
        w.kernel == (2, 2) && w.stride == (2, 2) && w.padding == (0, 0)
    }

    /// The index (0–3 in scan order) of the first maximum of a 2×2 window, NaN winning,
    /// as the general path chooses it.
    @inline(__always)
    static func pairArgmax(_ v0: Float, _ v1: Float, _ v2: Float, _ v3: Float) -> Int {
        if v0.isNaN { return 0 }
        var best = v0, k = 0
        if v1 > best || v1.isNaN { best = v1; k = 1; if v1.isNaN { return 1 } }
        if v2 > best || v2.isNaN { best = v2; k = 2; if v2.isNaN { return 2 } }
        if v3 > best || v3.isNaN { k = 3 }
        return k
    }

    /// ``pairArgmax(_:_:_:_:)`` for 8 adjacent windows: the rows' 16 values start at `r0`
    /// and `r1`; returns the maxima and their indices 0–3, with the same choice on ties and NaN.
    @inline(__always)
    static func pairArgmax8(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>) -> (SIMD8<Float>, SIMD8<Int32>) {
        let top = UnsafeRawPointer(r0).loadUnaligned(as: SIMD16<Float>.self)
        let bottom = UnsafeRawPointer(r1).loadUnaligned(as: SIMD16<Float>.self)
        var best = top.evenHalf, k = SIMD8<Int32>()
        func consider(_ candidate: SIMD8<Float>, _ index: Int32) {
            // Taken when larger or NaN, unless a NaN was already taken.
            let take = (best .== best) .& ((candidate .> best) .| (candidate .!= candidate))
            best.replace(with: candidate, where: take)
            k.replace(with: index, where: take)
        }
        consider(top.oddHalf, 1)
        consider(bottom.evenHalf, 2)
        consider(bottom.oddHalf, 3)
        return (best, k)
    }

    /// Calls `body(row0, row1, outOffset, count)` for each output row of 2×2 stride-2
    /// pooling: the two input rows, where the row's `count` outputs start.
    @inline(__always)
    static func forEachPairRow(_ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int,
                               _ body: (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int) -> Void) {
        let (oh, ow) = (h / 2, w / 2)
        for p in 0..<planes {
            for y in 0..<oh {
                let r0 = x + p * h * w + 2 * y * w
                body(r0, r0 + w, (p * oh + y) * ow, ow)
            }
        }
    }

    /// 2×2 stride-2 pooling over every plane: `body(planeOut, inIndexOfMax)`.
    @inline(__always)
    static func forEachPairArgmax(_ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int,
                                  _ body: (Int, Int) -> Void) {
        let (oh, ow) = (h / 2, w / 2)
        for p in 0..<planes {
            let plane = x + p * h * w
            for y in 0..<oh {
                let r0 = plane + 2 * y * w, r1 = r0 + w
                for xo in 0..<ow {
                    let k = pairArgmax(r0[2 * xo], r0[2 * xo + 1], r1[2 * xo], r1[2 * xo + 1])
                    body(p * oh * ow + y * ow + xo, p * h * w + (2 * y + k / 2) * w + 2 * xo + k % 2)
                }
            }
        }
    }

    public static func maxForward(_ x: Tensor, window: Window) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if isPair(window) {
            var y = Tensor(uninitializedShape: [b, c, h / 2, w / 2])
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    forEachPairRow(xp.baseAddress!, planes: b * c, h: h, w: w) { r0, r1, out, count in
                        let d = yp.baseAddress! + out
                        var xo = 0
                        while xo + 8 <= count {
                            let (best, _) = pairArgmax8(r0 + 2 * xo, r1 + 2 * xo)
                            UnsafeMutableRawPointer(d + xo).storeBytes(of: best, as: SIMD8<Float>.self)
                            xo += 8
                        }
                        for x in xo..<count {
                            let k = pairArgmax(r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1])
                            d[x] = (k < 2 ? r0 : r1)[2 * x + k % 2]
                        }
                    }
                }
            }
            return y
        }
        let (oh, ow) = window.outputExtent(h, w)
        var y = Tensor(shape: [b, c, oh, ow])
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                forEachArgmax(xp.baseAddress!, planes: b * c, h: h, w: w, window: window) { p, o, i in
                    yp[p * oh * ow + o] = i < 0 ? -.infinity : xp[p * h * w + i]
                }
            }
        }
        return y
    }

    public static func maxBackward(_ x: Tensor, outputGradient dy: Tensor, window: Window) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if isPair(window) {
            var dx = Tensor(shape: x.shape)
            x.withUnsafeBufferPointer { xp in
                dy.withUnsafeBufferPointer { gp in
                    dx.withUnsafeMutableBufferPointer { dp in
                        forEachPairArgmax(xp.baseAddress!, planes: b * c, h: h, w: w) { o, i in dp[i] += gp[o] }
                    }
                }
            }
            return dx
        }
        let (oh, ow) = window.outputExtent(h, w)
        var dx = Tensor(shape: x.shape)
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    forEachArgmax(xp.baseAddress!, planes: b * c, h: h, w: w, window: window) { p, o, i in
                        if i >= 0 { dp[p * h * w + i] += gp[p * oh * ow + o] }
                    }
                }
            }
        }
        return dx
    }

    public static func averageForward(_ x: Tensor, window: Window) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = window.outputExtent(h, w)
        var y = Tensor(shape: [b, c, oh, ow])
        let divisor = Float(window.kernel.h * window.kernel.w)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for p in 0..<(b * c) {
                    let plane = xp.baseAddress! + p * h * w
                    for yo in 0..<oh {
                        let y0 = yo * window.stride.h - window.padding.h
                        for xo in 0..<ow {
                            let x0 = xo * window.stride.w - window.padding.w
                            var s: Float = 0
                            for ky in max(0, -y0)..<min(window.kernel.h, h - y0) {
                                for kx in max(0, -x0)..<min(window.kernel.w, w - x0) {
                                    s += plane[(y0 + ky) * w + x0 + kx]
                                }
                            }
                            yp[p * oh * ow + yo * ow + xo] = s / divisor
                        }
                    }
                }
            }
        }
        return y
    }

    public static func averageBackward(inputShape: [Int], outputGradient dy: Tensor, window: Window) -> Tensor {
        let (b, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (oh, ow) = window.outputExtent(h, w)
        var dx = Tensor(shape: inputShape)
        let divisor = Float(window.kernel.h * window.kernel.w)
        dy.withUnsafeBufferPointer { gp in
            dx.withUnsafeMutableBufferPointer { dp in
                for p in 0..<(b * c) {
                    let plane = dp.baseAddress! + p * h * w
                    for yo in 0..<oh {
                        let y0 = yo * window.stride.h - window.padding.h
                        for xo in 0..<ow {
                            let x0 = xo * window.stride.w - window.padding.w
                            let g = gp[p * oh * ow + yo * ow + xo] / divisor
                            for ky in max(0, -y0)..<min(window.kernel.h, h - y0) {
                                for kx in max(0, -x0)..<min(window.kernel.w, w - x0) {
                                    plane[(y0 + ky) * w + x0 + kx] += g
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}
