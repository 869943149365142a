// Float32 distance kernels for AVX2 with FMA: four 8-lane accumulators over 32 floats per step, then
// 8 at a time, then a masked load for the last 1-7 (vmaskmovps reads nothing past the mask).
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "float_internal.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/// A load of the first `r` (0 < r < 8) floats of p, zeros in the other lanes.
INLINE AVX2 __m256 tail_load(const float *p, size_t r) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), lane));
}

INLINE AVX2 float hsum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/// The four sums of a, b, c and d, stored to out[0..3].
INLINE AVX2 void hsum4(__m256 a, __m256 b, __m256 c, __m256 d, float *out) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
}

INLINE AVX2 __m256 load_b(const float *b, __m256 s, int scaled) {
    __m256 v = _mm256_loadu_ps(b);
    return scaled ? _mm256_mul_ps(v, s) : v;
}

INLINE AVX2 float dot_impl(const float *a, const float *b, float scale, int scaled, size_t n) {
    const __m256 s = _mm256_set1_ps(scale);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_b(b + i, s, scaled), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_b(b + i + 8, s, scaled), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), load_b(b + i + 16, s, scaled), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), load_b(b + i + 24, s, scaled), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_b(b + i, s, scaled), s0);
    if (i < n) {
        __m256 bv = tail_load(b + i, n - i);
        s1 = _mm256_fmadd_ps(tail_load(a + i, n - i), scaled ? _mm256_mul_ps(bv, s) : bv, s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static AVX2 float avx2_dot(const float *a, const float *b, size_t n) { return dot_impl(a, b, 1, 0, n); }
static AVX2 float avx2_dot_scaled(const float *a, const float *b, float s, size_t n) { return dot_impl(a, b, s, 1, n); }

static AVX2 float avx2_l2sqr(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0); s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2); s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(tail_load(a + i, n - i), tail_load(b + i, n - i));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/// Four vectors against one query, two accumulators each over 16 floats per step. `L2` picks
/// (q - x)^2 over q * x.
INLINE AVX2 void four_impl(const float *q, const float *x0, const float *x1, const float *x2, const float *x3,
                           size_t n, float *out, int L2) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
#define TERM(acc, qv, p) do { __m256 xv = (p); \
        if (L2) { __m256 t = _mm256_sub_ps(qv, xv); acc = _mm256_fmadd_ps(t, t, acc); } \
        else acc = _mm256_fmadd_ps(qv, xv, acc); } while (0)
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 q0 = _mm256_loadu_ps(q + i), q1 = _mm256_loadu_ps(q + i + 8);
        TERM(a0, q0, _mm256_loadu_ps(x0 + i)); TERM(b0, q0, _mm256_loadu_ps(x1 + i));
        TERM(c0, q0, _mm256_loadu_ps(x2 + i)); TERM(d0, q0, _mm256_loadu_ps(x3 + i));
        TERM(a1, q1, _mm256_loadu_ps(x0 + i + 8)); TERM(b1, q1, _mm256_loadu_ps(x1 + i + 8));
        TERM(c1, q1, _mm256_loadu_ps(x2 + i + 8)); TERM(d1, q1, _mm256_loadu_ps(x3 + i + 8));
    }
    if (i + 8 <= n) {
        __m256 q0 = _mm256_loadu_ps(q + i);
        TERM(a0, q0, _mm256_loadu_ps(x0 + i)); TERM(b0, q0, _mm256_loadu_ps(x1 + i));
        TERM(c0, q0, _mm256_loadu_ps(x2 + i)); TERM(d0, q0, _mm256_loadu_ps(x3 + i));
        i += 8;
    }
    if (i < n) {
        size_t r = n - i;
        __m256 q1 = tail_load(q + i, r);
        TERM(a1, q1, tail_load(x0 + i, r)); TERM(b1, q1, tail_load(x1 + i, r));
        TERM(c1, q1, tail_load(x2 + i, r)); TERM(d1, q1, tail_load(x3 + i, r));
    }
#undef TERM
    hsum4(_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1), _mm256_add_ps(c0, c1), _mm256_add_ps(d0, d1), out);
}

static AVX2 void avx2_dot4(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out) {
    four_impl(q, x0, x1, x2, x3, n, out, 0);
}
static AVX2 void avx2_l2sqr4(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out) {
    four_impl(q, x0, x1, x2, x3, n, out, 1);
}

/// 64 centroids per pass in eight accumulators (enough independent FMAs to hide their latency).
static AVX2 void avx2_pq_ip_table(const float *q, const float *ct, size_t m, size_t dsub, float *out) {
    for (size_t j = 0; j < m; j++) {
        for (int c = 0; c < 256; c += 64) {
            __m256 acc[8];
            for (int p = 0; p < 8; p++) acc[p] = _mm256_setzero_ps();
            for (size_t k = 0; k < dsub; k++) {
                __m256 qv = _mm256_set1_ps(q[j * dsub + k]);
                const float *row = ct + (j * dsub + k) * 256 + c;
                for (int p = 0; p < 8; p++) acc[p] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(row + 8 * p), acc[p]);
            }
            for (int p = 0; p < 8; p++) _mm256_storeu_ps(out + j * 256 + c + 8 * p, acc[p]);
        }
    }
}

const qk_float_ops qk_float_avx2 = {
    .simd = QK_SIMD_AVX2, .name = "avx2",
    .dot = avx2_dot, .l2sqr = avx2_l2sqr, .dot_scaled = avx2_dot_scaled,
    .dot4 = avx2_dot4, .l2sqr4 = avx2_l2sqr4, .pq_ip_table = avx2_pq_ip_table,
};
#endif
