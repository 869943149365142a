// CQuiverKernels: Quiver's own SIMD kernels in C, where Swift's SIMD types cannot reach the
// instructions (int8 dot products with vpmaddubsw/vpmaddwd and AVX-512 VNNI's vpdpbusd) or where the
// widest vectors must be picked at run time (the float32 distance kernels of qk_float.h).
//
// Kernels are compiled for the baseline CPU; the AVX2 and AVX-512 versions carry per-function target
// attributes and are chosen at run time from cpuid (__builtin_cpu_supports), so one binary runs
// everywhere. Each vectorized kernel has a plain scalar twin (`*_reference`) that the tests compare
// it with bit for bit.
//
// Thread safety: a qk_i8_matrix is immutable after creation; every function may run on any number of
// threads at once over the same matrix.
#ifndef CQUIVERKERNELS_H
#define CQUIVERKERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "qk_sq8.h"
#include "qk_float.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The int8 matrix-product kernels, narrowest first.
typedef enum {
    /// Plain C over the packed layout (any x86-64 or other CPU).
    QK_KERNEL_PORTABLE = 0,
    /// AVX2: vpmaddubsw on |a| and sign(w, a) (never saturates: 2 * 127 * 127 < 32767), then vpmaddwd.
    QK_KERNEL_AVX2 = 1,
    /// AVX-512 VNNI: vpdpbusd on activations shifted to unsigned (a + 128), with the shift taken
    /// back out through each output channel's weight sum.
    QK_KERNEL_AVX512_VNNI = 2,
} qk_kernel;

/// Whether this CPU (and OS) runs `kernel`.
int qk_kernel_supported(qk_kernel kernel);
/// The widest kernel this CPU runs.
qk_kernel qk_kernel_best(void);

/// A weight matrix W (n, k) quantized symmetrically per output channel (row): w[i][j] ≈ q[i][j] * scale[i],
/// q in [-127, 127], packed for the kernels: panels of 16 rows, each panel k_padded/4 groups of
/// 16 rows x 4 consecutive inputs (64 bytes), rows past n and inputs past k are zero.
typedef struct {
    int n, k;                  // logical shape
    int n_padded, k_padded;    // n rounded up to 16, k to 4
    int8_t *packed;            // n_padded * k_padded bytes
    float *scales;             // n_padded; 0 past n
    int32_t *sums;             // n_padded; sum over j of q[i][j] (for the unsigned-shift compensation)
    float *xmul;               // k, or NULL: inputs are multiplied by xmul[j] before they are quantized
} qk_i8_matrix;

/// Quantizes a float32 matrix w (n, k), row-major with row stride ldw: scale[i] = max_j |w[i][j]| / 127,
/// q = round-half-even(w * 127 / max). NULL when out of memory or a shape is not positive.
qk_i8_matrix *qk_i8_matrix_quantize(const float *w, int n, int k, int ldw);
/// As qk_i8_matrix_quantize, with per-input smoothing (SmoothQuant): the matrix quantized is
/// W · diag(s), and inputs are multiplied by 1 / s[j] (rounded to float) before they are quantized, which
/// moves the range of outlier input channels from the per-token activation scale into the weights.
qk_i8_matrix *qk_i8_matrix_quantize_smoothed(const float *w, int n, int k, int ldw, const float *s);
/// A matrix from given int8 values q (n, k), row-major, each in [-127, 127], and scales (n).
qk_i8_matrix *qk_i8_matrix_from_int8(const int8_t *q, const float *scales, int n, int k);
/// Frees a matrix (NULL is allowed).
void qk_i8_matrix_free(qk_i8_matrix *matrix);
/// Bytes the matrix holds (packed values, scales, sums).
size_t qk_i8_matrix_bytes(const qk_i8_matrix *matrix);
/// Unpacks the int8 values into q (n, k), row-major (for tests).
void qk_i8_matrix_unpack(const qk_i8_matrix *matrix, int8_t *q);

/// Quantizes one activation row x (k) symmetrically: returns the scale max|x| / 127 (0 for an all-zero
/// row) and writes q (k) = round-half-even(x * 127 / max|x|) in [-127, 127]. x must be finite.
float qk_quantize_row(qk_kernel kernel, const float *x, int k, int8_t *q);
/// The scalar twin of qk_quantize_row.
float qk_quantize_row_reference(const float *x, int k, int8_t *q);

/// c (m, n) = a · Wᵀ in int32, exactly: a (m, k) int8 row-major with row stride lda, c row stride ldc.
/// Returns 0, or -1 when out of memory.
int qk_i8_gemm_s32(qk_kernel kernel, const int8_t *a, int lda, int m, const qk_i8_matrix *w, int32_t *c, int ldc);
/// The scalar twin of qk_i8_gemm_s32, over the unpacked values q (n, k) row-major.
void qk_i8_gemm_s32_reference(const int8_t *a, int lda, int m, const int8_t *q, int n, int k, int32_t *c, int ldc);

/// A PyTorch Linear on int8: y (m, n) = dequant(quant(x) · Wᵀ) + bias, or y += that when accumulate.
/// Each row of x (m, k; row stride ldx) is quantized per token (qk_quantize_row); the product is exact
/// in int32; then y[r][i] = fmaf((float)acc, xscale[r] * wscale[i], bias[i]) (added to y[r][i] when
/// accumulate). bias may be NULL (zero). Returns 0, or -1 when out of memory.
int qk_i8_linear(qk_kernel kernel, const float *x, int ldx, int m, const qk_i8_matrix *w,
                 const float *bias, float *y, int ldy, int accumulate);
/// The scalar twin of qk_i8_linear: the same numbers, bit for bit, from plain loops.
int qk_i8_linear_reference(const float *x, int ldx, int m, const qk_i8_matrix *w,
                           const float *bias, float *y, int ldy, int accumulate);

/// Returns freed heap memory to the kernel (glibc's malloc_trim; nothing elsewhere), so that the
/// resident size after a load that dropped large temporary arrays shows what is kept.
void qk_release_freed_memory(void);

#ifdef __cplusplus
}
#endif
#endif
