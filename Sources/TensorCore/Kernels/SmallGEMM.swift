/// Matrix products too small for a BLAS call to pay off (a batch-1 MLP layer is a few
/// thousand multiply-adds; the call costs about as much). Row-major, as ``BLAS/gemm``.
enum SmallGEMM {
    /// Whether ``BLAS/gemm`` should use this path: one or two rows (a chain or two), small.
    @inline(__always)
    static func applies(m: Int, n: Int, k: Int, transA: Bool) -> Bool {
        !transA && m <= 2 && m * n * k <= 32_768
    }

    /// C ← α·A·Bᵀ + βC: each element a dot product of two contiguous rows (SIMD8).
    static func abt(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                    b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            let ar = UnsafeRawPointer(a + i * lda)
            for j in 0..<n {
                let br = UnsafeRawPointer(b + j * ldb)
                var acc = SIMD8<Float>()
                var p = 0
                while p + 8 <= k {
                    acc += ar.loadUnaligned(fromByteOffset: 4 * p, as: SIMD8<Float>.self)
                        * br.loadUnaligned(fromByteOffset: 4 * p, as: SIMD8<Float>.self)
                    p += 8
                }
                var s = acc.sum()
                while p < k { s += a[i * lda + p] * b[j * ldb + p]; p += 1 }
                let out = c + i * ldc + j
                out.pointee = alpha * s + (beta == 0 ? 0 : beta * out.pointee)
            }
        }
    }

    /// C ← α·A·B + βC: each row of C accumulates rows of B scaled by A's entries
    /// (zero entries skipped — a ReLU's gradient is mostly zeros), 16 columns at a time
    /// held in registers across the whole sum, then 4, then one.
    static func ab(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                   b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            let row = c + i * ldc, ar = a + i * lda
            var j = 0
            while j + 16 <= n {
                block(SIMD16<Float>.self, row + j, k: k, alpha: alpha, ar, b + j, ldb: ldb, beta: beta)
                j += 16
            }
            while j + 4 <= n {
                block(SIMD4<Float>.self, row + j, k: k, alpha: alpha, ar, b + j, ldb: ldb, beta: beta)
                j += 4
            }
            while j < n {
                var acc = beta == 0 ? 0 : beta * row[j]
                for p in 0..<k where ar[p] != 0 { acc += alpha * ar[p] * b[p * ldb + j] }
                row[j] = acc
                j += 1
            }
        }
    }

    /// One block of a row of C (width of `V`): β·C + Σ_p (α·a_p)·B[p, block].
    @inline(__always)
    static func block<V: SIMD>(_: V.Type, _ out: UnsafeMutablePointer<Float>, k: Int, alpha: Float,
                               _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, ldb: Int, beta: Float)
        where V.Scalar == Float
    {
        var acc = beta == 0 ? V() : beta * UnsafeRawPointer(out).loadUnaligned(as: V.self)
        var p = 0
        while p < k {
            let s = a[p]
            if s != 0 { acc += (alpha * s) * UnsafeRawPointer(b + p &* ldb).loadUnaligned(as: V.self) }
            p &+= 1
        }
        UnsafeMutableRawPointer(out).storeBytes(of: acc, as: V.self)
    }
}
