// Small row-major products (a chain or two through a dense layer), vectorised across the
// columns of C. Multiplies and adds stay separate (no FMA, no contraction) so that the
// 256-bit and 128-bit versions give identical bits: every element sees the same
// operations in the same order.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include <immintrin.h>

// NV vectors of C's columns held in registers across the whole sum over p: the broadcast
// of A's entry and the zero test are paid once per NV vectors.
#define PF_COLUMN_BLOCK(NV, VEC, WIDTH, ZERO, LOAD, STORE, SET1, ADD, MUL)                 \
    for (; j + (NV) * (WIDTH) <= n; j += (NV) * (WIDTH)) {                                \
        VEC acc[NV];                                                                      \
        for (int v = 0; v < (NV); v++)                                                    \
            acc[v] = beta != 0 ? MUL(SET1(beta), LOAD(row + j + v * (WIDTH))) : ZERO;     \
        for (size_t p = 0; p < k; p++) {                                                  \
            float s = ar[p];                                                              \
            if (s == 0) continue;                                                         \
            VEC f = SET1(alpha * s);                                                      \
            const float *br = b + p * ldb + j;                                            \
            for (int v = 0; v < (NV); v++)                                                \
                acc[v] = ADD(acc[v], MUL(f, LOAD(br + v * (WIDTH))));                     \
        }                                                                                 \
        for (int v = 0; v < (NV); v++) STORE(row + j + v * (WIDTH), acc[v]);              \
    }

#define PF_ROW_LOOP(VEC, WIDTH, ZERO, LOAD, STORE, SET1, ADD, MUL, TAIL)                 \
    for (size_t i = 0; i < m; i++) {                                                      \
        const float *ar = a + i * lda;                                                    \
        float *row = c + i * ldc;                                                         \
        size_t j = 0;                                                                     \
        PF_COLUMN_BLOCK(8, VEC, WIDTH, ZERO, LOAD, STORE, SET1, ADD, MUL)                 \
        PF_COLUMN_BLOCK(4, VEC, WIDTH, ZERO, LOAD, STORE, SET1, ADD, MUL)                 \
        PF_COLUMN_BLOCK(2, VEC, WIDTH, ZERO, LOAD, STORE, SET1, ADD, MUL)                 \
        PF_COLUMN_BLOCK(1, VEC, WIDTH, ZERO, LOAD, STORE, SET1, ADD, MUL)                 \
        TAIL                                                                              \
        for (; j < n; j++) {                                                              \
            float acc = beta != 0 ? beta * row[j] : 0.0f;                                 \
            for (size_t p = 0; p < k; p++) {                                              \
                float s = ar[p];                                                          \
                if (s == 0) continue;                                                     \
                float prod = (alpha * s) * b[p * ldb + j];                                \
                acc = acc + prod;                                                         \
            }                                                                             \
            row[j] = acc;                                                                 \
        }                                                                                 \
    }

/// Lanes where a > b, for 32-bit integers, with AVX1 only (no 256-bit integer compare):
/// the two 128-bit halves compared separately.
__attribute__((target("avx")))
static inline __m256i _mm256_cmpgt_epi32_avx1(__m256i a, __m256i b) {
    __m128i lo = _mm_cmpgt_epi32(_mm256_castsi256_si128(a), _mm256_castsi256_si128(b));
    __m128i hi = _mm_cmpgt_epi32(_mm256_extractf128_si256(a, 1), _mm256_extractf128_si256(b, 1));
    return _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

__attribute__((target("avx")))
static void gemm_rows_avx(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                          const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    // The last 1–7 columns through masked loads and stores (same operations per element).
    PF_ROW_LOOP(__m256, 8, _mm256_setzero_ps(), _mm256_loadu_ps, _mm256_storeu_ps,
                _mm256_set1_ps, _mm256_add_ps, _mm256_mul_ps,
        if (j < n) {
            __m256i mask = _mm256_cmpgt_epi32_avx1(_mm256_set1_epi32((int)(n - j)),
                                                   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 acc = beta != 0 ? _mm256_mul_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(row + j, mask))
                                   : _mm256_setzero_ps();
            for (size_t p = 0; p < k; p++) {
                float s = ar[p];
                if (s == 0) continue;
                acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(alpha * s),
                                                       _mm256_maskload_ps(b + p * ldb + j, mask)));
            }
            _mm256_maskstore_ps(row + j, mask, acc);
            j = n;
        })
}

static void gemm_rows_sse(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                          const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    PF_ROW_LOOP(__m128, 4, _mm_setzero_ps(), _mm_loadu_ps, _mm_storeu_ps,
                _mm_set1_ps, _mm_add_ps, _mm_mul_ps, )
}

static int cpu_has_avx = -1;
static int avx_allowed = 1;

int pf_kernels_avx(void) {
    if (cpu_has_avx < 0) {
        __builtin_cpu_init();
        cpu_has_avx = __builtin_cpu_supports("avx") ? 1 : 0;
    }
    return cpu_has_avx && avx_allowed;
}

void pf_kernels_allow_avx(int allowed) { avx_allowed = allowed; }

void pf_gemm_rows(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                  const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    pf_gemm_rows_using(1, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void pf_gemm_rows_using(int avx, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                        const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    if (avx && pf_kernels_avx())
        gemm_rows_avx(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_rows_sse(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
