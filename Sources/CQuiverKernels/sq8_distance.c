// sq8 distances (qk_sq8.h): the scalar twin, the AVX2 and AVX-512 kernels, and their dispatch. Every
// kernel follows the summation order of qk_sq8.h (64 lanes, a fixed pairwise
// reduction, the tail last; each step an explicit fused multiply-add), so all three return the same
// float bit for bit. This file is compiled with -ffp-contract=off: no other multiply-add is fused
// behind the order's back.
#include "CQuiverKernels.h"
#include "cpu_features.h"
#include <math.h>

/// A lane's sum after component i: acc + w·c (dot / cosine) or acc + (w - s·c)² (l2), each step one
/// fused multiply-add (fmaf rounds once, as the vector FMA instructions do).
static inline float sq8_step(const qk_sq8_query *q, int i, const uint8_t *code, float acc) {
    float c = (float)code[i];
    if (q->scale) {
        float t = fmaf(-q->scale[i], c, q->w[i]);
        return fmaf(t, t, acc);
    }
    return fmaf(q->w[i], c, acc);
}

/// The metric's distance from the reduced sum of terms.
static inline float sq8_finish(const qk_sq8_query *q, float sum) { return q->scale ? sum : q->bias - sum; }

/// Adds the tail (components past the last full block of 16) to the reduced sum, one by one.
static inline float sq8_tail(const qk_sq8_query *q, const uint8_t *code, int from, float sum) {
    for (int i = from; i < q->d; i++) sum = sq8_step(q, i, code, sum);
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
    float acc[64] = {0};
    int body64 = q->d - q->d % 64, body16 = q->d - q->d % 16;
    for (int i = 0; i < body64; i += 64)
        for (int l = 0; l < 64; l++) acc[l] = sq8_step(q, i + l, code, acc[l]);
    for (int i = body64; i < body16; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = sq8_step(q, i + l, code, acc[l]);
    float t[8];
    for (int l = 0; l < 32; l++) acc[l] = acc[l] + acc[l + 32];
    for (int l = 0; l < 16; l++) acc[l] = acc[l] + acc[l + 16];
    for (int l = 0; l < 8; l++) t[l] = acc[l] + acc[l + 8];
    return sq8_finish(q, sq8_tail(q, code, body16, sq8_reduce8(t)));
}

#ifdef QK_X86
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

/// 8 codes at p as floats.
static inline __attribute__((always_inline)) AVX2 __m256 sq8_load8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/// One 8-wide accumulator after the 8 components at i (sq8_step in each lane).
static inline __attribute__((always_inline)) AVX2 __m256 sq8_step8(const qk_sq8_query *q, const uint8_t *code, int i, __m256 acc) {
    __m256 c = sq8_load8(code + i), w = _mm256_loadu_ps(q->w + i);
    if (q->scale) {
        __m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(q->scale + i), c, w);
        return _mm256_fmadd_ps(t, t, acc);
    }
    return _mm256_fmadd_ps(w, c, acc);
}

static inline __attribute__((always_inline)) AVX2 float sq8_reduce_avx2(__m256 lo, __m256 hi) {
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(lo, hi));
    return sq8_reduce8(t);
}

/// Eight accumulators of 8 lanes (a[k] holds lanes 8k...8k+7 of the 64).
AVX2 static float sq8_distance_avx2(const qk_sq8_query *q, const uint8_t *code) {
    __m256 a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
    int body64 = q->d - q->d % 64, body16 = q->d - q->d % 16;
    for (int i = 0; i < body64; i += 64)
        for (int k = 0; k < 8; k++) a[k] = sq8_step8(q, code, i + 8 * k, a[k]);
    for (int i = body64; i < body16; i += 16) {
        a[0] = sq8_step8(q, code, i, a[0]);
        a[1] = sq8_step8(q, code, i + 8, a[1]);
    }
    for (int k = 0; k < 4; k++) a[k] = _mm256_add_ps(a[k], a[k + 4]);
    for (int k = 0; k < 2; k++) a[k] = _mm256_add_ps(a[k], a[k + 2]);
    return sq8_finish(q, sq8_tail(q, code, body16, sq8_reduce_avx2(a[0], a[1])));
}

/// 16 codes at p as floats.
static inline __attribute__((always_inline)) AVX512 __m512 sq8_load16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/// One 16-wide accumulator after the 16 components at i (sq8_step in each lane).
static inline __attribute__((always_inline)) AVX512 __m512 sq8_step16(const qk_sq8_query *q, const uint8_t *code, int i, __m512 acc) {
    __m512 c = sq8_load16(code + i), w = _mm512_loadu_ps(q->w + i);
    if (q->scale) {
        __m512 t = _mm512_fnmadd_ps(_mm512_loadu_ps(q->scale + i), c, w);
        return _mm512_fmadd_ps(t, t, acc);
    }
    return _mm512_fmadd_ps(w, c, acc);
}

/// Four accumulators of 16 lanes (a[k] holds lanes 16k...16k+15 of the 64).
AVX512 static float sq8_distance_avx512(const qk_sq8_query *q, const uint8_t *code) {
    __m512 a[4];
    for (int k = 0; k < 4; k++) a[k] = _mm512_setzero_ps();
    int body64 = q->d - q->d % 64, body16 = q->d - q->d % 16;
    for (int i = 0; i < body64; i += 64)
        for (int k = 0; k < 4; k++) a[k] = sq8_step16(q, code, i + 16 * k, a[k]);
    for (int i = body64; i < body16; i += 16) a[0] = sq8_step16(q, code, i, a[0]);
    __m512 acc = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
    __m256 lo = _mm512_castps512_ps256(acc);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
    return sq8_finish(q, sq8_tail(q, code, body16, sq8_reduce_avx2(lo, hi)));
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

/// out[j] = f(q, the codes of slots[j]); every line of the vector two ahead is requested early (the
/// first two before the loop), so the misses of consecutive neighbours overlap. Inlined with a
/// constant f, so each kernel gets its own loop of direct calls.
static inline __attribute__((always_inline)) void sq8_gather(sq8_kernel_fn f, const qk_sq8_query *q, const uint8_t *base,
                                                             size_t stride, const uint32_t *slots, int n, float *out) {
    for (int j = 0; j < n && j < 2; j++) qk_prefetch(base + (size_t)slots[j] * stride, (size_t)q->d);
    for (int j = 0; j < n; j++) {
        if (j + 2 < n) qk_prefetch(base + (size_t)slots[j + 2] * stride, (size_t)q->d);
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
