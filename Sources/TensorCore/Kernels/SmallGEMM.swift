import CKernels

/// Products of one or two rows (a chain or two through a dense layer), which a BLAS call
/// serves badly: a batch-1 MLP layer is a few thousand multiply-adds and the call costs
/// about as much; a large layer's weight would be packed — copied in full through
/// OpenBLAS's buffer — at every call, where one pass over it suffices. Row-major, as
/// ``BLAS/gemm``. Neither path depends on the host's vector unit or BLAS core type.
enum SmallGEMM {
    /// Whether ``BLAS/gemm`` should use this path: one or two rows, A not transposed.
    @inline(__always)
    static func applies(m: Int, n: Int, k: Int, transA: Bool) -> Bool {
        !transA && m <= 2
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
