// Float32 distance kernels of CQuiverKernels, chosen at run time (see CQuiverKernels.h for the scheme).
//
// Three variants, narrowest first: portable C (eight independent lanes, which any compiler vectorizes
// for the baseline CPU), AVX2 with FMA (four 8-lane accumulators), AVX-512F (four 16-lane
// accumulators, tails by masked loads). `qk_float_active()` is the widest this CPU runs, or at the one
// `$QUIVER_SIMD` (portable, avx2 or avx512) forces, chosen once when the library loads; a variant is
// picked once per process and never changes, so every distance of a run is computed the same way.
//
// Each variant sums in its own fixed order, so results differ between variants by float rounding
// (a few ulps times the magnitude of the terms); within one variant, `dot_scaled(a, b, s)` equals
// `dot(a, b')` bit for bit where b' = b * s componentwise (each product rounded to float), and the
// four results of `dot4`/`l2sqr4` are those of `dot`/`l2sqr` up to rounding. Tests check every
// variant against the scalar twins of QuiverCore's DistanceKernels.
//
// Thread safety: the tables are immutable; every function may run on any number of threads at once.
#ifndef QK_FLOAT_H
#define QK_FLOAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The float32 kernel variants, narrowest first.
typedef enum {
    QK_SIMD_PORTABLE = 0,
    /// AVX2 and FMA (256-bit).
    QK_SIMD_AVX2 = 1,
    /// AVX-512F (512-bit), with FMA.
    QK_SIMD_AVX512 = 2,
} qk_simd;

/// One variant's kernels. Vectors are `n` floats each, any alignment.
typedef struct {
    qk_simd simd;
    /// "portable", "avx2" or "avx512" (the values `$QUIVER_SIMD` takes).
    const char *name;
    /// <a, b>.
    float (*dot)(const float *a, const float *b, size_t n);
    /// ||a - b||^2.
    float (*l2sqr)(const float *a, const float *b, size_t n);
    /// <a, b * s>, with each b[i] * s rounded to float before it is multiplied by a[i].
    float (*dot_scaled)(const float *a, const float *b, float s, size_t n);
    /// out[i] = <q, x_i> for the four vectors x_0..x_3 (q read once for all four).
    void (*dot4)(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out);
    /// out[i] = ||q - x_i||^2 for the four vectors.
    void (*l2sqr4)(const float *q, const float *x0, const float *x1, const float *x2, const float *x3, size_t n, float *out);
    /// A product quantizer's inner-product table: out[j * 256 + c] = <q[j*dsub ..< (j+1)*dsub], centroid c of
    /// subspace j>, for j < m, from the transposed centroids ct[(j * dsub + t) * 256 + c].
    void (*pq_ip_table)(const float *q, const float *ct, size_t m, size_t dsub, float *out);
} qk_float_ops;

/// Whether this CPU (and OS) runs `simd`.
int qk_simd_supported(qk_simd simd);
/// The widest variant this CPU runs.
qk_simd qk_simd_best(void);
/// The kernels of `simd`, or NULL when this CPU does not run it.
const qk_float_ops *qk_float_ops_for(qk_simd simd);

/// The kernels in use: chosen when the library loads (the widest, or `$QUIVER_SIMD`'s). Never NULL
/// after load; read-only for callers (read it through qk_float_active()).
extern const qk_float_ops *qk_float_chosen;
/// The kernels in use (inline: one load, so a hot loop may call it per distance).
static inline const qk_float_ops *qk_float_active(void) { return qk_float_chosen; }
/// Why `$QUIVER_SIMD` was not followed (an unknown name, or a variant this CPU lacks: then the widest
/// variant it runs is used and this message says so), or NULL when it was followed or is unset.
const char *qk_float_selection_note(void);

/// Asks the CPU to bring the `bytes` bytes at `p` into cache (one prefetch per 64-byte line they touch,
/// the last one included when `p` is not line-aligned; a hint, no fault on any address): for loops that
/// read scattered rows whose addresses are known a few rows ahead.
static inline void qk_prefetch(const void *p, size_t bytes) {
    if (bytes == 0) return;
    uintptr_t first = (uintptr_t)p & ~(uintptr_t)63, last = ((uintptr_t)p + bytes - 1) & ~(uintptr_t)63;
    for (uintptr_t line = first; line <= last; line += 64) __builtin_prefetch((const void *)line, 0, 3);
}

#ifdef __cplusplus
}
#endif
#endif
