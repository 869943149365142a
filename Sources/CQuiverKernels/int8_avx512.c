// The AVX-512 VNNI int8 kernel: 8 rows x 48 output channels per step, vpdpbusd on activations stored
// unsigned (q + 128), with 128 * sum_j w[i][j] subtracted from each result: exact int32.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "int8_internal.h"

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

VNNI float qk_quantize_avx512(const float *x, int k, int kp, int8_t *q, int offset) {
    __m512 vmax = _mm512_setzero_ps();
    int j = 0;
    for (; j < k; j += 16) {
        __mmask16 mask = k - j >= 16 ? 0xffff : (__mmask16)((1u << (k - j)) - 1);
        vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, x + j)));
    }
    float scale;
    float inv = qk_row_inverse(_mm512_reduce_max_ps(vmax), &scale);
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), off = _mm512_set1_epi32(offset);
    for (j = 0; j < kp; j += 16) {
        __mmask16 in = k - j >= 16 ? 0xffff : (k > j ? (__mmask16)((1u << (k - j)) - 1) : 0);
        __mmask16 store = kp - j >= 16 ? 0xffff : (__mmask16)((1u << (kp - j)) - 1);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(in, x + j), vinv));
        v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), off);
        _mm_mask_storeu_epi8(q + j, store, _mm512_cvtepi32_epi8(v));
    }
    return scale;
}

/// The results of one row for 16 channels from col: compensated, then stored or dequantized (masked past n).
static inline __attribute__((always_inline)) VNNI
void vnni_store16(const qk_out *out, const qk_i8_matrix *w, int r, int col, __m512i acc) {
    acc = _mm512_sub_epi32(acc, _mm512_slli_epi32(_mm512_loadu_si512(w->sums + col), 7));
    __mmask16 mask = w->n - col >= 16 ? 0xffff : (__mmask16)((1u << (w->n - col)) - 1);
    if (out->c) { _mm512_mask_storeu_epi32(out->c + (size_t)r * out->ldc + col, mask, acc); return; }
    float *y = out->y + (size_t)r * out->ldy + col;
    __m512 s = _mm512_mul_ps(_mm512_set1_ps(out->xscale[r]), _mm512_loadu_ps(w->scales + col));
    __m512 b = out->bias ? _mm512_maskz_loadu_ps(mask, out->bias + col) : _mm512_setzero_ps();
    __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), s, b);
    if (out->accumulate) t = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, y), t);
    _mm512_mask_storeu_ps(y, mask, t);
}

static inline __attribute__((always_inline)) VNNI
void vnni_micro(const int MR, const int NP, const int8_t *a, int lda, const int8_t *panel, size_t panel_bytes,
                int kq, const qk_i8_matrix *w, int col, const qk_out *out, int row) {
    __m512i acc[8][3];
    for (int r = 0; r < MR; r++) for (int p = 0; p < NP; p++) acc[r][p] = _mm512_setzero_si512();
    for (int g = 0; g < kq; g++) {
        __m512i b[3];
        for (int p = 0; p < NP; p++) b[p] = _mm512_loadu_si512(panel + p * panel_bytes + (size_t)g * 64);
        for (int r = 0; r < MR; r++) {
            int32_t four;
            memcpy(&four, a + (size_t)r * lda + 4 * g, 4);
            __m512i av = _mm512_set1_epi32(four);
            for (int p = 0; p < NP; p++) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], av, b[p]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++)
            if (col + 16 * p < w->n) vnni_store16(out, w, row + r, col + 16 * p, acc[r][p]);
}

#define VNNI_ROWS(NP) \
    switch (mr) { \
    case 8: vnni_micro(8, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    case 7: vnni_micro(7, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    case 6: vnni_micro(6, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    case 5: vnni_micro(5, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    case 4: vnni_micro(4, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    case 3: vnni_micro(3, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    case 2: vnni_micro(2, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    default: vnni_micro(1, NP, ar, lda, panel, panel_bytes, kq, w, col, out, r); break; \
    }

VNNI void qk_block_avx512_vnni(const int8_t *a, int lda, int m, const qk_i8_matrix *w, const qk_out *out) {
    int kq = w->k_padded / 4, panels = w->n_padded / 16;
    size_t panel_bytes = (size_t)kq * 64;
    for (int p = 0; p < panels; p += 3) {
        int np = panels - p < 3 ? panels - p : 3, col = p * 16;
        const int8_t *panel = w->packed + (size_t)p * panel_bytes;
        for (int r = 0; r < m; r += 8) {
            int mr = m - r < 8 ? m - r : 8;
            const int8_t *ar = a + (size_t)r * lda;
            if (np == 3) { VNNI_ROWS(3) } else if (np == 2) { VNNI_ROWS(2) } else { VNNI_ROWS(1) }
        }
    }
}
#endif
