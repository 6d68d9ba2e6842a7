// GEMM in the BLIS style: B is packed into panels of NR columns (KC x NC
// blocks), A into panels of MR rows (MC x KC blocks), and a register-blocked
// microkernel computes one MR x NR tile of C from one A panel and one B panel.
//
// Reproducibility: every element of C is computed by the same sequence of
// operations whatever the thread count and however the work is split: the K
// blocking depends on k only, each KC block is summed by the microkernel in
// k order (one FMA chain per element), and edge tiles run the same kernel.
// Threads only divide up tiles of C (or whole batch items).
#include "gemm.h"

#include <cstdlib>
#include <cstring>

#include "pool.h"
#include "simd.h"

#if defined(UNTIE_X86)
#include <immintrin.h>
#endif

namespace untie {
namespace {

// lda is used only by the direct-A kernels (see ukr_avx512_t), ldb (floats
// from one k step of B to the next: NR when packed) by the AVX-512 kernels.
typedef void (*MicroKernel)(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                            int64_t ldc, int mr, int nr, float alpha, float beta);

struct KernelCfg {
  int MR, NR, KC, MC, NC;
  MicroKernel ukr;
  // Kernels that read op(A) in place, without packing (null if none): for
  // A stored (m, k) and A stored (k, m). See gemm_item for when.
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
enum AMode { kPacked, kRows, kCols };
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

// 6 x 16: 12 accumulators in ymm registers.
__attribute__((target("avx2,fma"))) void ukr_avx2_full(int64_t kc, const float* A, const float* B, float* C,
                                                       int64_t ldc, float alpha, float beta) {
  constexpr int MR = 6;
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
  for (int64_t p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m256 a = _mm256_broadcast_ss(A + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    A += MR;
    B += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      _mm256_storeu_ps(C + r * ldc, _mm256_mul_ps(va, c0[r]));
      _mm256_storeu_ps(C + r * ldc + 8, _mm256_mul_ps(va, c1[r]));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m256 o0 = _mm256_loadu_ps(C + r * ldc), o1 = _mm256_loadu_ps(C + r * ldc + 8);
      _mm256_storeu_ps(C + r * ldc, _mm256_fmadd_ps(va, c0[r], _mm256_mul_ps(vb, o0)));
      _mm256_storeu_ps(C + r * ldc + 8, _mm256_fmadd_ps(va, c1[r], _mm256_mul_ps(vb, o1)));
    }
  }
}

__attribute__((target("avx2,fma"))) void ukr_avx2(int64_t kc, const float* A, int64_t, const float* B, int64_t, float* C,
                                                  int64_t ldc, int mr, int nr, float alpha, float beta) {
  if (mr == 6 && nr == 16) return ukr_avx2_full(kc, A, B, C, ldc, alpha, beta);
  // Edge tile: run the same kernel on a full temporary tile.
  alignas(32) float tile[6 * 16];
  if (beta != 0.0f)
    for (int r = 0; r < mr; r++)
      for (int c = 0; c < nr; c++) tile[r * 16 + c] = C[r * ldc + c];
  ukr_avx2_full(kc, A, B, tile, 16, alpha, beta);
  for (int r = 0; r < mr; r++)
    for (int c = 0; c < nr; c++) C[r * ldc + c] = tile[r * 16 + c];
}

#endif  // UNTIE_X86

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

// Blocking, measured on Zen 5 (48 KB L1, 1 MB L2): the MC x KC block of A
// stays in L2; KC = 512 beat 256 and 384 for k = 1024 (fewer passes over C)
// although a 512 x 32 B panel (64 KB) then streams from L2 rather than L1.
#if defined(UNTIE_X86)
const KernelCfg cfg_avx512 = {kAvx512MR, 32, 512, 14 * 24, 4096, ukr_avx512, ukr_avx512_rows, ukr_avx512_cols};
const KernelCfg cfg_avx2 = {6, 16, 256, 6 * 48, 4096, ukr_avx2, nullptr, nullptr};
#endif
const KernelCfg cfg_scalar = {kScalarMR, kScalarNR, 256, 4 * 64, 4096, ukr_scalar, nullptr, nullptr};

void do_pack_a(const KernelCfg& K, const float* A, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0,
               int64_t kc, float* Ap) {
  switch (K.MR) {
    case 14: pack_a<14>(A, lda, trans, i0, mc, p0, kc, Ap); break;
    case 12: pack_a<12>(A, lda, trans, i0, mc, p0, kc, Ap); break;
    case 6: pack_a<6>(A, lda, trans, i0, mc, p0, kc, Ap); break;
    default: pack_a<kScalarMR>(A, lda, trans, i0, mc, p0, kc, Ap); break;
  }
}

void do_pack_b(const KernelCfg& K, const float* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
               int64_t nc, int64_t jp0, int64_t jp1, float* Bp) {
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
thread_local Buffer tls_a, tls_b;

struct Problem {
  const float* a;
  const float* b;
  float* c;
  int64_t m, n, k;
  bool ta, tb;
  float alpha, beta;
};

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// K blocking depends on k only (so results do not depend on threads).
inline int64_t kc_block(const KernelCfg& K, int64_t k) {
  const int64_t nkb = cdiv(k, K.KC);
  return cdiv(k, nkb);
}

// Packing buffer sizes for one problem: one KC x NC block of B (the shared B
// buffer holds two), one MC x KC block of A.
int64_t b_block_floats(const KernelCfg& K, int64_t n, int64_t k) {
  const int64_t nc = n < K.NC ? n : K.NC;
  return kc_block(K, k) * cdiv(nc, K.NR) * K.NR;
}
size_t b_buf_size(const KernelCfg& K, int64_t n, int64_t k) { return 2 * (size_t)b_block_floats(K, n, k); }
size_t a_buf_size(const KernelCfg& K, int64_t k) { return (size_t)K.MC * (size_t)kc_block(K, k); }

// Read op(A) in place instead of packing it: when A is stored (k, m), a k
// step of a panel is already contiguous (measured 10-25% faster on the
// weight-gradient shapes, m128-512 n128 k4096); otherwise when a packed panel
// would be used at most 4 times (n <= 128: the attention GEMMs with n = head
// size, and x @ W^T into hidden 128, m4096 n128 k128 NT: 176 -> 194 GF/s on
// 1 thread, 290 -> 330 on 2; no gain measured at n = 256-1024) or is a few
// cache lines per row (k <= 64: attention scores, k = head size).
MicroKernel direct_kernel(const KernelCfg& K, bool ta, int64_t n, int64_t k) {
  return ta ? K.ukr_direct_cols : n <= 4 * K.NR || k <= 64 ? K.ukr_direct_rows : nullptr;
}

// Per-thread buffer: one MC x KC block of packed A, or with a direct kernel
// the thread's own packed B panels (at most one KC x NC block).
size_t own_buf_size(const KernelCfg& K, bool ta, int64_t n, int64_t k) {
  return direct_kernel(K, ta, n, k) ? (size_t)b_block_floats(K, n, k) : a_buf_size(K, k);
}

// One batch item, computed by T threads together (T may be 1). With packed A,
// Bbuf is shared by the T threads and holds two KC x NC blocks
// (double-buffered, so one barrier per block suffices), and Own (this
// thread's) holds packed A. With a direct kernel there is no A to pack: each
// thread packs the B panels it uses into Own and never waits for the others
// (on a shared machine a descheduled thread would stall every barrier).
void gemm_item(const KernelCfg& K, const Problem& P, int tid, int T, float* Bbuf, float* Own) {
  const int MR = K.MR, NR = K.NR;
  const int64_t m = P.m, n = P.n, k = P.k;
  const int64_t lda = P.ta ? m : k, ldb = P.tb ? k : n, ldc = n;
  const int64_t kcb = kc_block(K, k);
  const int64_t NCmax = (int64_t)K.NC;
  const int64_t bstride = b_block_floats(K, n, k);
  const MicroKernel direct = direct_kernel(K, P.ta, n, k);
  // With direct A and few row tiles to reuse a B panel (m <= 16 * MR), B
  // stored (k, n) is read in place too: the weight-gradient shapes m128
  // n128-512 k4096 TN gained 2-9%; with many row tiles (m8192 n128 k621 TN)
  // a packed, contiguous panel is faster.
  const bool in_place_b = direct && !P.tb && m <= 16 * MR;
  int it = 0;
  for (int64_t jc = 0; jc < n; jc += NCmax) {
    const int64_t nc = n - jc < NCmax ? n - jc : NCmax;
    const int64_t np = cdiv(nc, NR), mp = cdiv(m, MR);
    // Split the C block over T threads as tm x tn; pick the least loaded,
    // counting a thread's packing as about one tile per panel it packs: with
    // packed A each thread packs the A panels of its rows (B is packed once,
    // shared), with direct A the B panels of its columns. (Counting tiles
    // only, m4096 n128 was split by columns, and both threads packed all of A.)
    int tm = T, tn = 1;
    {
      int64_t best = -1;
      for (int d = 1; d <= T; d++) {
        if (T % d) continue;
        const int dm = d, dn = T / d;
        const int64_t rows = cdiv(mp, dm), cols = cdiv(np, dn);
        const int64_t load = direct ? cols * (rows + 1) : rows * (cols + 1);
        if (best < 0 || load < best) { best = load; tm = dm; tn = dn; }
      }
    }
    const int ti = tid / tn, tj = tid % tn;
    const int64_t mp0 = mp * ti / tm, mp1 = mp * (ti + 1) / tm;
    const int64_t np0 = np * tj / tn, np1 = np * (tj + 1) / tn;
    const int64_t i_begin = mp0 * MR, i_end = mp1 * MR < m ? mp1 * MR : m;
    for (int64_t p0 = 0; p0 < k; p0 += kcb) {
      const int64_t kc = k - p0 < kcb ? k - p0 : kcb;
      const float beta = p0 == 0 ? P.beta : 1.0f;
      if (direct) {
        if (i_begin >= i_end || np0 >= np1) continue;
        // Own holds panels [np0, np1): panel jp at (jp - np0) * NR * kc.
        float* Bp = Own - np0 * NR * kc;
        if (!in_place_b) do_pack_b(K, P.b, ldb, P.tb, p0, kc, jc, nc, np0, np1, Bp);
        for (int64_t jp = np0; jp < np1; jp++) {
          const int64_t jj = jp * NR;
          const int nr = (int)(nc - jj < NR ? nc - jj : NR);
          const float* Bpanel = in_place_b ? P.b + p0 * ldb + jc + jj : Bp + jj * kc;
          const int64_t bstep = in_place_b ? ldb : NR;
          for (int64_t i = i_begin; i < i_end; i += MR) {
            const int mr = (int)(i_end - i < MR ? i_end - i : MR);
            const float* Ad = P.ta ? P.a + p0 * lda + i : P.a + i * lda + p0;
            direct(kc, Ad, lda, Bpanel, bstep, P.c + i * ldc + jc + jj, ldc, mr, nr, P.alpha, beta);
          }
        }
        continue;
      }
      float* Bp = Bbuf + (it & 1) * bstride;
      it++;
      do_pack_b(K, P.b, ldb, P.tb, p0, kc, jc, nc, np * tid / T, np * (tid + 1) / T, Bp);
      pool_barrier(T);
      for (int64_t ic = i_begin; ic < i_end; ic += K.MC) {
        const int64_t mc = i_end - ic < K.MC ? i_end - ic : K.MC;
        do_pack_a(K, P.a, lda, P.ta, ic, mc, p0, kc, Own);
        for (int64_t jp = np0; jp < np1; jp++) {
          const int64_t jj = jp * NR;
          const int nr = (int)(nc - jj < NR ? nc - jj : NR);
          const float* Bpanel = Bp + jj * kc;
          for (int64_t ip = 0; ip < mc; ip += MR) {
            const int mr = (int)(mc - ip < MR ? mc - ip : MR);
            K.ukr(kc, Own + ip * kc, 0, Bpanel, NR, P.c + (ic + ip) * ldc + jc + jj, ldc, mr, nr, P.alpha, beta);
          }
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
  return cfg_scalar;
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
  const double flops = 2.0 * (double)m * (double)n * (double)k;
  const int threads = pool_get_threads();
  // Too small to be worth waking another thread.
  const bool tiny = flops * (double)batch < 3e5;
  // Outputs that overlap across batch items must be computed in order.
  const bool overlapping = batch > 1 && strideC < m * n;
  auto item = [&](int64_t bi) {
    return Problem{a + bi * strideA, b + bi * strideB, c + bi * strideC, m, n, k, transA, transB, alpha, beta};
  };

  if (!overlapping && (tiny || (batch >= threads && (batch % threads == 0 || batch >= 3 * threads || flops < 4e6)))) {
    // Whole batch items per thread.
    auto body = [&](int tid, int T) {
      float* Own = tls_a.get(own_buf_size(K, transA, n, k));
      float* Bbuf = direct_kernel(K, transA, n, k) ? nullptr : tls_b.get(b_buf_size(K, n, k));
      const int64_t b0 = batch * tid / T, b1 = batch * (tid + 1) / T;
      for (int64_t bi = b0; bi < b1; bi++) gemm_item(K, item(bi), 0, 1, Bbuf, Own);
    };
    parallel_region(tiny ? 1 : (int)(batch < threads ? batch : threads), body);
    return;
  }
  // Each batch item split over the threads.
  const int T = flops < 5e5 ? 1 : threads;
  float* shared_b = direct_kernel(K, transA, n, k) ? nullptr : tls_b.get(b_buf_size(K, n, k));
  for (int64_t bi = 0; bi < batch; bi++) {
    const Problem P = item(bi);
    auto body = [&](int tid, int nt) { gemm_item(K, P, tid, nt, shared_b, tls_a.get(own_buf_size(K, transA, n, k))); };
    parallel_region(T, body);
  }
}

}  // namespace untie
