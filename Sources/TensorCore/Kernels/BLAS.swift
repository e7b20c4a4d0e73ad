import COpenBLAS

/// Thin, typed access to OpenBLAS: row-major SGEMM and the thread setting.
///
/// Workers run OpenBLAS single-threaded (parallelism is across processes and chains);
/// training may raise the thread count. Results are bit-identical for a fixed build,
/// core type and thread count, which ``BLAS/coreName`` and ``BLAS/threads`` record.
public enum BLAS {
    /// The OpenBLAS kernel family chosen for this CPU (e.g. "Haswell", "Zen").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The number of threads OpenBLAS uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of threads OpenBLAS uses.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// C ← alpha · op(A) · op(B) + beta · C, all row-major. Products of one or two rows (a
    /// chain or two through a dense layer) run in ``SmallGEMM`` instead of a BLAS call.
    ///
    /// - Parameters:
    ///   - transA, transB: whether A (m×k, stored k×m when transposed) and B (k×n,
    ///     stored n×k when transposed) are transposed.
    ///   - lda, ldb, ldc: row strides; default to the packed widths.
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 {
                for i in 0..<m { (c + i * (ldc ?? n)).initialize(repeating: 0, count: n) }
            } else if beta != 1 {
                for i in 0..<m { for j in 0..<n { c[i * (ldc ?? n) + j] *= beta } }
            }
            return
        }
        if SmallGEMM.applies(m: m, n: n, k: k, transA: transA) {
            let (la, lb, lc) = (lda ?? k, ldb ?? (transB ? k : n), ldc ?? n)
            if transB {
                SmallGEMM.abt(m: m, n: n, k: k, alpha: alpha, a: a, lda: la, b: b, ldb: lb, beta: beta, c: c, ldc: lc)
            } else {
                SmallGEMM.ab(m: m, n: n, k: k, alpha: alpha, a: a, lda: la, b: b, ldb: lb, beta: beta, c: c, ldc: lc)
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? (transA ? m : k)),
            b, Int32(ldb ?? (transB ? k : n)),
            beta, c, Int32(ldc ?? n))
    }
}
