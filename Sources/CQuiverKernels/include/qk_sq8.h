// Distances from a float32 query to 8-bit scalar-quantized vectors (sq8): the graph distances of
// Quiver's sq8 HNSW segments. A stored vector x of d components is kept as codes c[i] in 0...255 with
// a per-dimension scale s[i] and offset o[i] trained at seal: x[i] ≈ o[i] + s[i] * c[i].
//
// The query is prepared once per search (qk_sq8_query) so that each distance is one pass over the codes:
//   - dot / cosine: q · x ≈ Σ q[i] o[i] + Σ (q[i] s[i]) c[i]; the kernel computes bias - Σ w[i] c[i]
//     with w = q ⊙ s and bias = -Σ q o (dot) or 1 - Σ q o (cosine, unit vectors): the metric's distance.
//   - l2: |q - x|² ≈ Σ (p[i] - s[i] c[i])² with p = q - o.
//
// Summation order is part of the contract, so that the AVX2 and AVX-512 kernels and their scalar twin
// return the same float bit for bit: components i < d - d % 64 accumulate in 64 lanes (lane i % 64, in
// order of i, each step fused: dot / cosine acc = fma(w, c, acc); l2 t = fma(-s, c, w), acc = fma(t, t,
// acc); four independent chains of 16 lanes keep the vector units busy), the next full blocks of 16 (i < d - d % 16) in lanes i % 16, the 64 lanes are reduced
// pairwise (l + l+32, l + l+16, l + l+8, l + l+4, l + l+2, l + l+1), and the last d % 16 components
// are added to that sum one by one.
//
// Thread safety: pure functions of their arguments.
#ifndef CQUIVERKERNELS_SQ8_H
#define CQUIVERKERNELS_SQ8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A query prepared for one metric (see the file comment); the arrays hold d floats and outlive the calls.
typedef struct {
    /// dot / cosine: q ⊙ s. l2: q - o.
    const float *w;
    /// l2: the scales s; NULL for dot / cosine.
    const float *scale;
    /// dot / cosine: the constant term of the distance; l2: unused (0).
    float bias;
    int d;
} qk_sq8_query;

/// The distance from `query` to the codes `code` (d bytes). `kernel` is a qk_kernel value
/// (QK_KERNEL_AVX512_VNNI runs the AVX-512 kernel, which needs only AVX-512 F/BW/VL here).
float qk_sq8_distance(int kernel, const qk_sq8_query *query, const uint8_t *code);
/// The scalar twin of qk_sq8_distance.
float qk_sq8_distance_reference(const qk_sq8_query *query, const uint8_t *code);
/// out[j] = the distance from `query` to the codes at base + slots[j] * stride, for j < n (the
/// neighbours of one node during a graph search, gathered in one call).
void qk_sq8_distances(int kernel, const qk_sq8_query *query, const uint8_t *base, size_t stride,
                      const uint32_t *slots, int n, float *out);

#ifdef __cplusplus
}
#endif
#endif
