// GEMM in the BLIS style: op(B) is packed into panels of NR columns, op(A)
// into panels of MR rows (or read in place), and a register-blocked
// microkernel computes one MR x NR tile of C from one A panel and one B panel.
//
// Reproducibility: every element of C is computed by the same sequence of
// operations whatever the thread count and however the work is split: the K
// blocking depends on k only, each KC block is summed by the microkernel in
// k order (one FMA chain per element), the blocks are added in k order by the
// one job that owns the element, and edge tiles run the same arithmetic.
// Threads only divide up blocks of C (see Plan).
#include "gemm.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "pool.h"
#include "simd.h"

#if defined(UNTIE_X86)
#include <immintrin.h>
#endif
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

namespace untie {
namespace {

// lda is used only by the direct-A kernels (see ukr_avx512_t); ldb is the
// floats from one k step of B to the next (NR when packed; the portable
// kernel reads packed B only).
typedef void (*MicroKernel)(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                            int64_t ldc, int mr, int nr, float alpha, float beta);

// How a microkernel reads op(A): packed panels, or in place from A stored
// (m, k) (kRows) or (k, m) (kCols).
enum AMode { kPacked, kRows, kCols };

struct KernelCfg {
  int MR, NR, KC, MC;
  // The microkernels mask their loads of B past nr, so B may be read in
  // place for a partial panel.
  bool b_masked;
  MicroKernel ukr;
  // Kernels that read op(A) in place, without packing (null if none): for
  // A stored (m, k) and A stored (k, m). See choose_amode for when.
  MicroKernel ukr_direct_rows, ukr_direct_cols;
};

// ---------------------------------------------------------------- packing

#if defined(UNTIE_X86)
void pack_transpose_avx2(const float* src, int64_t ld, int rows, int64_t kc, int W, float* dst);
#endif

// op(A) rows [i0, i0+mc), cols [p0, p0+kc) -> panels of MR rows, each stored
// k-major (MR floats per k), rows past mc zero-filled.
template <int MR>
void pack_a(const float* A, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* Ap) {
  for (int64_t ip = 0; ip < mc; ip += MR) {
    const int mr = (int)(mc - ip < MR ? mc - ip : MR);
    float* dst = Ap + ip * kc;
    if (!trans) {
      // A is (m, k): row i at A + i*lda.
#if defined(UNTIE_X86)
      if (simd_level() >= kAvx2) {
        pack_transpose_avx2(A + (i0 + ip) * lda + p0, lda, mr, kc, MR, dst);
        continue;
      }
#endif
      for (int r = 0; r < mr; r++) {
        const float* src = A + (i0 + ip + r) * lda + p0;
        for (int64_t p = 0; p < kc; p++) dst[p * MR + r] = src[p];
      }
      for (int r = mr; r < MR; r++)
        for (int64_t p = 0; p < kc; p++) dst[p * MR + r] = 0.0f;
    } else {
      // A is (k, m): op(A)[i][p] = A[p*lda + i].
      for (int64_t p = 0; p < kc; p++) {
        const float* src = A + (p0 + p) * lda + i0 + ip;
        float* d = dst + p * MR;
        int r = 0;
        for (; r < mr; r++) d[r] = src[r];
        for (; r < MR; r++) d[r] = 0.0f;
      }
    }
  }
}

// op(B) rows [p0, p0+kc), cols [j0 + jp0*NR, j0 + jp1*NR) clipped to j0+nc ->
// panels of NR columns, each stored k-major (NR floats per k), zero-filled.
template <int NR>
void pack_b(const float* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            int64_t jp0, int64_t jp1, float* Bp) {
  for (int64_t jp = jp0; jp < jp1; jp++) {
    const int64_t jj = jp * NR;
    const int nr = (int)(nc - jj < NR ? nc - jj : NR);
    float* dst = Bp + jj * kc;
    if (!trans) {
      // B is (k, n): row p at B + p*ldb.
      for (int64_t p = 0; p < kc; p++) {
        const float* src = B + (p0 + p) * ldb + j0 + jj;
        float* d = dst + p * NR;
        if (nr == NR) {
          std::memcpy(d, src, sizeof(float) * NR);
        } else {
          int c = 0;
          for (; c < nr; c++) d[c] = src[c];
          for (; c < NR; c++) d[c] = 0.0f;
        }
      }
    } else {
      // B is (n, k): op(B)[p][j] = B[j*ldb + p].
#if defined(UNTIE_X86)
      if (simd_level() >= kAvx2) {
        pack_transpose_avx2(B + (j0 + jj) * ldb + p0, ldb, nr, kc, NR, dst);
        continue;
      }
#endif
      for (int c = 0; c < nr; c++) {
        const float* src = B + (j0 + jj + c) * ldb + p0;
        for (int64_t p = 0; p < kc; p++) dst[p * NR + c] = src[p];
      }
      for (int c = nr; c < NR; c++)
        for (int64_t p = 0; p < kc; p++) dst[p * NR + c] = 0.0f;
    }
  }
}

#if defined(UNTIE_X86)
// Transposing pack with 8x8 AVX transposes: the slow direction of packing (A
// not transposed, B transposed); done float by float it costs as much as a
// small GEMM's arithmetic. Compiled twice (pack_impl.h): AVX2's masked store
// (vmaskmovps) is microcoded and slow on AMD, and it made packing a 14-row A
// panel, half of whose stores are masked, cost a third of a k=128 GEMM;
// AVX-512VL's k-masked moves are ordinary instructions.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace pack_avx2 {
#define UNTIE_PACK_AVX512_MASKS 0
#include "pack_impl.h"
#undef UNTIE_PACK_AVX512_MASKS
}  // namespace pack_avx2
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx2,fma")
namespace pack_avx512 {
#define UNTIE_PACK_AVX512_MASKS 1
#include "pack_impl.h"
#undef UNTIE_PACK_AVX512_MASKS
}  // namespace pack_avx512
#pragma GCC pop_options

void pack_transpose_avx2(const float* src, int64_t ld, int rows, int64_t kc, int W, float* dst) {
  if (simd_level() >= kAvx512) pack_avx512::pack_transpose(src, ld, rows, kc, W, dst);
  else pack_avx2::pack_transpose(src, ld, rows, kc, W, dst);
}
#endif

// ---------------------------------------------------------------- microkernels
// Each computes acc = sum_p Ap[p, 0:MR]^T Bp[p, 0:NR] in p order with one FMA
// per step per element, then writes rows < mr, cols < nr of C:
//   beta == 0: C = alpha * acc   (C not read)
//   otherwise: C = alpha * acc + beta * C, with one rounding (fma).

#if defined(UNTIE_X86)

// MR rows x NV*16 columns of C, from B panels of 32 floats per k step and A:
// - AMODE kPacked: A panels with AS floats per k step (AS = the packing's MR;
//   MR < AS for the last, partial panel, so that no arithmetic is spent on
//   padding rows);
// - AMODE kRows: op(A) read in place from A stored (m, k), row r at A + r*lda;
// - AMODE kCols: op(A) read in place from A stored (k, m), step p at A + p*lda.
// The FMAs are the same in every mode, so the results are too.
template <int MR, int NV, int AS, int AMODE>
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"))) void ukr_avx512_t(
    int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, int nr,
    float alpha, float beta) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 32
  for (int r = 0; r < MR; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
  // The C tile is needed only at the end: start bringing it in now.
  for (int r = 0; r < mr; r++) {
    _mm_prefetch((const char*)(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(C + r * ldc + nr - 1), _MM_HINT_T0);
  }
  // B may be read in place (ldb != 32), so columns past nr are not loaded.
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
  for (int64_t p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, B);
    const __m512 b1 = NV == 2 ? _mm512_maskz_loadu_ps(m1, B + 16) : b0;
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
      const __m512 a = _mm512_set1_ps(AMODE == kRows ? A[r * lda] : A[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      if (NV == 2) c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
    A += AMODE == kPacked ? AS : AMODE == kRows ? 1 : lda;
    B += ldb;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
      if (r < mr) {
        _mm512_mask_storeu_ps(C + r * ldc, m0, _mm512_mul_ps(va, c0[r]));
        if (NV == 2) _mm512_mask_storeu_ps(C + r * ldc + 16, m1, _mm512_mul_ps(va, c1[r]));
      }
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
      if (r < mr) {
        const __m512 o0 = _mm512_maskz_loadu_ps(m0, C + r * ldc);
        _mm512_mask_storeu_ps(C + r * ldc, m0, _mm512_fmadd_ps(va, c0[r], _mm512_mul_ps(vb, o0)));
        if (NV == 2) {
          const __m512 o1 = _mm512_maskz_loadu_ps(m1, C + r * ldc + 16);
          _mm512_mask_storeu_ps(C + r * ldc + 16, m1, _mm512_fmadd_ps(va, c1[r], _mm512_mul_ps(vb, o1)));
        }
      }
    }
  }
}

constexpr int kAvx512MR = 14;
#define UKR_PAIR(mr, mode) {ukr_avx512_t<mr, 1, kAvx512MR, mode>, ukr_avx512_t<mr, 2, kAvx512MR, mode>}
#define UKR_TABLE(mode)                                                                                        \
  {                                                                                                            \
    {nullptr, nullptr}, UKR_PAIR(1, mode), UKR_PAIR(2, mode), UKR_PAIR(3, mode), UKR_PAIR(4, mode),            \
        UKR_PAIR(5, mode), UKR_PAIR(6, mode), UKR_PAIR(7, mode), UKR_PAIR(8, mode), UKR_PAIR(9, mode),         \
        UKR_PAIR(10, mode), UKR_PAIR(11, mode), UKR_PAIR(12, mode), UKR_PAIR(13, mode), UKR_PAIR(14, mode),    \
  }
const MicroKernel avx512_kernels[3][kAvx512MR + 1][2] = {UKR_TABLE(kPacked), UKR_TABLE(kRows), UKR_TABLE(kCols)};
#undef UKR_TABLE
#undef UKR_PAIR

// 14 x 32, or the smallest kernel that covers an edge tile (mr x nr).
void ukr_avx512(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, int nr,
                float alpha, float beta) {
  avx512_kernels[kPacked][mr][nr > 16](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}
void ukr_avx512_rows(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, int nr,
                     float alpha, float beta) {
  avx512_kernels[kRows][mr][nr > 16](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}
void ukr_avx512_cols(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, int nr,
                     float alpha, float beta) {
  avx512_kernels[kCols][mr][nr > 16](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}

// C (MR rows of NV*8, ldc apart) = alpha * acc + beta * C; beta = 0 never reads C.
template <int MR, int NV>
__attribute__((target("avx2,fma"), always_inline)) inline void avx2_store(const __m256* c0, const __m256* c1,
                                                                          float* C, int64_t ldc, float alpha,
                                                                          float beta) {
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      _mm256_storeu_ps(C + r * ldc, _mm256_mul_ps(va, c0[r]));
      if (NV == 2) _mm256_storeu_ps(C + r * ldc + 8, _mm256_mul_ps(va, c1[r]));
    }
    return;
  }
  const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    const __m256 o0 = _mm256_loadu_ps(C + r * ldc);
    _mm256_storeu_ps(C + r * ldc, _mm256_fmadd_ps(va, c0[r], _mm256_mul_ps(vb, o0)));
    if (NV == 2) {
      const __m256 o1 = _mm256_loadu_ps(C + r * ldc + 8);
      _mm256_storeu_ps(C + r * ldc + 8, _mm256_fmadd_ps(va, c1[r], _mm256_mul_ps(vb, o1)));
    }
  }
}

// MR rows x NV*8 columns of C (MR <= 6, NV <= 2: up to 12 accumulators in
// ymm registers), from B panels read with ldb floats from one k step to the
// next (16 when packed; B stored (k, n) read in place has ldb = n, and then
// only full panels are read in place, see plan_gemm), and A in the modes of
// ukr_avx512_t (packed with AS = 6 floats per k step, or read in place).
// Columns past nr are computed (B panels are zero-padded or full) but not
// stored: such an edge tile goes through a small temporary.
template <int MR, int NV, int AMODE>
__attribute__((target("avx2,fma"))) void ukr_avx2_t(int64_t kc, const float* A, int64_t lda, const float* B,
                                                    int64_t ldb, float* C, int64_t ldc, int mr, int nr, float alpha,
                                                    float beta) {
  constexpr int AS = 6;
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_loadu_ps(B);
    const __m256 b1 = NV == 2 ? _mm256_loadu_ps(B + 8) : b0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m256 a = _mm256_broadcast_ss(AMODE == kRows ? A + r * lda : A + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      if (NV == 2) c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    A += AMODE == kPacked ? AS : AMODE == kRows ? 1 : lda;
    B += ldb;
  }
  if (nr == NV * 8) {
    avx2_store<MR, NV>(c0, c1, C, ldc, alpha, beta);
    return;
  }
  // Edge tile (nr < NV * 8 columns).
  alignas(32) float tile[MR * 16] = {};
  const int cols = nr < NV * 8 ? nr : NV * 8, rows = mr < MR ? mr : MR;
  if (beta != 0.0f)
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < cols; c++) tile[r * 16 + c] = C[r * ldc + c];
  avx2_store<MR, NV>(c0, c1, tile, 16, alpha, beta);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) C[r * ldc + c] = tile[r * 16 + c];
}

constexpr int kAvx2MR = 6;
#define UKR2_PAIR(mr, mode) {ukr_avx2_t<mr, 1, mode>, ukr_avx2_t<mr, 2, mode>}
#define UKR2_TABLE(mode)                                                                                     \
  {                                                                                                          \
    {nullptr, nullptr}, UKR2_PAIR(1, mode), UKR2_PAIR(2, mode), UKR2_PAIR(3, mode), UKR2_PAIR(4, mode),     \
        UKR2_PAIR(5, mode), UKR2_PAIR(6, mode),                                                              \
  }
const MicroKernel avx2_kernels[3][kAvx2MR + 1][2] = {UKR2_TABLE(kPacked), UKR2_TABLE(kRows), UKR2_TABLE(kCols)};
#undef UKR2_TABLE
#undef UKR2_PAIR

// 6 x 16, or the smallest kernel that covers an edge tile (mr x nr).
void ukr_avx2(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, int mr,
              int nr, float alpha, float beta) {
  avx2_kernels[kPacked][mr][nr > 8](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}
void ukr_avx2_rows(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                   int mr, int nr, float alpha, float beta) {
  avx2_kernels[kRows][mr][nr > 8](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}
void ukr_avx2_cols(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                   int mr, int nr, float alpha, float beta) {
  avx2_kernels[kCols][mr][nr > 8](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}

#endif  // UNTIE_X86

#if defined(__wasm_simd128__)
// WebAssembly SIMD128 (the wasm build, native/wasm/): MR rows x NV*4 columns
// of C in v128 accumulators, from packed A (AS floats per k step) and packed
// B (NR = WASM_NV*4 floats per k step). SIMD128 has no FMA, so each step is a
// multiply and an add (two roundings, as the portable kernel without FMA).
// The engine (V8's TurboFan on x86-64) maps a v128 to an xmm register, 16 of
// them: MR * NV accumulators, NV B vectors and the broadcast A value must fit.
// Edge tiles (mr < MR) run the smallest kernel that covers them; columns past
// nr are computed (B panels are zero-padded) and not stored.
#ifndef WASM_MR
#define WASM_MR 4
#endif
#ifndef WASM_NV
#define WASM_NV 2
#endif
constexpr int kWasmMR = WASM_MR, kWasmNV = WASM_NV, kWasmNR = 4 * WASM_NV;

template <int MR>
void ukr_wasm_t(int64_t kc, const float* A, int64_t, const float* B, int64_t, float* C, int64_t ldc, int mr, int nr,
                float alpha, float beta) {
  constexpr int NV = kWasmNV, AS = kWasmMR;
  v128_t c[MR][NV];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++)
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) c[r][v] = wasm_f32x4_splat(0.0f);
  for (int64_t p = 0; p < kc; p++) {
    v128_t b[NV];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) b[v] = wasm_v128_load(B + 4 * v);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
      const v128_t a = wasm_v128_load32_splat(A + r);
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; v++) c[r][v] = wasm_f32x4_add(c[r][v], wasm_f32x4_mul(a, b[v]));
    }
    A += AS;
    B += 4 * NV;
  }
  const v128_t va = wasm_f32x4_splat(alpha), vb = wasm_f32x4_splat(beta);
  float tile[MR * 4 * NV];
  const bool full = nr == 4 * NV;
  float* dst = full ? C : tile;
  const int64_t ld = full ? ldc : 4 * NV;
  const int rows = mr < MR ? mr : MR;
  if (!full && beta != 0.0f)
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < nr; j++) tile[r * 4 * NV + j] = C[r * ldc + j];
#pragma clang loop unroll(full)
  for (int r = 0; r < MR; r++) {
    if (r < rows) {
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; v++) {
        float* d = dst + r * ld + 4 * v;
        v128_t o = wasm_f32x4_mul(va, c[r][v]);
        if (beta != 0.0f) o = wasm_f32x4_add(o, wasm_f32x4_mul(vb, wasm_v128_load(d)));
        wasm_v128_store(d, o);
      }
    }
  }
  if (!full)
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < nr; j++) C[r * ldc + j] = tile[r * 4 * NV + j];
}

template <int... R>
struct WasmKernels {
  static constexpr MicroKernel table[] = {nullptr, ukr_wasm_t<R>...};
};
template <int N, int... R>
struct WasmSeq : WasmSeq<N - 1, N, R...> {};
template <int... R>
struct WasmSeq<0, R...> : WasmKernels<R...> {};

void ukr_wasm(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, int mr,
              int nr, float alpha, float beta) {
  WasmSeq<kWasmMR>::table[mr](kc, A, lda, B, ldb, C, ldc, mr, nr, alpha, beta);
}
#endif  // __wasm_simd128__

// Portable kernel: plain loops that the compiler vectorises (SSE2 on baseline
// x86-64, NEON on arm64).
constexpr int kScalarMR = 4, kScalarNR = 16;

static inline float madd(float a, float b, float c) {
#if defined(__FMA__) || defined(__aarch64__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

void ukr_scalar(int64_t kc, const float* A, int64_t, const float* B, int64_t, float* C, int64_t ldc, int mr, int nr,
                float alpha, float beta) {
  float acc[kScalarMR][kScalarNR] = {};
  for (int64_t p = 0; p < kc; p++) {
    for (int r = 0; r < kScalarMR; r++) {
      const float a = A[r];
      for (int c = 0; c < kScalarNR; c++) acc[r][c] = madd(a, B[c], acc[r][c]);
    }
    A += kScalarMR;
    B += kScalarNR;
  }
  for (int r = 0; r < mr; r++)
    for (int c = 0; c < nr; c++)
      C[r * ldc + c] = beta == 0.0f ? alpha * acc[r][c] : madd(alpha, acc[r][c], beta * C[r * ldc + c]);
}

// ---------------------------------------------------------------- configs

// Blocking. AVX-512, measured on Zen 5 (48 KB L1, 1 MB L2): the MC x KC block
// of A stays in L2; KC = 512 beat 256 and 384 for k = 1024 (fewer passes over
// C) although a 512 x 32 B panel (64 KB) then streams from L2 rather than L1.
// AVX2, measured on Zen 3 (32 KB L1, 512 KB L2): KC = 256 keeps a 256 x 16 B
// panel (16 KB) and the 6 x 256 A panel in L1, and MC x KC (144 x 256,
// 144 KB) leaves L2 room for the B panels streaming through it.
#if defined(UNTIE_X86)
const KernelCfg cfg_avx512 = {kAvx512MR, 32, 512, 14 * 24, true, ukr_avx512, ukr_avx512_rows, ukr_avx512_cols};
const KernelCfg cfg_avx2 = {kAvx2MR, 16, 256, 6 * 24, false, ukr_avx2, ukr_avx2_rows, ukr_avx2_cols};
#endif
[[maybe_unused]] const KernelCfg cfg_scalar = {kScalarMR, kScalarNR, 256, 4 * 64, false, ukr_scalar, nullptr, nullptr};
#if defined(__wasm_simd128__)
const KernelCfg cfg_wasm = {kWasmMR, kWasmNR, 256, kWasmMR * 32, false, ukr_wasm, nullptr, nullptr};
#endif

void do_pack_a(const KernelCfg& K, const float* A, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0,
               int64_t kc, float* Ap) {
#if defined(__wasm_simd128__)
  // The wasm build has one configuration (its MR may equal another's).
  pack_a<kWasmMR>(A, lda, trans, i0, mc, p0, kc, Ap);
  (void)K;
  return;
#endif
  switch (K.MR) {
    case 14: pack_a<14>(A, lda, trans, i0, mc, p0, kc, Ap); break;
    case 6: pack_a<6>(A, lda, trans, i0, mc, p0, kc, Ap); break;
    default: pack_a<kScalarMR>(A, lda, trans, i0, mc, p0, kc, Ap); break;
  }
}

void do_pack_b(const KernelCfg& K, const float* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
               int64_t nc, int64_t jp0, int64_t jp1, float* Bp) {
#if defined(__wasm_simd128__)
  pack_b<kWasmNR>(B, ldb, trans, p0, kc, j0, nc, jp0, jp1, Bp);
  (void)K;
  return;
#endif
  switch (K.NR) {
    case 32: pack_b<32>(B, ldb, trans, p0, kc, j0, nc, jp0, jp1, Bp); break;
    default: pack_b<16>(B, ldb, trans, p0, kc, j0, nc, jp0, jp1, Bp); break;
  }
}

// ---------------------------------------------------------------- workspace

// Per-thread packing buffers, kept between calls (allocating megabytes per
// call would cost page faults every time).
struct Buffer {
  float* p = nullptr;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) std::abort();
      cap = n;
    }
    return p;
  }
};
UNTIE_THREAD_LOCAL Buffer tls_a, tls_b;

// What tls_b holds: op(B) of batch item `item`, columns of job column `jb`,
// all K blocks, packed for call `call`. A thread that runs several jobs of
// the same columns packs them once.
struct PackedB {
  uint64_t call = 0;
  int64_t item = -1, jb = -1;
};
UNTIE_THREAD_LOCAL PackedB tls_b_holds;
std::atomic<uint64_t> call_counter{0};

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return cdiv(a, b) * b; }

// K blocking depends on k only, so results do not depend on the job plan.
inline int64_t kc_block(const KernelCfg& K, int64_t k) {
  const int64_t nkb = cdiv(k, K.KC);
  return cdiv(k, nkb);
}

// The most floats of packed B one job may hold (all K blocks of its
// columns): 4 MB, which bounds the job's column width for large k.
constexpr int64_t kPackedBBudget = (int64_t)1 << 20;

// ---------------------------------------------------------------- the plan

// C is computed in jobs: a job is one block of rows x columns of one batch
// item, over all of K, so the whole sum of every element it owns is formed
// by one thread. Jobs are claimed from the pool one at a time; each thread
// packs what its job needs into its own buffers (no barrier, no shared
// packing: a descheduled thread delays only its own job).
struct Plan {
  const KernelCfg* K;
  const float* a;
  const float* b;
  float* c;
  int64_t batch, m, n, k;
  bool ta, tb;
  int64_t sa, sb, sc, lda, ldb, ldc;
  float alpha, beta;
  int64_t kcb;
  MicroKernel ukr;  // for the A mode below
  int amode;        // kPacked, kRows or kCols (kPacked when the path has no in-place kernels)
  bool direct_b;    // op(B) read in place (B stored (k, n))
  int64_t mb, nb;   // job size (multiples of MR and NR, but for the last job of a row or column)
  int64_t mj, nj;   // jobs per batch item along m and n
  uint64_t call;
};

// Read op(A) in place instead of packing it (AVX-512 measurements, Zen 5):
// when A is stored (k, m), a k step of a panel is already contiguous (10-25%
// faster on the weight-gradient shapes, m128-512 n128 k4096); otherwise when a
// packed panel would be used at most 4 times (n <= 4 NR) or is a few cache
// lines per row (k <= 64: attention scores, k = head size). But not A stored
// (k, m) with m > 512 and more panels than that: its k steps are 2 KB or
// more apart, a new page every step or two, and each of the n / NR panels
// would walk them all again (the decoder's weight gradient, m8192 n256 k621,
// ran at 44 GFLOP/s in place on Zen 3, packed at 62).
int choose_amode(const KernelCfg& K, bool ta, int64_t m, int64_t n, int64_t k) {
  if (!K.ukr_direct_rows) return kPacked;
  if (ta) return m <= 512 || n <= 4 * K.NR ? kCols : kPacked;
  return n <= 4 * K.NR || k <= 64 ? kRows : kPacked;
}

Plan plan_gemm(const KernelCfg& K, const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n,
               int64_t k, bool ta, bool tb, int64_t sa, int64_t sb, int64_t sc, float alpha, float beta, int threads) {
  Plan P;
  P.K = &K;
  P.a = a, P.b = b, P.c = c;
  P.batch = batch, P.m = m, P.n = n, P.k = k;
  P.ta = ta, P.tb = tb;
  P.sa = sa, P.sb = sb, P.sc = sc;
  P.lda = ta ? m : k, P.ldb = tb ? k : n, P.ldc = n;
  P.alpha = alpha, P.beta = beta;
  P.kcb = kc_block(K, k);
  P.amode = choose_amode(K, ta, m, n, k);
  P.ukr = P.amode == kPacked ? K.ukr : P.amode == kRows ? K.ukr_direct_rows : K.ukr_direct_cols;
  // B stored (k, n) is read in place when few row tiles would reuse a packed
  // panel (m <= 16 MR: the weight-gradient shapes m128 n128-512 k4096 TN
  // gained 2-9% on AVX-512); with many row tiles (m8192 n128 k621 TN) a
  // packed, contiguous panel is faster. Only kernels that mask their B loads
  // read a partial panel in place.
  P.direct_b = P.amode != kPacked && !tb && m <= 16 * K.MR && (K.b_masked || n % K.NR == 0);
  P.call = call_counter.fetch_add(1, std::memory_order_relaxed) + 1;

  const int64_t MR = K.MR, NR = K.NR;
  const int64_t m_pad = round_up(m, MR), n_pad = round_up(n, NR);
  // Column width: all of n unless its packed K x n would exceed the budget.
  int64_t nb_max = P.direct_b ? n_pad : (kPackedBBudget / k) / NR * NR;
  if (nb_max < NR) nb_max = NR;
  if (nb_max > n_pad) nb_max = n_pad;
  // Jobs wanted per batch item: enough for every thread to claim several,
  // so that the load evens out and a descheduled thread holds up little.
  const int64_t want = threads <= 1 ? 1 : cdiv(kChunksPerThread * threads, batch);
  // Split into mj x nj jobs at the least packing done twice: a column block
  // of B is packed by each thread that runs one of its row blocks (up to
  // min(T, mj) times), A's rows once per column block (nj times). A
  // transposing pack costs about twice a copying one; reading A in place
  // costs a quarter of packing it (it is read again, not written).
  const double cost_a = P.amode == kPacked ? (ta ? 1.0 : 2.0) : 0.25;
  const double cost_b = P.direct_b ? 0.0 : tb ? 2.0 : 1.0;
  const int64_t nj_min = cdiv(n_pad, nb_max), nj_max = n_pad / NR, mj_max = m_pad / MR;
  int64_t mj = 1, nj = nj_min;
  double best = -1;
  for (int64_t j = nj_min; j <= nj_max && j <= (want > nj_min ? want : nj_min); j++) {
    int64_t i = cdiv(want, j);
    if (i > mj_max) i = mj_max;
    const double copies_b = (double)(i < threads ? i : threads);
    const double cost = copies_b * (double)(k * n) * cost_b + (double)j * (double)(m * k) * cost_a;
    if (best < 0 || cost < best) best = cost, mj = i, nj = j;
  }
  const int64_t mb = round_up(cdiv(m_pad, mj), MR), nb = round_up(cdiv(n_pad, nj), NR);
  P.mb = mb, P.nb = nb;
  P.mj = cdiv(m, mb), P.nj = cdiv(n, nb);
  return P;
}

// Job j: batch item, then column block, then row block (so that the jobs a
// thread claims in a row mostly share their columns of B).
void run_job(const Plan& P, int64_t j) {
  const KernelCfg& K = *P.K;
  const int64_t per_item = P.mj * P.nj;
  const int64_t item = j / per_item, r = j % per_item;
  const int64_t jb = r / P.mj, ib = r % P.mj;
  const float* A = P.a + item * P.sa;
  const float* B = P.b + item * P.sb;
  float* C = P.c + item * P.sc;
  const int MR = K.MR, NR = K.NR;
  const int64_t i0 = ib * P.mb, i1 = i0 + P.mb < P.m ? i0 + P.mb : P.m;
  const int64_t j0 = jb * P.nb, j1 = j0 + P.nb < P.n ? j0 + P.nb : P.n;
  const int64_t ncols = j1 - j0, npan = cdiv(ncols, NR), stride_b = npan * NR;

  float* Bp = nullptr;
  if (!P.direct_b) {
    Bp = tls_b.get((size_t)(P.k * stride_b));
    PackedB& held = tls_b_holds;
    if (held.call != P.call || held.item != (P.sb == 0 ? 0 : item) || held.jb != jb) {
      for (int64_t p0 = 0; p0 < P.k; p0 += P.kcb) {
        const int64_t kc = P.k - p0 < P.kcb ? P.k - p0 : P.kcb;
        do_pack_b(K, B, P.ldb, P.tb, p0, kc, j0, ncols, 0, npan, Bp + p0 * stride_b);
      }
      held.call = P.call, held.item = P.sb == 0 ? 0 : item, held.jb = jb;
    }
  }
  const int64_t mc_max = (int64_t)K.MC;
  float* Ap = P.amode == kPacked ? tls_a.get((size_t)(mc_max * P.kcb)) : nullptr;

  for (int64_t p0 = 0; p0 < P.k; p0 += P.kcb) {
    const int64_t kc = P.k - p0 < P.kcb ? P.k - p0 : P.kcb;
    const float beta = p0 == 0 ? P.beta : 1.0f;
    // Row blocks of at most MC rows: a packed A block stays in L2 while the
    // job's B panels stream past it.
    for (int64_t ic = i0; ic < i1; ic += mc_max) {
      const int64_t ie = ic + mc_max < i1 ? ic + mc_max : i1;
      if (Ap) do_pack_a(K, A, P.lda, P.ta, ic, ie - ic, p0, kc, Ap);
      for (int64_t jp = 0; jp < npan; jp++) {
        const int64_t jj = j0 + jp * NR;
        const int nr = (int)(j1 - jj < NR ? j1 - jj : NR);
        const float* Bpanel = P.direct_b ? B + p0 * P.ldb + jj : Bp + p0 * stride_b + jp * NR * kc;
        const int64_t bstep = P.direct_b ? P.ldb : NR;
        for (int64_t i = ic; i < ie; i += MR) {
          const int mr = (int)(ie - i < MR ? ie - i : MR);
          const float* Ai = Ap ? Ap + (i - ic) * kc : P.amode == kRows ? A + i * P.lda + p0 : A + p0 * P.lda + i;
          P.ukr(kc, Ai, P.lda, Bpanel, bstep, C + i * P.ldc + jj, P.ldc, mr, nr, P.alpha, beta);
        }
      }
    }
  }
}

const KernelCfg& current_cfg() {
#if defined(UNTIE_X86)
  switch (simd_level()) {
    case kAvx512: return cfg_avx512;
    case kAvx2: return cfg_avx2;
    default: break;
  }
#endif
#if defined(__wasm_simd128__)
  return cfg_wasm;
#else
  return cfg_scalar;
#endif
}

void run_plan(const Plan& P, int threads) {
  auto body = [&P](int64_t j) { run_job(P, j); };
  parallel_chunks(P.batch * P.mj * P.nj, threads, body);
}

}  // namespace

void gemm(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool transA,
          bool transB, int64_t strideA, int64_t strideB, int64_t strideC, float alpha, float beta) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  if (k == 0) {
    // op(A) @ op(B) is all zeros.
    for (int64_t bi = 0; bi < batch; bi++) {
      float* C = c + bi * strideC;
      for (int64_t i = 0; i < m * n; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
    }
    return;
  }
  const KernelCfg& K = current_cfg();
  const double flops = 2.0 * (double)m * (double)n * (double)k * (double)batch;
  // Too small to be worth waking another thread.
  const int threads = flops < 5e5 ? 1 : pool_get_threads();
  // Outputs that overlap across batch items must be computed in order.
  const bool overlapping = batch > 1 && strideC < m * n;
  if (!overlapping) {
    run_plan(plan_gemm(K, a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta, threads),
             threads);
    return;
  }
  for (int64_t bi = 0; bi < batch; bi++)
    run_plan(plan_gemm(K, a + bi * strideA, b + bi * strideB, c + bi * strideC, 1, m, n, k, transA, transB, 0, 0, 0,
                       alpha, beta, threads),
             threads);
}

}  // namespace untie
