// Float32 distance kernels for AVX-512F: four 16-lane accumulators over 64 floats per step, then 16 at
// a time, then one masked load for the last 1-15 (a masked load never touches the lanes it skips).
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "float_internal.h"

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

INLINE AVX512 __mmask16 tail_mask(size_t r) { return (__mmask16)((1u << r) - 1); }

/// The sum of v's upper and lower 256-bit halves (AVX-512F alone: no AVX-512DQ extract).
INLINE AVX512 __m256 fold(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/// The sum of v's lanes: halves folded 512 -> 256 -> 128 -> 32 (a fixed order).
INLINE AVX512 float hsum(__m512 v) {
    __m256 y = fold(v);
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/// The four sums of a, b, c and d, stored to out[0..3].
INLINE AVX512 void hsum4(__m512 a, __m512 b, __m512 c, __m512 d, float *out) {
    __m256 ab = _mm256_hadd_ps(fold(a), fold(b)), cd = _mm256_hadd_ps(fold(c), fold(d));
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
}

INLINE AVX512 __m512 load_b(const float *b, __m512 s, int scaled) {
    __m512 v = _mm512_loadu_ps(b);
    return scaled ? _mm512_mul_ps(v, s) : v;
}

INLINE AVX512 float dot_impl(const float *a, const float *b, float scale, int scaled, size_t n) {
    const __m512 s = _mm512_set1_ps(scale);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_b(b + i, s, scaled), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_b(b + i + 16, s, scaled), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), load_b(b + i + 32, s, scaled), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), load_b(b + i + 48, s, scaled), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_b(b + i, s, scaled), s0);
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 bv = _mm512_maskz_loadu_ps(k, b + i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), scaled ? _mm512_mul_ps(bv, s) : bv, s1);
    }
    return hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static AVX512 float avx512_dot(const float *a, const float *b, size_t n) { return dot_impl(a, b, 1, 0, n); }
static AVX512 float avx512_dot_scaled(const float *a, const float *b, float s, size_t n) { return dot_impl(a, b, s, 1, n); }

static AVX512 float avx512_l2sqr(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0); s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2); s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/// Four vectors against one query, two accumulators each over 32 floats per step. `L2` picks
/// (q - x)^2 over q * x.
INLINE AVX512 void four_impl(const float *q, const float *x0, const float *x1, const float *x2, const float *x3,
                             size_t n, float *out, int L2) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
#define TERM(acc, qv, p) do { __m512 xv = (p); \
        if (L2) { __m512 t = _mm512_sub_ps(qv, xv); acc = _mm512_fmadd_ps(t, t, acc); } \
        else acc = _mm512_fmadd_ps(qv, xv, acc); } while (0)
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
        TERM(a0, q0, _mm512_loadu_ps(x0 + i)); TERM(b0, q0, _mm512_loadu_ps(x1 + i));
        TERM(c0, q0, _mm512_loadu_ps(x2 + i)); TERM(d0, q0, _mm512_loadu_ps(x3 + i));
        TERM(a1, q1, _mm512_loadu_ps(x0 + i + 16)); TERM(b1, q1, _mm512_loadu_ps(x1 + i + 16));
        TERM(c1, q1, _mm512_loadu_ps(x2 + i + 16)); TERM(d1, q1, _mm512_loadu_ps(x3 + i + 16));
    }
    if (i + 16 <= n) {
        __m512 q0 = _mm512_loadu_ps(q + i);
        TERM(a0, q0, _mm512_loadu_ps(x0 + i)); TERM(b0, q0, _mm512_loadu_ps(x1 + i));
        TERM(c0, q0, _mm512_loadu_ps(x2 + i)); TERM(d0, q0, _mm512_loadu_ps(x3 + i));
        i += 16;
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 q1 = _mm512_maskz_loadu_ps(k, q + i);
        TERM(a1, q1, _mm512_maskz_loadu_ps(k, x0 + i)); TERM(b1, q1, _mm512_maskz_loadu_ps(k, x1 + i));
        TERM(c1, q1, _mm512_maskz_loadu_ps(k, x2 + i)); TERM(d1, q1, _mm512_maskz_loadu_ps(k, x3 + i));
    }
#undef TERM
    hsum4(_mm512_add_ps(a0, a1), _mm512_add_ps(b0, b1), _mm512_add_ps(c0, c1), _mm512_add_ps(d0, d1), out);
}

static AVX512 void avx512_dot4(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out) {
    four_impl(q, x0, x1, x2, x3, n, out, 0);
}
static AVX512 void avx512_l2sqr4(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out) {
    four_impl(q, x0, x1, x2, x3, n, out, 1);
}

/// 128 centroids per pass in eight accumulators.
static AVX512 void avx512_pq_ip_table(const float *q, const float *ct, size_t m, size_t dsub, float *out) {
    for (size_t j = 0; j < m; j++) {
        for (int c = 0; c < 256; c += 128) {
            __m512 acc[8];
            for (int p = 0; p < 8; p++) acc[p] = _mm512_setzero_ps();
            for (size_t k = 0; k < dsub; k++) {
                __m512 qv = _mm512_set1_ps(q[j * dsub + k]);
                const float *row = ct + (j * dsub + k) * 256 + c;
                for (int p = 0; p < 8; p++) acc[p] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(row + 16 * p), acc[p]);
            }
            for (int p = 0; p < 8; p++) _mm512_storeu_ps(out + j * 256 + c + 16 * p, acc[p]);
        }
    }
}

const qk_float_ops qk_float_avx512 = {
    .simd = QK_SIMD_AVX512, .name = "avx512",
    .dot = avx512_dot, .l2sqr = avx512_l2sqr, .dot_scaled = avx512_dot_scaled,
    .dot4 = avx512_dot4, .l2sqr4 = avx512_l2sqr4, .pq_ip_table = avx512_pq_ip_table,
};
#endif
