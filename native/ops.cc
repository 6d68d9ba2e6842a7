// Threading and instruction-set dispatch for the kernels of ops.h. The kernel
// bodies live in ops_impl.h, compiled here once per instruction set.
//
// Splitting is static, and no kernel's result for an element depends on which
// thread computes it or where a chunk starts: elementwise chunks start at
// multiples of 64 elements, row kernels give whole rows to one thread, column
// reductions give whole columns to one thread, and sum/dot/sumSquares add
// fixed 64K-element chunks in order. So results do not depend on the thread
// count either.
#include "ops.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"
#include "simd.h"

#if defined(UNTIE_X86)
#include <immintrin.h>
#endif

namespace untie {

struct OpsTable {
  void (*add)(const float*, const float*, float*, int64_t);
  void (*mul)(const float*, const float*, float*, int64_t);
  void (*scale)(const float*, double, float*, int64_t);
  void (*axpy)(float*, const float*, double, int64_t);
  void (*add_row_vector)(const float*, const float*, float*, int64_t, int64_t, int64_t);
  void (*sum_rows)(const float*, float*, int64_t, int64_t, int64_t, int64_t, double*);
  void (*gelu_forward)(const float*, float*, int64_t);
  void (*gelu_backward)(const float*, const float*, float*, int64_t);
  void (*tanh_forward)(const float*, float*, int64_t);
  void (*tanh_backward)(const float*, const float*, float*, int64_t);
  void (*bias_gelu_forward)(const float*, const float*, float*, int64_t, int64_t, int64_t);
  void (*bias_gelu_backward)(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t,
                             double*);
  void (*dropout)(const float*, float*, int64_t, int64_t, uint32_t, float, uint32_t);
  void (*softmax_forward)(const float*, float*, int64_t, int64_t, int64_t, double, const float*, int64_t);
  void (*softmax_backward)(const float*, const float*, float*, int64_t, int64_t, int64_t, double);
  void (*layernorm_forward)(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t,
                            int64_t, double);
  void (*layernorm_backward_dx)(const float*, const float*, const float*, const float*, const float*, float*, int64_t,
                                int64_t, int64_t);
  void (*layernorm_backward_dgb)(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                 int64_t, int64_t, int64_t, double*);
  void (*cross_entropy_forward)(const float*, const int32_t*, float*, float*, int64_t, int64_t, int64_t, int64_t);
  void (*cross_entropy_backward)(const float*, const int32_t*, const float*, float*, int64_t, int64_t, int64_t,
                                 int64_t, double);
  void (*adamw_step)(float*, const float*, float*, float*, int64_t, int64_t, double, double, double, double, double,
                     double);
  double (*sum)(const float*, int64_t);
  double (*dot)(const float*, const float*, int64_t);
  double (*sum_squares)(const float*, int64_t);
  bool (*all_finite)(const float*, int64_t);
};

#if defined(UNTIE_X86)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
namespace isa_avx512 {
#define VBYTES 64
#include "ops_impl.h"
#undef VBYTES
}  // namespace isa_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
#define VBYTES 32
#include "ops_impl.h"
#undef VBYTES
}  // namespace isa_avx2
#pragma GCC pop_options
#endif

namespace isa_scalar {
#define VBYTES 16
#include "ops_impl.h"
#undef VBYTES
}  // namespace isa_scalar

namespace {

const OpsTable& T() {
#if defined(UNTIE_X86)
  switch (simd_level()) {
    case kAvx512: return isa_avx512::table;
    case kAvx2: return isa_avx2::table;
    default: break;
  }
#endif
  return isa_scalar::table;
}

// Elements per thread below which waking other threads does not pay. A
// worker that has slept (idle > 300 us, common between kernels of a step)
// takes tens of microseconds to wake, and on a shared machine it may not get
// a core at once: a kernel of < 128K cheap elements (~30 us) or < 32K exp/erf
// elements runs on the caller alone.
constexpr int64_t kCheapGrain = 1 << 16;   // add, mul, copies
constexpr int64_t kCostlyGrain = 1 << 14;  // exp, erf, tanh per element
constexpr int64_t kAlign = 64;             // chunk starts are multiples of this

int threads_for(int64_t work, int64_t grain) {
  const int64_t t = work / grain;
  const int max = pool_get_threads();
  return t < 1 ? 1 : t > max ? max : (int)t;
}

// f(begin, end) over [0, n) in chunks aligned to kAlign elements.
template <class F>
void parallel_elems(int64_t n, int64_t grain, F f) {
  const int nt = threads_for(n, grain);
  if (nt <= 1) { f((int64_t)0, n); return; }
  const int64_t blocks = (n + kAlign - 1) / kAlign;
  parallel_for(blocks, nt, [&](int64_t b0, int64_t b1) {
    const int64_t e = b1 * kAlign < n ? b1 * kAlign : n;
    f(b0 * kAlign, e);
  });
}

// f(r0, r1) over rows; `cost` is the work per row.
template <class F>
void parallel_rows(int64_t rows, int64_t cost, int64_t grain, F f) {
  const int nt = threads_for(rows * cost, grain);
  const int t = nt > rows ? (int)(rows > 0 ? rows : 1) : nt;
  if (t <= 1) { if (rows > 0) f((int64_t)0, rows); return; }
  parallel_for(rows, t, f);
}

UNTIE_THREAD_LOCAL std::vector<double> scratch;
double* scratch_doubles(size_t n) {
  if (scratch.size() < n) scratch.resize(n);
  return scratch.data();
}

}  // namespace

void op_add(const float* a, const float* b, float* out, int64_t n) {
  parallel_elems(n, kCheapGrain, [&](int64_t i, int64_t e) { T().add(a + i, b + i, out + i, e - i); });
}
void op_mul(const float* a, const float* b, float* out, int64_t n) {
  parallel_elems(n, kCheapGrain, [&](int64_t i, int64_t e) { T().mul(a + i, b + i, out + i, e - i); });
}
void op_scale(const float* a, double s, float* out, int64_t n) {
  parallel_elems(n, kCheapGrain, [&](int64_t i, int64_t e) { T().scale(a + i, s, out + i, e - i); });
}
void op_axpy(float* dst, const float* src, double s, int64_t n) {
  parallel_elems(n, kCheapGrain, [&](int64_t i, int64_t e) { T().axpy(dst + i, src + i, s, e - i); });
}

void op_add_row_vector(const float* x, const float* bias, float* out, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, kCheapGrain,
                [&](int64_t r0, int64_t r1) { T().add_row_vector(x, bias, out, r0, r1, cols); });
}

void op_sum_rows(const float* x, float* out, int64_t rows, int64_t cols) {
  const int64_t blocks = (cols + 15) / 16;
  int nt = threads_for(rows * cols, kCheapGrain);
  if (nt > blocks) nt = (int)(blocks > 0 ? blocks : 1);
  parallel_for(blocks, nt, [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * 16, c1 = b1 * 16 < cols ? b1 * 16 : cols;
    T().sum_rows(x, out, rows, cols, c0, c1, scratch_doubles(c1 - c0));
  });
}

void op_gelu_forward(const float* x, float* out, int64_t n) {
  parallel_elems(n, kCostlyGrain, [&](int64_t i, int64_t e) { T().gelu_forward(x + i, out + i, e - i); });
}
void op_gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  parallel_elems(n, kCostlyGrain, [&](int64_t i, int64_t e) { T().gelu_backward(x + i, dy + i, dx + i, e - i); });
}
void op_tanh_forward(const float* x, float* out, int64_t n) {
  parallel_elems(n, kCostlyGrain, [&](int64_t i, int64_t e) { T().tanh_forward(x + i, out + i, e - i); });
}
void op_tanh_backward(const float* y, const float* dy, float* dx, int64_t n) {
  parallel_elems(n, kCheapGrain, [&](int64_t i, int64_t e) { T().tanh_backward(y + i, dy + i, dx + i, e - i); });
}

void op_bias_gelu_forward(const float* x, const float* bias, float* out, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, kCostlyGrain,
                [&](int64_t r0, int64_t r1) { T().bias_gelu_forward(x, bias, out, r0, r1, cols); });
}

// Threads take whole columns (blocks of 16), so each dbias is summed over
// the rows in order: the same sums as geluBackward then sumRows.
void op_bias_gelu_backward(const float* x, const float* bias, const float* dy, float* dx, float* dbias, int64_t rows,
                           int64_t cols) {
  const int64_t blocks = (cols + 15) / 16;
  int nt = threads_for(rows * cols, kCostlyGrain);
  if (nt > blocks) nt = (int)(blocks > 0 ? blocks : 1);
  parallel_for(blocks, nt, [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * 16, c1 = b1 * 16 < cols ? b1 * 16 : cols;
    T().bias_gelu_backward(x, bias, dy, dx, rows, cols, c0, c1, scratch_doubles(c1 - c0));
    const double* acc = scratch_doubles(c1 - c0);
    for (int64_t c = c0; c < c1; c++) dbias[c] = (float)acc[c - c0];
  });
}

// dropoutUniform(seed, i) = (h >> 8) / 2^24 >= p  <=>  (h >> 8) >= ceil(p * 2^24) (exact: p * 2^24 is exact).
static void dropout(const float* x, float* out, int64_t n, double p, uint32_t seed) {
  const uint32_t threshold = (uint32_t)std::ceil(p * 16777216.0);
  const float keep = (float)(1.0 / (1.0 - p));
  parallel_elems(n, kCheapGrain / 4,
                 [&](int64_t i, int64_t e) { T().dropout(x, out, i, e, threshold, keep, seed); });
}
void op_dropout_forward(const float* x, float* out, int64_t n, double p, uint32_t seed) { dropout(x, out, n, p, seed); }
void op_dropout_backward(const float* dy, float* dx, int64_t n, double p, uint32_t seed) {
  dropout(dy, dx, n, p, seed);
}

void op_softmax_forward(const float* x, float* out, int64_t rows, int64_t cols, double scale, const float* mask,
                        int64_t mask_group) {
  parallel_rows(rows, cols, kCostlyGrain, [&](int64_t r0, int64_t r1) {
    T().softmax_forward(x, out, r0, r1, cols, scale, mask, mask_group);
  });
}
void op_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols, double scale) {
  parallel_rows(rows, cols, kCheapGrain / 2,
                [&](int64_t r0, int64_t r1) { T().softmax_backward(y, dy, dx, r0, r1, cols, scale); });
}

void op_layernorm_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean, float* rstd,
                          int64_t rows, int64_t cols, double eps) {
  parallel_rows(rows, cols, kCheapGrain / 4, [&](int64_t r0, int64_t r1) {
    T().layernorm_forward(x, gamma, beta, out, mean, rstd, r0, r1, cols, eps);
  });
}
void op_layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                           float* dx, float* dgamma, float* dbeta, int64_t rows, int64_t cols) {
  parallel_rows(rows, cols, kCheapGrain / 4, [&](int64_t r0, int64_t r1) {
    T().layernorm_backward_dx(x, gamma, mean, rstd, dy, dx, r0, r1, cols);
  });
  const int64_t blocks = (cols + 15) / 16;
  int nt = threads_for(rows * cols, kCheapGrain / 4);
  if (nt > blocks) nt = (int)(blocks > 0 ? blocks : 1);
  parallel_for(blocks, nt, [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * 16, c1 = b1 * 16 < cols ? b1 * 16 : cols;
    T().layernorm_backward_dgb(x, mean, rstd, dy, dgamma, dbeta, rows, cols, c0, c1,
                               scratch_doubles(2 * (c1 - c0)));
  });
}

void op_add_layernorm_forward(const float* x, const float* y, const float* gamma, const float* beta, float* sum,
                              float* out, float* mean, float* rstd, int64_t rows, int64_t cols, double eps) {
  parallel_rows(rows, cols, kCheapGrain / 4, [&](int64_t r0, int64_t r1) {
    // Row by row, so that the sum is still in cache when it is normalised.
    for (int64_t r = r0; r < r1; r++) {
      T().add(x + r * cols, y + r * cols, sum + r * cols, cols);
      T().layernorm_forward(sum, gamma, beta, out, mean, rstd, r, r + 1, cols, eps);
    }
  });
}

void op_cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows,
                              int64_t cols, int64_t ignore_index) {
  parallel_rows(rows, cols, kCostlyGrain, [&](int64_t r0, int64_t r1) {
    T().cross_entropy_forward(logits, targets, losses, lse, r0, r1, cols, ignore_index);
  });
}
void op_cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse, float* dlogits,
                               int64_t rows, int64_t cols, int64_t ignore_index, double grad_scale) {
  parallel_rows(rows, cols, kCostlyGrain, [&](int64_t r0, int64_t r1) {
    T().cross_entropy_backward(logits, targets, lse, dlogits, r0, r1, cols, ignore_index, grad_scale);
  });
}

void op_embedding_forward(const float* table, const int32_t* ids, float* out, int64_t n, int64_t dim) {
  parallel_rows(n, dim, kCheapGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++)
      std::memcpy(out + i * dim, table + (int64_t)ids[i] * dim, sizeof(float) * (size_t)dim);
  });
}

void op_embedding_backward(const float* dout, const int32_t* ids, float* dtable, int64_t n, int64_t dim) {
  // Threads take whole columns, so each dtable element is summed in order of i.
  const int64_t blocks = (dim + 15) / 16;
  int nt = threads_for(n * dim, kCheapGrain);
  if (nt > blocks) nt = (int)(blocks > 0 ? blocks : 1);
  parallel_for(blocks, nt, [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * 16, c1 = b1 * 16 < dim ? b1 * 16 : dim;
    for (int64_t i = 0; i < n; i++) {
      float* dst = dtable + (int64_t)ids[i] * dim;
      const float* src = dout + i * dim;
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  });
}

void op_permute4(const float* x, float* out, const int64_t d[4], const int p[4]) {
  const int64_t in_stride[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
  const int64_t od[4] = {d[p[0]], d[p[1]], d[p[2]], d[p[3]]};
  const int64_t s0 = in_stride[p[0]], s1 = in_stride[p[1]], s2 = in_stride[p[2]], s3 = in_stride[p[3]];
  const int64_t outer = od[0] * od[1];
  const int64_t inner = od[2] * od[3];
  parallel_rows(outer, inner, kCheapGrain, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
      const int64_t i0 = o / od[1], i1 = o % od[1];
      const float* src = x + i0 * s0 + i1 * s1;
      float* dst = out + o * inner;
      for (int64_t i2 = 0; i2 < od[2]; i2++) {
        const float* s = src + i2 * s2;
        float* t = dst + i2 * od[3];
        if (s3 == 1) {
          std::memcpy(t, s, sizeof(float) * (size_t)od[3]);
        } else {
          for (int64_t i3 = 0; i3 < od[3]; i3++) t[i3] = s[i3 * s3];
        }
      }
    }
  });
}

void op_split_heads(const float* x, const float* bias, float* out, int64_t batch, int64_t seq, int64_t parts,
                    int64_t part, int64_t heads, int64_t dim) {
  const int64_t width = heads * dim;
  parallel_rows(batch * seq, width, kCheapGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / seq, t = r % seq;
      const float* src = x + (r * parts + part) * width;
      for (int64_t h = 0; h < heads; h++) {
        float* dst = out + ((b * heads + h) * seq + t) * dim;
        if (bias) T().add(src + h * dim, bias + h * dim, dst, dim);
        else std::memcpy(dst, src + h * dim, sizeof(float) * (size_t)dim);
      }
    }
  });
}

void op_merge_heads(const float* x, float* out, int64_t batch, int64_t seq, int64_t parts, int64_t part,
                    int64_t heads, int64_t dim) {
  const int64_t width = heads * dim;
  parallel_rows(batch * seq, width, kCheapGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / seq, t = r % seq;
      float* dst = out + (r * parts + part) * width;
      for (int64_t h = 0; h < heads; h++)
        std::memcpy(dst + h * dim, x + ((b * heads + h) * seq + t) * dim, sizeof(float) * (size_t)dim);
    }
  });
}

void op_adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1,
                   double beta2, double eps, double weight_decay, double bc1, double bc2) {
  // As the reference: the same constants, computed the same way.
  const double step_size = lr / bc1, sqrt_bc2 = std::sqrt(bc2), decay = 1 - lr * weight_decay;
  parallel_elems(n, kCheapGrain / 4, [&](int64_t i, int64_t e) {
    T().adamw_step(param, grad, m, v, i, e, decay, beta1, beta2, step_size, sqrt_bc2, eps);
  });
}

namespace {
constexpr int64_t kReduceChunk = 1 << 16;

// Sums f(chunk) over fixed chunks of kReduceChunk elements, in chunk order.
template <class F>
double reduce_chunks(int64_t n, F f) {
  if (n <= kReduceChunk) return f((int64_t)0, n);
  const int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  std::vector<double> part((size_t)chunks);
  parallel_for(chunks, threads_for(n, kCheapGrain), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t b = c * kReduceChunk, e = b + kReduceChunk < n ? b + kReduceChunk : n;
      part[(size_t)c] = f(b, e);
    }
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}
}  // namespace

double op_sum(const float* a, int64_t n) {
  return reduce_chunks(n, [&](int64_t b, int64_t e) { return T().sum(a + b, e - b); });
}
double op_dot(const float* a, const float* b, int64_t n) {
  return reduce_chunks(n, [&](int64_t s, int64_t e) { return T().dot(a + s, b + s, e - s); });
}
double op_sum_squares(const float* a, int64_t n) {
  return reduce_chunks(n, [&](int64_t b, int64_t e) { return T().sum_squares(a + b, e - b); });
}
bool op_all_finite(const float* a, int64_t n) {
  const double r = reduce_chunks(n, [&](int64_t b, int64_t e) { return T().all_finite(a + b, e - b) ? 0.0 : 1.0; });
  return r == 0.0;
}

}  // namespace untie
