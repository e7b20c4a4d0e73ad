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

/// Winograd F(2x2, 3x3) input transform of one row of `tiles` 4x4 tiles: tile t takes
/// columns 2t..2t+3 of the padded rows d0..d3 (each readable to 2*tiles + 18 floats) and
/// writes entry xi of (B^T d B) to out[xi * es + t], xi = 4i + j. Up to 7 tiles past the
/// end are written too (the caller's buffers have room). Additions only: identical bits
/// at any vector width.
void pf_winograd_input_tiles(const float *d0, const float *d1, const float *d2, const float *d3,
                             size_t tiles, float *out, size_t es);

/// Winograd F(2x2, 3x3) output transform of one row of `tiles` tiles: from the 16 planes
/// m[xi * es + t] (readable 7 tiles past the end), writes (A^T M A) + bias to columns
/// 0..width-1 of `upper` and, unless it is NULL, of `lower`.
void pf_winograd_output_tiles(const float *m, size_t es, size_t tiles, float bias,
                              float *upper, float *lower, size_t width);

/// Copies the image rows among padded rows first..<end of an image (h x w) with ph rows
/// and pw columns of padding into rows + r * width + pw. The padding itself is never
/// written: the caller zeroes the buffer once.
void pf_pad_rows(const float *image, size_t h, size_t w, size_t ph, size_t pw,
                 size_t first, size_t end, size_t width, float *rows);

/// 2x2, stride-2 max pooling of one row of `windows` windows over input rows r0 and r1
/// (the first maximum in scan order, a NaN winning): the maxima into out.
void pf_max_pool_pairs(const float *r0, const float *r1, size_t windows, float *out);

/// Its pullback: each window's gradient g[x] at its maximum in rows d0 and d1 (columns
/// 0..<2 * windows), zeros at the other three places.
void pf_max_pool_pairs_backward(const float *r0, const float *r1, const float *g, size_t windows,
                                float *d0, float *d1);

/// 1 when the kernels run 256-bit AVX (the CPU has it and it is allowed), else 0.
int pf_kernels_avx(void);

/// Allows (1, the default) or forbids (0) the 256-bit paths: for tests that compare them
/// with the 128-bit ones. Both give the same bits, so other callers are unaffected.
void pf_kernels_allow_avx(int allowed);

#endif
