// Float32 distance kernels: the portable variant, and the choice of variant when the library loads.
#include <stdio.h>
#include "cpu_features.h"
#include "float_internal.h"

// MARK: the portable variant
//
// Eight independent lanes (lane i % 8 takes element i), added pairwise at the end: no add waits on the
// previous one, and the fixed lane order lets a compiler vectorize without reassociating (the target
// is built with -ffp-contract=off, so a multiply and an add stay two roundings here).

static inline float qk_lanes_sum(const float *s) {
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static inline __attribute__((always_inline))
float portable_dot_impl(const float *a, const float *b, float scale, int scaled, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * (scaled ? b[i + l] * scale : b[i + l]);
    for (int l = 0; i + l < n; l++) s[l] += a[i + l] * (scaled ? b[i + l] * scale : b[i + l]);
    return qk_lanes_sum(s);
}

static float portable_dot(const float *a, const float *b, size_t n) { return portable_dot_impl(a, b, 1, 0, n); }
static float portable_dot_scaled(const float *a, const float *b, float s, size_t n) { return portable_dot_impl(a, b, s, 1, n); }

static float portable_l2sqr(const float *a, const float *b, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) { float t = a[i + l] - b[i + l]; s[l] += t * t; }
    for (int l = 0; i + l < n; l++) { float t = a[i + l] - b[i + l]; s[l] += t * t; }
    return qk_lanes_sum(s);
}

static void portable_dot4(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out) {
    out[0] = portable_dot(q, x0, n); out[1] = portable_dot(q, x1, n);
    out[2] = portable_dot(q, x2, n); out[3] = portable_dot(q, x3, n);
}

static void portable_l2sqr4(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out) {
    out[0] = portable_l2sqr(q, x0, n); out[1] = portable_l2sqr(q, x1, n);
    out[2] = portable_l2sqr(q, x2, n); out[3] = portable_l2sqr(q, x3, n);
}

static void portable_pq_ip_table(const float *q, const float *ct, size_t m, size_t dsub, float *out) {
    for (size_t j = 0; j < m; j++) {
        float *t = out + j * 256;
        for (int c = 0; c < 256; c++) t[c] = 0;
        for (size_t k = 0; k < dsub; k++) {
            float qv = q[j * dsub + k];
            const float *row = ct + (j * dsub + k) * 256;
            for (int c = 0; c < 256; c++) t[c] += qv * row[c];
        }
    }
}

const qk_float_ops qk_float_portable = {
    .simd = QK_SIMD_PORTABLE, .name = "portable",
    .dot = portable_dot, .l2sqr = portable_l2sqr, .dot_scaled = portable_dot_scaled,
    .dot4 = portable_dot4, .l2sqr4 = portable_l2sqr4, .pq_ip_table = portable_pq_ip_table,
};

// MARK: choice

static const char *const simd_names[] = {"portable", "avx2", "avx512"};
static const unsigned simd_needs[] = {0, QK_CPU_AVX2 | QK_CPU_FMA, QK_CPU_AVX512F | QK_CPU_AVX2 | QK_CPU_FMA};
static const qk_variants simd_family = {simd_names, simd_needs, 3};

int qk_simd_supported(qk_simd simd) { return qk_variant_supported(&simd_family, (int)simd); }

qk_simd qk_simd_best(void) { return (qk_simd)qk_variant_best(&simd_family); }

const qk_float_ops *qk_float_ops_for(qk_simd simd) {
    if (!qk_simd_supported(simd)) return NULL;
    switch (simd) {
#ifdef QK_X86
    case QK_SIMD_AVX2: return &qk_float_avx2;
    case QK_SIMD_AVX512: return &qk_float_avx512;
#endif
    default: return &qk_float_portable;
    }
}

const qk_float_ops *qk_float_chosen = &qk_float_portable;
static char qk_note[160];

const char *qk_float_selection_note(void) { return qk_note[0] ? qk_note : NULL; }

/// Runs when the library (or the executable it is linked into) loads, before any Swift code.
__attribute__((constructor)) static void qk_float_choose(void) {
    qk_simd chosen = (qk_simd)qk_variant_from_environment(&simd_family, "QUIVER_SIMD", qk_note, sizeof qk_note);
    if (qk_note[0]) fprintf(stderr, "quiver: %s\n", qk_note);
    qk_float_chosen = qk_float_ops_for(chosen);
}
