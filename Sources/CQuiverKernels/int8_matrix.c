// int8 weight matrices: quantization, packing, dispatch, and the scalar twins.
#include <stdlib.h>
#include "cpu_features.h"
#include "int8_internal.h"

static const char *const kernel_names[] = {"portable", "avx2", "avx512-vnni"};
static const unsigned kernel_needs[] = {
    0, QK_CPU_AVX2 | QK_CPU_FMA,
    QK_CPU_AVX512F | QK_CPU_AVX512BW | QK_CPU_AVX512VL | QK_CPU_AVX512VNNI | QK_CPU_FMA,
};
static const qk_variants kernel_family = {kernel_names, kernel_needs, 3};

int qk_kernel_supported(qk_kernel kernel) { return qk_variant_supported(&kernel_family, (int)kernel); }

qk_kernel qk_kernel_best(void) { return (qk_kernel)qk_variant_best(&kernel_family); }

static qk_i8_matrix *qk_matrix_alloc(int n, int k) {
    if (n <= 0 || k <= 0) return NULL;
    qk_i8_matrix *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n = n; m->k = k;
    m->n_padded = (n + 15) / 16 * 16;
    m->k_padded = (k + 3) / 4 * 4;
    m->packed = calloc((size_t)m->n_padded * (size_t)m->k_padded, 1);
    m->scales = calloc((size_t)m->n_padded, sizeof(float));
    m->sums = calloc((size_t)m->n_padded, sizeof(int32_t));
    if (!m->packed || !m->scales || !m->sums) { qk_i8_matrix_free(m); return NULL; }
    return m;
}

static void qk_matrix_set(qk_i8_matrix *m, int i, int j, int8_t q) {
    m->packed[qk_packed_index(m, i, j)] = q;
    m->sums[i] += q;
}

qk_i8_matrix *qk_i8_matrix_quantize(const float *w, int n, int k, int ldw) {
    qk_i8_matrix *m = qk_matrix_alloc(n, k);
    if (!m) return NULL;
    for (int i = 0; i < n; i++) {
        const float *row = w + (size_t)i * ldw;
        float maxabs = 0;
        for (int j = 0; j < k; j++) maxabs = fmaxf(maxabs, fabsf(row[j]));
        float inv = qk_row_inverse(maxabs, &m->scales[i]);
        for (int j = 0; j < k; j++) qk_matrix_set(m, i, j, qk_quantize_one(row[j], inv, 0));
    }
    return m;
}

qk_i8_matrix *qk_i8_matrix_quantize_smoothed(const float *w, int n, int k, int ldw, const float *s) {
    float *scaled = malloc((size_t)n * k * sizeof(float));
    if (!scaled) return NULL;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) scaled[(size_t)i * k + j] = w[(size_t)i * ldw + j] * s[j];
    qk_i8_matrix *m = qk_i8_matrix_quantize(scaled, n, k, k);
    free(scaled);
    if (!m) return NULL;
    m->xmul = malloc((size_t)k * sizeof(float));
    if (!m->xmul) { qk_i8_matrix_free(m); return NULL; }
    for (int j = 0; j < k; j++) m->xmul[j] = 1.0f / s[j];
    return m;
}

qk_i8_matrix *qk_i8_matrix_from_int8(const int8_t *q, const float *scales, int n, int k) {
    qk_i8_matrix *m = qk_matrix_alloc(n, k);
    if (!m) return NULL;
    for (int i = 0; i < n; i++) {
        m->scales[i] = scales[i];
        for (int j = 0; j < k; j++) qk_matrix_set(m, i, j, q[(size_t)i * k + j]);
    }
    return m;
}

void qk_i8_matrix_free(qk_i8_matrix *m) {
    if (!m) return;
    free(m->packed); free(m->scales); free(m->sums); free(m->xmul); free(m);
}

size_t qk_i8_matrix_bytes(const qk_i8_matrix *m) {
    return sizeof *m + (size_t)m->n_padded * (size_t)m->k_padded + (size_t)m->n_padded * (sizeof(float) + sizeof(int32_t))
        + (m->xmul ? (size_t)m->k * sizeof(float) : 0);
}

void qk_i8_matrix_unpack(const qk_i8_matrix *m, int8_t *q) {
    for (int i = 0; i < m->n; i++)
        for (int j = 0; j < m->k; j++) q[(size_t)i * m->k + j] = m->packed[qk_packed_index(m, i, j)];
}

// MARK: activations

float qk_quantize_row_reference(const float *x, int k, int8_t *q) {
    float maxabs = 0, scale;
    for (int j = 0; j < k; j++) maxabs = fmaxf(maxabs, fabsf(x[j]));
    float inv = qk_row_inverse(maxabs, &scale);
    for (int j = 0; j < k; j++) q[j] = qk_quantize_one(x[j], inv, 0);
    return scale;
}

float qk_quantize_portable(const float *x, int k, int kp, int8_t *q, int offset) {
    float maxabs = 0, scale;
    for (int j = 0; j < k; j++) maxabs = fmaxf(maxabs, fabsf(x[j]));
    float inv = qk_row_inverse(maxabs, &scale);
    for (int j = 0; j < k; j++) q[j] = qk_quantize_one(x[j], inv, offset);
    for (int j = k; j < kp; j++) q[j] = (int8_t)(uint8_t)offset;
    return scale;
}

typedef float (*qk_quantize_fn)(const float *, int, int, int8_t *, int);
typedef void (*qk_block_fn)(const int8_t *, int, int, const qk_i8_matrix *, const qk_out *);

static qk_quantize_fn qk_quantizer(qk_kernel kernel) {
    switch (kernel) {
#ifdef QK_X86
    case QK_KERNEL_AVX2: return qk_quantize_avx2;
    case QK_KERNEL_AVX512_VNNI: return qk_quantize_avx512;
#endif
    default: return qk_quantize_portable;
    }
}

static qk_block_fn qk_block(qk_kernel kernel) {
    switch (kernel) {
#ifdef QK_X86
    case QK_KERNEL_AVX2: return qk_block_avx2;
    case QK_KERNEL_AVX512_VNNI: return qk_block_avx512_vnni;
#endif
    default: return qk_block_portable;
    }
}

/// A kernel the CPU cannot run falls back to the best one it can (callers check support first).
static qk_kernel qk_usable(qk_kernel kernel) { return qk_kernel_supported(kernel) ? kernel : qk_kernel_best(); }

float qk_quantize_row(qk_kernel kernel, const float *x, int k, int8_t *q) {
    kernel = qk_usable(kernel);
    return qk_quantizer(kernel)(x, k, k, q, 0);
}

// MARK: products

int qk_i8_gemm_s32(qk_kernel kernel, const int8_t *a, int lda, int m, const qk_i8_matrix *w, int32_t *c, int ldc) {
    kernel = qk_usable(kernel);
    int kp = w->k_padded, offset = qk_activation_offset(kernel);
    int8_t *chunk = malloc((size_t)QK_ROW_CHUNK * kp);
    if (!chunk) return -1;
    for (int r0 = 0; r0 < m; r0 += QK_ROW_CHUNK) {
        int rows = m - r0 < QK_ROW_CHUNK ? m - r0 : QK_ROW_CHUNK;
        for (int r = 0; r < rows; r++) {
            const int8_t *src = a + (size_t)(r0 + r) * lda;
            int8_t *dst = chunk + (size_t)r * kp;
            for (int j = 0; j < w->k; j++) dst[j] = (int8_t)(uint8_t)(src[j] + offset);
            for (int j = w->k; j < kp; j++) dst[j] = (int8_t)(uint8_t)offset;
        }
        qk_out out = { .c = c + (size_t)r0 * ldc, .ldc = ldc };
        qk_block(kernel)(chunk, kp, rows, w, &out);
    }
    free(chunk);
    return 0;
}

void qk_i8_gemm_s32_reference(const int8_t *a, int lda, int m, const int8_t *q, int n, int k, int32_t *c, int ldc) {
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            int32_t acc = 0;
            for (int j = 0; j < k; j++) acc += (int32_t)a[(size_t)r * lda + j] * (int32_t)q[(size_t)i * k + j];
            c[(size_t)r * ldc + i] = acc;
        }
}

/// x * xmul, element by element (the same float products in every kernel: one IEEE multiply each).
static void qk_smooth_row(const qk_i8_matrix *w, const float *x, float *out) {
    for (int j = 0; j < w->k; j++) out[j] = x[j] * w->xmul[j];
}

int qk_i8_linear(qk_kernel kernel, const float *x, int ldx, int m, const qk_i8_matrix *w,
                 const float *bias, float *y, int ldy, int accumulate) {
    kernel = qk_usable(kernel);
    int kp = w->k_padded, offset = qk_activation_offset(kernel);
    qk_quantize_fn quantize = qk_quantizer(kernel);
    qk_block_fn block = qk_block(kernel);
    int8_t *chunk = malloc((size_t)QK_ROW_CHUNK * kp + (QK_ROW_CHUNK + (size_t)kp) * sizeof(float));
    if (!chunk) return -1;
    float *xscale = (float *)(chunk + (size_t)QK_ROW_CHUNK * kp), *smoothed = xscale + QK_ROW_CHUNK;
    for (int r0 = 0; r0 < m; r0 += QK_ROW_CHUNK) {
        int rows = m - r0 < QK_ROW_CHUNK ? m - r0 : QK_ROW_CHUNK;
        for (int r = 0; r < rows; r++) {
            const float *row = x + (size_t)(r0 + r) * ldx;
            if (w->xmul) { qk_smooth_row(w, row, smoothed); row = smoothed; }
            xscale[r] = quantize(row, w->k, kp, chunk + (size_t)r * kp, offset);
        }
        qk_out out = { .y = y + (size_t)r0 * ldy, .ldy = ldy, .xscale = xscale, .bias = bias, .accumulate = accumulate };
        block(chunk, kp, rows, w, &out);
    }
    free(chunk);
    return 0;
}

int qk_i8_linear_reference(const float *x, int ldx, int m, const qk_i8_matrix *w,
                           const float *bias, float *y, int ldy, int accumulate) {
    int8_t *q = malloc((size_t)w->k + (size_t)w->k * sizeof(float));
    if (!q) return -1;
    float *smoothed = (float *)(q + w->k);
    for (int r = 0; r < m; r++) {
        const float *row = x + (size_t)r * ldx;
        if (w->xmul) { qk_smooth_row(w, row, smoothed); row = smoothed; }
        float xscale = qk_quantize_row_reference(row, w->k, q);
        qk_out out = { .y = y + (size_t)r * ldy, .ldy = ldy, .xscale = &xscale, .bias = bias, .accumulate = accumulate };
        for (int i = 0; i < w->n; i++) {
            int32_t acc = 0;
            for (int j = 0; j < w->k; j++) acc += (int32_t)q[j] * (int32_t)w->packed[qk_packed_index(w, i, j)];
            qk_store_one(&out, w, 0, i, acc);
        }
    }
    free(q);
    return 0;
}

// MARK: the portable kernel

void qk_block_portable(const int8_t *a, int lda, int m, const qk_i8_matrix *w, const qk_out *out) {
    int kq = w->k_padded / 4;
    for (int p = 0; p < w->n_padded / 16; p++) {
        const int8_t *panel = w->packed + (size_t)p * kq * 64;
        for (int r = 0; r < m; r++) {
            const int8_t *row = a + (size_t)r * lda;
            // Lane j of a group holds channel j / 4's input j % 4: 64 independent int32 sums, which
            // compilers vectorize for any SIMD width; each channel adds its four lanes at the end.
            int32_t lanes[64] = {0};
            int8_t repeated[64];
            for (int g = 0; g < kq; g++) {
                for (int j = 0; j < 64; j++) repeated[j] = row[4 * g + (j & 3)];
                const int8_t *group = panel + (size_t)g * 64;
                for (int j = 0; j < 64; j++) lanes[j] += (int32_t)repeated[j] * (int32_t)group[j];
            }
            for (int i = 0; i < 16 && p * 16 + i < w->n; i++)
                qk_store_one(out, w, r, p * 16 + i, lanes[4 * i] + lanes[4 * i + 1] + lanes[4 * i + 2] + lanes[4 * i + 3]);
        }
    }
}

// MARK: memory

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void qk_release_freed_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
