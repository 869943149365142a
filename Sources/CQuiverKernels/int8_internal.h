// Shared by the int8 kernels of CQuiverKernels (not part of the public header).
#ifndef CQUIVERKERNELS_INT8_INTERNAL_H
#define CQUIVERKERNELS_INT8_INTERNAL_H

#include <math.h>
#include <string.h>
#include "CQuiverKernels.h"

/// Where a block of results goes: raw int32 (when c is set), or the dequantized Linear output.
/// Pointers are already offset to the block's first row.
typedef struct {
    int32_t *c;
    int ldc;
    float *y;
    int ldy;
    const float *xscale;   // one scale per row of the block
    const float *bias;     // n, or NULL
    int accumulate;
} qk_out;

/// Rows of activations quantized at once (the chunk stays in L2 while every weight panel passes over it).
#define QK_ROW_CHUNK 96

/// Byte offset of weight (i, j) in the packed layout.
static inline size_t qk_packed_index(const qk_i8_matrix *w, int i, int j) {
    return ((size_t)(i / 16) * (size_t)(w->k_padded / 4) + (size_t)(j / 4)) * 64 + (size_t)(i % 16) * 4 + (size_t)(j % 4);
}

/// The dequantization every kernel applies, written once for the scalar paths and tails.
static inline float qk_dequant(int32_t acc, float xscale, float wscale, float bias, float old, int accumulate) {
    float t = fmaf((float)acc, xscale * wscale, bias);
    return accumulate ? old + t : t;
}

/// One output element of a block, scalar: used by the portable kernel, the tails and the reference.
static inline void qk_store_one(const qk_out *out, const qk_i8_matrix *w, int r, int col, int32_t acc) {
    if (out->c) {
        out->c[(size_t)r * out->ldc + col] = acc;
    } else {
        float *y = out->y + (size_t)r * out->ldy + col;
        *y = qk_dequant(acc, out->xscale[r], w->scales[col], out->bias ? out->bias[col] : 0.0f, *y, out->accumulate);
    }
}

/// Activation encoding of each kernel: the value stored for q is q + offset (as a byte).
static inline int qk_activation_offset(qk_kernel kernel) { return kernel == QK_KERNEL_AVX512_VNNI ? 128 : 0; }

/// Computes rows [0, m) of the block a (m, k_padded bytes, row stride lda; encoded with the kernel's
/// offset) times every output channel of w.
void qk_block_portable(const int8_t *a, int lda, int m, const qk_i8_matrix *w, const qk_out *out);
void qk_block_avx2(const int8_t *a, int lda, int m, const qk_i8_matrix *w, const qk_out *out);
void qk_block_avx512_vnni(const int8_t *a, int lda, int m, const qk_i8_matrix *w, const qk_out *out);

/// Quantizes x (k) into q (k_padded, zero-padded past k), stored with `offset`; returns the scale.
float qk_quantize_portable(const float *x, int k, int kp, int8_t *q, int offset);
float qk_quantize_avx2(const float *x, int k, int kp, int8_t *q, int offset);
float qk_quantize_avx512(const float *x, int k, int kp, int8_t *q, int offset);

/// The shared scalar quantization of one row given its max|x| (the vector versions find the max,
/// then use the same arithmetic per element).
static inline float qk_row_inverse(float maxabs, float *scale) {
    // A row this small (or zero) quantizes to zeros; 127/max would overflow to infinity.
    if (!(maxabs > 0x1p-100f)) { *scale = 0; return 0; }
    *scale = maxabs / 127.0f;
    return 127.0f / maxabs;
}

static inline int8_t qk_quantize_one(float x, float inv, int offset) {
    int q = (int)rintf(x * inv);
    q = q > 127 ? 127 : (q < -127 ? -127 : q);
    return (int8_t)(uint8_t)(q + offset);
}

#endif
