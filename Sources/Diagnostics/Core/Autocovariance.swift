import Foundation
import Synchronization

/// Autocovariances of every lag for many chains at once, by FFT (Wiener–Khinchin):
/// acov[t] = (1/n) Σᵢ yᵢ yᵢ₊ₜ = IFFT(|FFT(y)|²)[t] / n with y zero-padded to a power of
/// two ≥ 2n. Two real chains share one complex transform (y₁ + i·y₂).
enum Autocovariance {
    /// The mean over chains of the autocovariance at every lag 0..<n, for centred chains
    /// stored row-major in `y` (m chains of n draws).
    static func meanOverChains(_ y: [Double], chains m: Int, draws n: Int) -> [Double] {
        var size = 1
        while size < 2 * n { size <<= 1 }
        let plan = FFTPlan.plan(size)
        var mean = [Double](repeating: 0, count: n)
        var re = [Double](repeating: 0, count: size), im = [Double](repeating: 0, count: size)
        var pr = [Double](repeating: 0, count: size), pi = [Double](repeating: 0, count: size)
        var c = 0
        while c < m {
            let pair = c + 1 < m
            for i in 0..<size { re[i] = 0; im[i] = 0 }
            for i in 0..<n { re[i] = y[c * n + i] }
            if pair { for i in 0..<n { im[i] = y[(c + 1) * n + i] } }
            plan.forward(&re, &im)
            // Power spectra of the two real inputs: X = (Z_k + conj Z_{-k})/2, Y = (Z_k − conj Z_{-k})/2i.
            for k in 0..<size {
                let j = (size - k) & (size - 1)
                let xr = (re[k] + re[j]) / 2, xi = (im[k] - im[j]) / 2
                let yr = (im[k] + im[j]) / 2, yi = (re[j] - re[k]) / 2
                pr[k] = xr * xr + xi * xi
                pi[k] = yr * yr + yi * yi
            }
            plan.inverse(&pr, &pi)
            for t in 0..<n {
                mean[t] += pr[t] / Double(n)
                if pair { mean[t] += pi[t] / Double(n) }
            }
            c += pair ? 2 : 1
        }
        for t in 0..<n { mean[t] /= Double(m) }
        return mean
    }
}

/// An in-place iterative radix-2 complex FFT of a fixed power-of-two size.
final class FFTPlan: Sendable {
    let size: Int
    let cosTable: [Double]
    let sinTable: [Double]
    let reversal: [Int]

    private static let cache = Mutex<[Int: FFTPlan]>([:])

    static func plan(_ size: Int) -> FFTPlan {
        if let p = cache.withLock({ $0[size] }) { return p }
        let p = FFTPlan(size: size)
        cache.withLock { $0[size] = p }
        return p
    }

    init(size: Int) {
        self.size = size
        cosTable = (0..<(size / 2)).map { cos(2 * Double.pi * Double($0) / Double(size)) }
        sinTable = (0..<(size / 2)).map { sin(2 * Double.pi * Double($0) / Double(size)) }
        var bits = 0
        while (1 << bits) < size { bits += 1 }
        reversal = (0..<size).map { i in
            var r = 0, v = i
            for _ in 0..<bits { r = (r << 1) | (v & 1); v >>= 1 }
            return r
        }
    }

    /// X_k = Σ x_j e^{−2πijk/N}.
    func forward(_ re: inout [Double], _ im: inout [Double]) { transform(&re, &im, sign: -1) }

    /// x_j = (1/N) Σ X_k e^{2πijk/N}.
    func inverse(_ re: inout [Double], _ im: inout [Double]) {
        transform(&re, &im, sign: 1)
        let s = 1 / Double(size)
        for i in 0..<size { re[i] *= s; im[i] *= s }
    }

    private func transform(_ re: inout [Double], _ im: inout [Double], sign: Double) {
        let n = size
        re.withUnsafeMutableBufferPointer { r in
            im.withUnsafeMutableBufferPointer { m in
                for i in 0..<n {
                    let j = reversal[i]
                    if j > i { r.swapAt(i, j); m.swapAt(i, j) }
                }
                cosTable.withUnsafeBufferPointer { ct in
                    sinTable.withUnsafeBufferPointer { st in
                        var length = 2
                        while length <= n {
                            let half = length / 2, step = n / length
                            var start = 0
                            while start < n {
                                for k in 0..<half {
                                    let wr = ct[k * step], wi = sign * st[k * step]
                                    let a = start + k, b = a + half
                                    let tr = r[b] * wr - m[b] * wi
                                    let ti = r[b] * wi + m[b] * wr
                                    r[b] = r[a] - tr; m[b] = m[a] - ti
                                    r[a] += tr; m[a] += ti
                                }
                                start += length
                            }
                            length <<= 1
                        }
                    }
                }
            }
        }
    }
}
