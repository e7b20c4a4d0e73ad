import CKernels

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

    /// C ← α·A·B + βC: each row of C accumulates rows of B scaled by A's entries (zero
    /// entries skipped — a ReLU's gradient is mostly zeros), blocks of columns held in
    /// registers across the whole sum; in C, to use 256-bit AVX where the CPU has it
    /// (with the same bits as the 128-bit path: multiplies and adds are never fused).
    @inline(__always)
    static func ab(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                   b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        pf_gemm_rows(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
}
