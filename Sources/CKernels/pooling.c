// 2x2, stride-2 max pooling over rows of windows, forward and backward, with PyTorch's
// choice of maximum: the first in scan order, a NaN winning. Selection only (no
// arithmetic), 8 windows at a time with AVX where the CPU has it: identical results.
#include "ckernels.h"
#include <immintrin.h>

/// The scan-order index (0-3) of the window's maximum, NaN winning.
static inline int pair_argmax(float v0, float v1, float v2, float v3) {
    if (v0 != v0) return 0;
    float best = v0;
    int k = 0;
    if (v1 > best || v1 != v1) { best = v1; k = 1; if (v1 != v1) return 1; }
    if (v2 > best || v2 != v2) { best = v2; k = 2; if (v2 != v2) return 2; }
    if (v3 > best || v3 != v3) k = 3;
    return k;
}

/// The even and odd lanes of the 16 floats at p, in order.
__attribute__((target("avx")))
static inline void split(const float *p, __m256 *even, __m256 *odd) {
    __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
    *even = _mm256_shuffle_ps(a, b, 0x88);
    *odd = _mm256_shuffle_ps(a, b, 0xDD);
}

/// Maxima of 8 windows and masks of which of the four each took.
__attribute__((target("avx")))
static inline __m256 argmax8(const float *r0, const float *r1, __m256 *t1, __m256 *t2, __m256 *t3) {
    __m256 v0, v1, v2, v3;
    split(r0, &v0, &v1);
    split(r1, &v2, &v3);
    __m256 best = v0;
    __m256 take1 = _mm256_and_ps(_mm256_cmp_ps(best, best, _CMP_ORD_Q),
                                 _mm256_or_ps(_mm256_cmp_ps(v1, best, _CMP_GT_OQ), _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)));
    best = _mm256_blendv_ps(best, v1, take1);
    __m256 take2 = _mm256_and_ps(_mm256_cmp_ps(best, best, _CMP_ORD_Q),
                                 _mm256_or_ps(_mm256_cmp_ps(v2, best, _CMP_GT_OQ), _mm256_cmp_ps(v2, v2, _CMP_UNORD_Q)));
    best = _mm256_blendv_ps(best, v2, take2);
    __m256 take3 = _mm256_and_ps(_mm256_cmp_ps(best, best, _CMP_ORD_Q),
                                 _mm256_or_ps(_mm256_cmp_ps(v3, best, _CMP_GT_OQ), _mm256_cmp_ps(v3, v3, _CMP_UNORD_Q)));
    best = _mm256_blendv_ps(best, v3, take3);
    // The last taker wins: index 3 if take3, else 2 if take2, else 1 if take1, else 0.
    *t3 = take3;
    *t2 = _mm256_andnot_ps(take3, take2);
    *t1 = _mm256_andnot_ps(_mm256_or_ps(take3, take2), take1);
    return best;
}

__attribute__((target("avx")))
static size_t forward_avx(const float *r0, const float *r1, size_t windows, float *out) {
    size_t x = 0;
    for (; x + 8 <= windows; x += 8) {
        __m256 t1, t2, t3;
        _mm256_storeu_ps(out + x, argmax8(r0 + 2 * x, r1 + 2 * x, &t1, &t2, &t3));
    }
    return x;
}

__attribute__((target("avx")))
static size_t backward_avx(const float *r0, const float *r1, const float *g, size_t windows,
                           float *d0, float *d1) {
    size_t x = 0;
    for (; x + 8 <= windows; x += 8) {
        __m256 t1, t2, t3;
        argmax8(r0 + 2 * x, r1 + 2 * x, &t1, &t2, &t3);
        __m256 v = _mm256_loadu_ps(g + x);
        __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        __m256 t0 = _mm256_andnot_ps(_mm256_or_ps(_mm256_or_ps(t1, t2), t3), all);
        __m256 g0 = _mm256_and_ps(t0, v), g1 = _mm256_and_ps(t1, v);
        __m256 g2 = _mm256_and_ps(t2, v), g3 = _mm256_and_ps(t3, v);
        // Interleave columns (window x: columns 2x, 2x + 1) back into the two rows.
        __m256 lo = _mm256_unpacklo_ps(g0, g1), hi = _mm256_unpackhi_ps(g0, g1);
        _mm256_storeu_ps(d0 + 2 * x, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(d0 + 2 * x + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
        lo = _mm256_unpacklo_ps(g2, g3); hi = _mm256_unpackhi_ps(g2, g3);
        _mm256_storeu_ps(d1 + 2 * x, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(d1 + 2 * x + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    return x;
}

void pf_max_pool_pairs(const float *r0, const float *r1, size_t windows, float *out) {
    size_t x = pf_kernels_avx() ? forward_avx(r0, r1, windows, out) : 0;
    for (; x < windows; x++) {
        int k = pair_argmax(r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]);
        out[x] = (k < 2 ? r0 : r1)[2 * x + (k & 1)];
    }
}

void pf_max_pool_pairs_backward(const float *r0, const float *r1, const float *g, size_t windows,
                                float *d0, float *d1) {
    size_t x = pf_kernels_avx() ? backward_avx(r0, r1, g, windows, d0, d1) : 0;
    for (; x < windows; x++) {
        int k = pair_argmax(r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]);
        d0[2 * x] = k == 0 ? g[x] : 0;
        d0[2 * x + 1] = k == 1 ? g[x] : 0;
        d1[2 * x] = k == 2 ? g[x] : 0;
        d1[2 * x + 1] = k == 3 ? g[x] : 0;
    }
}
