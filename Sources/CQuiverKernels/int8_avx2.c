// The AVX2 int8 kernel: 4 rows x 16 output channels per step, vpmaddubsw(|a|, sign(w, a)) then
// vpmaddwd with ones. |a| <= 127 and |w| <= 127, so a pair sums to at most 32,258 and the 16-bit
// intermediate never saturates: the int32 results are exact.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "int8_internal.h"

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 float qk_quantize_avx2(const float *x, int k, int kp, int8_t *q, int offset) {
    const __m256 signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= k; j += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + j), signless));
    float lanes[8], maxabs = 0, scale;
    _mm256_storeu_ps(lanes, vmax);
    for (int l = 0; l < 8; l++) maxabs = fmaxf(maxabs, lanes[l]);
    for (; j < k; j++) maxabs = fmaxf(maxabs, fabsf(x[j]));
    float inv = qk_row_inverse(maxabs, &scale);
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127), off = _mm256_set1_epi32(offset);
    for (j = 0; j + 8 <= k; j += 8) {
        __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv));
        v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), off);
        // 8 int32 in [0, 255] -> 8 bytes (the packs saturate, but nothing is out of range here)
        __m256i w16 = _mm256_packs_epi32(v, v);
        __m128i w16l = _mm_unpacklo_epi64(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        __m128i b = offset ? _mm_packus_epi16(w16l, w16l) : _mm_packs_epi16(w16l, w16l);
        _mm_storel_epi64((__m128i *)(q + j), b);
    }
    for (; j < k; j++) q[j] = qk_quantize_one(x[j], inv, offset);
    for (; j < kp; j++) q[j] = (int8_t)(uint8_t)offset;
    return scale;
}

/// Stores 8 results of row r starting at column col (fewer past n).
static inline __attribute__((always_inline)) AVX2
void avx2_store8(const qk_out *out, const qk_i8_matrix *w, int r, int col, __m256i acc) {
    if (col + 8 > w->n) {
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, acc);
        for (int i = 0; col + i < w->n; i++) qk_store_one(out, w, r, col + i, tmp[i]);
        return;
    }
    if (out->c) { _mm256_storeu_si256((__m256i *)(out->c + (size_t)r * out->ldc + col), acc); return; }
    float *y = out->y + (size_t)r * out->ldy + col;
    __m256 s = _mm256_mul_ps(_mm256_set1_ps(out->xscale[r]), _mm256_loadu_ps(w->scales + col));
    __m256 b = out->bias ? _mm256_loadu_ps(out->bias + col) : _mm256_setzero_ps();
    __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), s, b);
    if (out->accumulate) t = _mm256_add_ps(_mm256_loadu_ps(y), t);
    _mm256_storeu_ps(y, t);
}

static inline __attribute__((always_inline)) AVX2
void avx2_micro(const int MR, const int8_t *a, int lda, const int8_t *panel, int kq,
                const qk_i8_matrix *w, int col, const qk_out *out, int row) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[4][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < kq; g++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(panel + (size_t)g * 64));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(panel + (size_t)g * 64 + 32));
        for (int r = 0; r < MR; r++) {
            int32_t four;
            memcpy(&four, a + (size_t)r * lda + 4 * g, 4);
            __m256i av = _mm256_set1_epi32(four), aa = _mm256_abs_epi8(av);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(b0, av)), ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(b1, av)), ones));
        }
    }
    for (int r = 0; r < MR; r++) {
        avx2_store8(out, w, row + r, col, acc[r][0]);
        if (col + 8 < w->n) avx2_store8(out, w, row + r, col + 8, acc[r][1]);
    }
}

AVX2 void qk_block_avx2(const int8_t *a, int lda, int m, const qk_i8_matrix *w, const qk_out *out) {
    int kq = w->k_padded / 4;
    for (int p = 0; p < w->n_padded / 16; p++) {
        const int8_t *panel = w->packed + (size_t)p * kq * 64;
        int r = 0;
        for (; r + 4 <= m; r += 4) avx2_micro(4, a + (size_t)r * lda, lda, panel, kq, w, p * 16, out, r);
        switch (m - r) {
        case 3: avx2_micro(3, a + (size_t)r * lda, lda, panel, kq, w, p * 16, out, r); break;
        case 2: avx2_micro(2, a + (size_t)r * lda, lda, panel, kq, w, p * 16, out, r); break;
        case 1: avx2_micro(1, a + (size_t)r * lda, lda, panel, kq, w, p * 16, out, r); break;
        default: break;
        }
    }
}
#endif
