#ifndef PROBEFARM_CKERNELS_H
#define PROBEFARM_CKERNELS_H

#include <stddef.h>

/// C <- alpha * A * B + beta * C for row-major A (m x k, row stride lda), B (k x n, ldb)
/// and C (m x n, ldc). Each element is computed as
///   acc = (beta == 0 ? 0 : beta * c);  for p in 0..<k where a[p] != 0: acc = acc + (alpha * a[p]) * b[p]
/// with a separate multiply and add (never fused), so the result is the same to the bit
/// whatever vector width runs it. Runs 256-bit AVX where the CPU has it.
void pf_gemm_rows(size_t m, size_t n, size_t k, float alpha,
                  const float *a, size_t lda, const float *b, size_t ldb,
                  float beta, float *c, size_t ldc);

/// pf_gemm_rows with the 128-bit path (avx = 0) or, where the CPU has it, the 256-bit one.
void pf_gemm_rows_using(int avx, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb,
                        float beta, float *c, size_t ldc);

/// 1 when pf_gemm_rows runs 256-bit AVX on this CPU, else 0.
int pf_kernels_avx(void);

#endif
