// sq8 distances (qk_sq8.h): the scalar twin, the AVX2 and AVX-512 kernels, and their dispatch. Every
// kernel follows the summation order of qk_sq8.h (16 lanes, multiply then add, a fixed pairwise
// reduction, the tail last), so all three return the same float bit for bit. This file is compiled
// with -ffp-contract=off: no multiply-add is fused behind the order's back.
#include "CQuiverKernels.h"
#include "cpu_features.h"

/// One component's term: w·c (dot / cosine) or (w - s·c)² (l2).
static inline float sq8_term(const qk_sq8_query *q, int i, const uint8_t *code) {
    float c = (float)code[i];
    if (q->scale) {
        float t = q->w[i] - q->scale[i] * c;
        return t * t;
    }
    return q->w[i] * c;
}

/// The metric's distance from the reduced sum of terms.
static inline float sq8_finish(const qk_sq8_query *q, float sum) { return q->scale ? sum : q->bias - sum; }

/// Adds the tail (components past the last full block of 16) to the reduced sum, one by one.
static inline float sq8_tail(const qk_sq8_query *q, const uint8_t *code, int from, float sum) {
    for (int i = from; i < q->d; i++) sum += sq8_term(q, i, code);
    return sum;
}

/// The pairwise reduction of 8 lanes that remain after l + l+8 (l + l+4, l + l+2, l + l+1).
static inline float sq8_reduce8(const float *t) {
    float u[4], v[2];
    for (int l = 0; l < 4; l++) u[l] = t[l] + t[l + 4];
    for (int l = 0; l < 2; l++) v[l] = u[l] + u[l + 2];
    return v[0] + v[1];
}

float qk_sq8_distance_reference(const qk_sq8_query *q, const uint8_t *code) {
    float acc[16] = {0};
    int body = q->d - q->d % 16;
    for (int i = 0; i < body; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += sq8_term(q, i + l, code);
    float t[8];
    for (int l = 0; l < 8; l++) t[l] = acc[l] + acc[l + 8];
    return sq8_finish(q, sq8_tail(q, code, body, sq8_reduce8(t)));
}

#ifdef QK_X86
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))

/// 8 codes at p as floats.
static inline __attribute__((always_inline)) AVX2 __m256 sq8_load8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static inline __attribute__((always_inline)) AVX2 float sq8_reduce_avx2(__m256 lo, __m256 hi) {
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(lo, hi));
    return sq8_reduce8(t);
}

AVX2 static float sq8_distance_avx2(const qk_sq8_query *q, const uint8_t *code) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int body = q->d - q->d % 16;
    const float *w = q->w;
    if (q->scale) {
        const float *s = q->scale;
        for (int i = 0; i < body; i += 16) {
            __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(s + i), sq8_load8(code + i)));
            __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(w + i + 8), _mm256_mul_ps(_mm256_loadu_ps(s + i + 8), sq8_load8(code + i + 8)));
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(t0, t0));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(t1, t1));
        }
    } else {
        for (int i = 0; i < body; i += 16) {
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(w + i), sq8_load8(code + i)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(w + i + 8), sq8_load8(code + i + 8)));
        }
    }
    return sq8_finish(q, sq8_tail(q, code, body, sq8_reduce_avx2(a0, a1)));
}

/// 16 codes at p as floats.
static inline __attribute__((always_inline)) AVX512 __m512 sq8_load16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

AVX512 static float sq8_distance_avx512(const qk_sq8_query *q, const uint8_t *code) {
    __m512 acc = _mm512_setzero_ps();
    int body = q->d - q->d % 16;
    const float *w = q->w;
    if (q->scale) {
        const float *s = q->scale;
        for (int i = 0; i < body; i += 16) {
            __m512 t = _mm512_sub_ps(_mm512_loadu_ps(w + i), _mm512_mul_ps(_mm512_loadu_ps(s + i), sq8_load16(code + i)));
            acc = _mm512_add_ps(acc, _mm512_mul_ps(t, t));
        }
    } else {
        for (int i = 0; i < body; i += 16) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(w + i), sq8_load16(code + i)));
    }
    __m256 lo = _mm512_castps512_ps256(acc);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
    return sq8_finish(q, sq8_tail(q, code, body, sq8_reduce_avx2(lo, hi)));
}
#endif

typedef float (*sq8_kernel_fn)(const qk_sq8_query *q, const uint8_t *code);

/// The kernel a qk_kernel value runs (QK_KERNEL_AVX512_VNNI: the AVX-512 one).
static inline __attribute__((always_inline)) sq8_kernel_fn sq8_kernel(int kernel) {
#ifdef QK_X86
    if (kernel == QK_KERNEL_AVX512_VNNI) return sq8_distance_avx512;
    if (kernel == QK_KERNEL_AVX2) return sq8_distance_avx2;
#endif
    return qk_sq8_distance_reference;
}

/// out[j] = f(q, the codes of slots[j]); the next vector's first line is requested early. Inlined
/// with a constant f, so each kernel gets its own loop of direct calls.
static inline __attribute__((always_inline)) void sq8_gather(sq8_kernel_fn f, const qk_sq8_query *q, const uint8_t *base,
                                                             size_t stride, const uint32_t *slots, int n, float *out) {
    for (int j = 0; j < n; j++) {
        if (j + 1 < n) __builtin_prefetch(base + (size_t)slots[j + 1] * stride);
        out[j] = f(q, base + (size_t)slots[j] * stride);
    }
}

float qk_sq8_distance(int kernel, const qk_sq8_query *q, const uint8_t *code) { return sq8_kernel(kernel)(q, code); }

void qk_sq8_distances(int kernel, const qk_sq8_query *q, const uint8_t *base, size_t stride,
                      const uint32_t *slots, int n, float *out) {
    // One branch per call, not per distance.
#ifdef QK_X86
    if (kernel == QK_KERNEL_AVX512_VNNI) { sq8_gather(sq8_distance_avx512, q, base, stride, slots, n, out); return; }
    if (kernel == QK_KERNEL_AVX2) { sq8_gather(sq8_distance_avx2, q, base, stride, slots, n, out); return; }
#endif
    sq8_gather(qk_sq8_distance_reference, q, base, stride, slots, n, out);
}
