import CKernels

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

    public static func maxForward(_ x: Tensor, window: Window) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if isPair(window) {
            var y = Tensor(uninitializedShape: [b, c, h / 2, w / 2])
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    forEachPairRow(xp.baseAddress!, planes: b * c, h: h, w: w) { r0, r1, out, count in
                        pf_max_pool_pairs(r0, r1, count, yp.baseAddress! + out)
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
            // Every window writes its four places; an odd last row or column is zeroed.
            var dx = Tensor(uninitializedShape: x.shape)
            x.withUnsafeBufferPointer { xp in
                dy.withUnsafeBufferPointer { gp in
                    dx.withUnsafeMutableBufferPointer { dp in
                        let x0 = xp.baseAddress!, d = dp.baseAddress!
                        forEachPairRow(x0, planes: b * c, h: h, w: w) { r0, r1, out, count in
                            let t0 = d + (r0 - x0), t1 = d + (r1 - x0)
                            pf_max_pool_pairs_backward(r0, r1, gp.baseAddress! + out, count, t0, t1)
                            if w % 2 == 1 { t0[w - 1] = 0; t1[w - 1] = 0 }
                        }
                        if h % 2 == 1 {
                            for p in 0..<(b * c) { (d + (p * h + h - 1) * w).initialize(repeating: 0, count: w) }
                        }
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
