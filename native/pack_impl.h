// The transposing pack of gemm.cc, compiled there once per instruction set
// (inside namespace pack_<isa>, with the matching `#pragma GCC target` and
// UNTIE_PACK_AVX512_MASKS set). No include guard on purpose.
//
// pack_transpose: src holds `rows` rows (of a panel of width W <= 32) of
// ld-strided floats, kc of them each; writes dst[p*W + r] for r < W (rows past
// `rows` as zeros), p < kc, with 8x8 transposes in registers.

static inline __m256 load_part(const float* s, int n, __m256i mask) {
#if UNTIE_PACK_AVX512_MASKS
  (void)mask;
  return _mm256_maskz_loadu_ps((__mmask8)((1u << n) - 1), s);
#else
  (void)n;
  return _mm256_maskload_ps(s, mask);
#endif
}
static inline void store_part(float* d, int n, __m256i mask, __m256 v) {
#if UNTIE_PACK_AVX512_MASKS
  (void)mask;
  _mm256_mask_storeu_ps(d, (__mmask8)((1u << n) - 1), v);
#else
  (void)n;
  _mm256_maskstore_ps(d, mask, v);
#endif
}

void pack_transpose(const float* src, int64_t ld, int rows, int64_t kc, int W, float* dst) {
  alignas(32) static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int r0 = 0; r0 < W; r0 += 8) {
    const int w = W - r0 < 8 ? W - r0 : 8;  // lanes stored
    const __m256i wmask = _mm256_loadu_si256((const __m256i*)(ramp + 8 - w));
    const int nr = rows - r0 < 0 ? 0 : rows - r0 < 8 ? rows - r0 : 8;  // rows loaded
    for (int64_t p0 = 0; p0 < kc; p0 += 8) {
      const int np = kc - p0 < 8 ? (int)(kc - p0) : 8;
      const __m256i pmask = _mm256_loadu_si256((const __m256i*)(ramp + 8 - np));
      __m256 v[8];
      for (int r = 0; r < 8; r++) {
        if (r < nr) {
          const float* s = src + (r0 + r) * ld + p0;
          v[r] = np == 8 ? _mm256_loadu_ps(s) : load_part(s, np, pmask);
        } else {
          v[r] = _mm256_setzero_ps();
        }
      }
      const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
      const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
      const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
      const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      __m256 o[8];
      o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
      o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
      o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
      o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
      o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
      o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
      o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
      o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
      float* d = dst + p0 * W + r0;
      for (int j = 0; j < np; j++) {
        if (w == 8) _mm256_storeu_ps(d + j * W, o[j]);
        else store_part(d + j * W, w, wmask, o[j]);
      }
    }
  }
}

