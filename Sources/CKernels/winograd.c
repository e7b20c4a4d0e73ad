// Winograd F(2x2, 3x3) tile transforms (see TensorCore's Winograd3x3), vectorised across
// the tiles of a row: 8 at a time with 256-bit AVX where the CPU has it, else 4. They
// only add and subtract, so every width gives identical bits.
#include "ckernels.h"
#include <immintrin.h>
#include <string.h>

// ---- 256-bit: 8 tiles ------------------------------------------------------------------

/// Stores the first n (1...7) lanes of v at p: 4, 2 and 1 at a time (masked stores are
/// microcoded and slow on some cores).
__attribute__((target("avx")))
static inline void store_first(float *p, __m256 v, size_t n) {
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) { _mm_storeu_ps(p, part); p += 4; n -= 4; part = _mm256_extractf128_ps(v, 1); }
    if (n >= 2) { _mm_storel_pi((__m64 *)p, part); p += 2; n -= 2; part = _mm_movehl_ps(part, part); }
    if (n >= 1) _mm_store_ss(p, part);
}

/// Even and odd lanes of the 16 floats at p, in order.
__attribute__((target("avx")))
static inline void split8(const float *p, __m256 *even, __m256 *odd) {
    __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
    *even = _mm256_shuffle_ps(a, b, 0x88);
    *odd = _mm256_shuffle_ps(a, b, 0xDD);
}

/// One row of B^T d (columns 0..3 as c0..c3) times B, stored at out, out + es, ...
__attribute__((target("avx")))
static inline void row8(__m256 c0, __m256 c1, __m256 c2, __m256 c3, float *out, size_t es) {
    _mm256_storeu_ps(out, _mm256_sub_ps(c0, c2));
    _mm256_storeu_ps(out + es, _mm256_add_ps(c1, c2));
    _mm256_storeu_ps(out + 2 * es, _mm256_sub_ps(c2, c1));
    _mm256_storeu_ps(out + 3 * es, _mm256_sub_ps(c1, c3));
}

__attribute__((target("avx")))
static void input_avx(const float *d0, const float *d1, const float *d2, const float *d3,
                      size_t tiles, float *out, size_t es) {
    for (size_t t = 0; t < tiles; t += 8) {
        __m256 a0, b0, a1, b1, a2, b2, a3, b3, e0, f0, e1, f1, e2, f2, e3, f3;
        // Columns 2t + j: j = 0, 1 from one split, j = 2, 3 from the split two further.
        split8(d0 + 2 * t, &a0, &b0); split8(d0 + 2 * t + 2, &e0, &f0);
        split8(d1 + 2 * t, &a1, &b1); split8(d1 + 2 * t + 2, &e1, &f1);
        split8(d2 + 2 * t, &a2, &b2); split8(d2 + 2 * t + 2, &e2, &f2);
        split8(d3 + 2 * t, &a3, &b3); split8(d3 + 2 * t + 2, &e3, &f3);
        float *o = out + t;
        row8(_mm256_sub_ps(a0, a2), _mm256_sub_ps(b0, b2), _mm256_sub_ps(e0, e2), _mm256_sub_ps(f0, f2), o, es);
        row8(_mm256_add_ps(a1, a2), _mm256_add_ps(b1, b2), _mm256_add_ps(e1, e2), _mm256_add_ps(f1, f2), o + 4 * es, es);
        row8(_mm256_sub_ps(a2, a1), _mm256_sub_ps(b2, b1), _mm256_sub_ps(e2, e1), _mm256_sub_ps(f2, f1), o + 8 * es, es);
        row8(_mm256_sub_ps(a1, a3), _mm256_sub_ps(b1, b3), _mm256_sub_ps(e1, e3), _mm256_sub_ps(f1, f3), o + 12 * es, es);
    }
}

__attribute__((target("avx")))
static void output_avx(const float *m, size_t es, size_t tiles, float bias, float *upper, float *lower,
                       size_t width) {
    __m256 add = _mm256_set1_ps(bias);
    for (size_t t = 0; t < tiles; t += 8) {
        const float *q = m + t;
#define M(k) _mm256_loadu_ps(q + (k) * es)
        __m256 m10 = M(4), m11 = M(5), m12 = M(6), m13 = M(7);
        __m256 m20 = M(8), m21 = M(9), m22 = M(10), m23 = M(11);
        // A^T M: rows combined per column j.
        __m256 s00 = _mm256_add_ps(_mm256_add_ps(M(0), m10), m20), s01 = _mm256_add_ps(_mm256_add_ps(M(1), m11), m21);
        __m256 s02 = _mm256_add_ps(_mm256_add_ps(M(2), m12), m22), s03 = _mm256_add_ps(_mm256_add_ps(M(3), m13), m23);
        __m256 s10 = _mm256_sub_ps(_mm256_sub_ps(m10, m20), M(12)), s11 = _mm256_sub_ps(_mm256_sub_ps(m11, m21), M(13));
        __m256 s12 = _mm256_sub_ps(_mm256_sub_ps(m12, m22), M(14)), s13 = _mm256_sub_ps(_mm256_sub_ps(m13, m23), M(15));
#undef M
        // Times A: output columns 0 and 1 of each tile, plus the bias.
        __m256 u0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s00, s01), s02), add);
        __m256 u1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s01, s02), s03), add);
        __m256 l0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s10, s11), s12), add);
        __m256 l1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s11, s12), s13), add);
        // Interleave to 16 consecutive outputs.
        __m256 ulo = _mm256_unpacklo_ps(u0, u1), uhi = _mm256_unpackhi_ps(u0, u1);
        __m256 llo = _mm256_unpacklo_ps(l0, l1), lhi = _mm256_unpackhi_ps(l0, l1);
        __m256 ua = _mm256_permute2f128_ps(ulo, uhi, 0x20), ub = _mm256_permute2f128_ps(ulo, uhi, 0x31);
        __m256 la = _mm256_permute2f128_ps(llo, lhi, 0x20), lb = _mm256_permute2f128_ps(llo, lhi, 0x31);
        size_t x = 2 * t;
        if (x + 16 <= width) {
            _mm256_storeu_ps(upper + x, ua); _mm256_storeu_ps(upper + x + 8, ub);
            if (lower) { _mm256_storeu_ps(lower + x, la); _mm256_storeu_ps(lower + x + 8, lb); }
        } else {
            // The row's last 1–15 outputs: masked stores.
            size_t r = width - x;
            __m256 first = ua, second = ub, firstLower = la, secondLower = lb;
            float *at = upper + x, *atLower = lower ? lower + x : NULL;
            if (r >= 8) {
                _mm256_storeu_ps(at, ua);
                if (atLower) _mm256_storeu_ps(atLower, la);
                first = second; firstLower = secondLower;
                at += 8; if (atLower) atLower += 8;
                r -= 8;
            }
            if (r > 0) {
                store_first(at, first, r);
                if (atLower) store_first(atLower, firstLower, r);
            }
        }
    }
}

// ---- 128-bit: 4 tiles ------------------------------------------------------------------

static inline void split4(const float *p, __m128 *even, __m128 *odd) {
    __m128 lo = _mm_loadu_ps(p), hi = _mm_loadu_ps(p + 4);
    *even = _mm_shuffle_ps(lo, hi, 0x88);
    *odd = _mm_shuffle_ps(lo, hi, 0xDD);
}

static inline void row4(__m128 c0, __m128 c1, __m128 c2, __m128 c3, float *out, size_t es) {
    _mm_storeu_ps(out, _mm_sub_ps(c0, c2));
    _mm_storeu_ps(out + es, _mm_add_ps(c1, c2));
    _mm_storeu_ps(out + 2 * es, _mm_sub_ps(c2, c1));
    _mm_storeu_ps(out + 3 * es, _mm_sub_ps(c1, c3));
}

static void input_sse(const float *d0, const float *d1, const float *d2, const float *d3,
                      size_t tiles, float *out, size_t es) {
    for (size_t t = 0; t < tiles; t += 4) {
        __m128 a0, b0, a1, b1, a2, b2, a3, b3, e0, f0, e1, f1, e2, f2, e3, f3;
        split4(d0 + 2 * t, &a0, &b0); split4(d0 + 2 * t + 2, &e0, &f0);
        split4(d1 + 2 * t, &a1, &b1); split4(d1 + 2 * t + 2, &e1, &f1);
        split4(d2 + 2 * t, &a2, &b2); split4(d2 + 2 * t + 2, &e2, &f2);
        split4(d3 + 2 * t, &a3, &b3); split4(d3 + 2 * t + 2, &e3, &f3);
        float *o = out + t;
        row4(_mm_sub_ps(a0, a2), _mm_sub_ps(b0, b2), _mm_sub_ps(e0, e2), _mm_sub_ps(f0, f2), o, es);
        row4(_mm_add_ps(a1, a2), _mm_add_ps(b1, b2), _mm_add_ps(e1, e2), _mm_add_ps(f1, f2), o + 4 * es, es);
        row4(_mm_sub_ps(a2, a1), _mm_sub_ps(b2, b1), _mm_sub_ps(e2, e1), _mm_sub_ps(f2, f1), o + 8 * es, es);
        row4(_mm_sub_ps(a1, a3), _mm_sub_ps(b1, b3), _mm_sub_ps(e1, e3), _mm_sub_ps(f1, f3), o + 12 * es, es);
    }
}

static void output_sse(const float *m, size_t es, size_t tiles, float bias, float *upper, float *lower,
                       size_t width) {
    __m128 add = _mm_set1_ps(bias);
    float spill[16];
    for (size_t t = 0; t < tiles; t += 4) {
        const float *q = m + t;
#define M(k) _mm_loadu_ps(q + (k) * es)
        __m128 m10 = M(4), m11 = M(5), m12 = M(6), m13 = M(7);
        __m128 m20 = M(8), m21 = M(9), m22 = M(10), m23 = M(11);
        __m128 s00 = _mm_add_ps(_mm_add_ps(M(0), m10), m20), s01 = _mm_add_ps(_mm_add_ps(M(1), m11), m21);
        __m128 s02 = _mm_add_ps(_mm_add_ps(M(2), m12), m22), s03 = _mm_add_ps(_mm_add_ps(M(3), m13), m23);
        __m128 s10 = _mm_sub_ps(_mm_sub_ps(m10, m20), M(12)), s11 = _mm_sub_ps(_mm_sub_ps(m11, m21), M(13));
        __m128 s12 = _mm_sub_ps(_mm_sub_ps(m12, m22), M(14)), s13 = _mm_sub_ps(_mm_sub_ps(m13, m23), M(15));
#undef M
        __m128 u0 = _mm_add_ps(_mm_add_ps(_mm_add_ps(s00, s01), s02), add);
        __m128 u1 = _mm_add_ps(_mm_sub_ps(_mm_sub_ps(s01, s02), s03), add);
        __m128 l0 = _mm_add_ps(_mm_add_ps(_mm_add_ps(s10, s11), s12), add);
        __m128 l1 = _mm_add_ps(_mm_sub_ps(_mm_sub_ps(s11, s12), s13), add);
        __m128 ua = _mm_unpacklo_ps(u0, u1), ub = _mm_unpackhi_ps(u0, u1);
        __m128 la = _mm_unpacklo_ps(l0, l1), lb = _mm_unpackhi_ps(l0, l1);
        size_t x = 2 * t;
        if (x + 8 <= width) {
            _mm_storeu_ps(upper + x, ua); _mm_storeu_ps(upper + x + 4, ub);
            if (lower) { _mm_storeu_ps(lower + x, la); _mm_storeu_ps(lower + x + 4, lb); }
        } else {
            _mm_storeu_ps(spill, ua); _mm_storeu_ps(spill + 4, ub);
            _mm_storeu_ps(spill + 8, la); _mm_storeu_ps(spill + 12, lb);
            memcpy(upper + x, spill, (width - x) * sizeof(float));
            if (lower) memcpy(lower + x, spill + 8, (width - x) * sizeof(float));
        }
    }
}

// ---- padded rows ------------------------------------------------------------------------

// Rows are short (tens of floats): an inline loop beats a memcpy call, so the compiler
// is told not to turn it into one.
__attribute__((no_builtin("memcpy")))
void pf_pad_rows(const float *image, size_t h, size_t w, size_t ph, size_t pw,
                 size_t first, size_t end, size_t width, float *rows) {
    for (size_t r = first; r < end; r++) {
        if (r < ph || r - ph >= h) continue;
        const float *src = image + (r - ph) * w;
        float *dst = rows + r * width + pw;
        for (size_t i = 0; i < w; i++) dst[i] = src[i];
    }
}

// ---- dispatch ------------------------------------------------------------------------

void pf_winograd_input_tiles(const float *d0, const float *d1, const float *d2, const float *d3,
                             size_t tiles, float *out, size_t es) {
    if (pf_kernels_avx()) input_avx(d0, d1, d2, d3, tiles, out, es);
    else input_sse(d0, d1, d2, d3, tiles, out, es);
}

void pf_winograd_output_tiles(const float *m, size_t es, size_t tiles, float bias,
                              float *upper, float *lower, size_t width) {
    if (pf_kernels_avx()) output_avx(m, es, tiles, bias, upper, lower, width);
    else output_sse(m, es, tiles, bias, upper, lower, width);
}
