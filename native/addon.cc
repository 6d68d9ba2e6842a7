// N-API bindings: one JS function per kernel of src/backend/kernels.ts, with
// the same name and positional arguments. Every function checks its argument
// count, types and array lengths against the shapes before touching memory,
// and throws a JS Error naming the op otherwise (never crashes).
#include <node_api.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "gemm.h"
#include "interrupt.h"
#include "ops.h"
#include "pool.h"
#include "simd.h"

namespace untie {
namespace {

constexpr int kMaxArgs = 16;
constexpr double kMaxDim = 9007199254740991.0;  // 2^53 - 1

// One call's arguments, with checked accessors. After the first failure
// (a pending JS exception), `ok` is false and the binding returns nullptr.
struct Call {
  napi_env env;
  const char* op;
  size_t argc = kMaxArgs;
  napi_value argv[kMaxArgs];
  bool ok = true;

  Call(napi_env e, napi_callback_info info, const char* name, size_t expected) : env(e), op(name) {
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
      fail("could not read the arguments");
      return;
    }
    if (argc < expected) fail("expected %zu arguments, got %zu", expected, argc);
  }

  void fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!ok) return;
    ok = false;
    char msg[512];
    int off = std::snprintf(msg, sizeof msg, "untie native %s: ", op);
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg + off, sizeof msg - off, fmt, ap);
    va_end(ap);
    napi_throw_error(env, nullptr, msg);
  }

  // A typed array of the given type; len is its element count.
  template <class T>
  T* typed(size_t i, const char* name, napi_typedarray_type want, const char* want_name, int64_t& len,
           bool nullable = false) {
    if (!ok) return nullptr;
    napi_valuetype vt;
    napi_typeof(env, argv[i], &vt);
    if (nullable && (vt == napi_null || vt == napi_undefined)) {
      len = 0;
      return nullptr;
    }
    bool is_ta = false;
    napi_is_typedarray(env, argv[i], &is_ta);
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (!is_ta || napi_get_typedarray_info(env, argv[i], &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != want) {
      fail("%s must be %s%s", name, want_name, nullable ? " or null" : "");
      return nullptr;
    }
    len = (int64_t)length;
    return static_cast<T*>(data);
  }
  float* f32(size_t i, const char* name, int64_t& len) {
    return typed<float>(i, name, napi_float32_array, "a Float32Array", len);
  }
  float* f32_or_null(size_t i, const char* name, int64_t& len) {
    return typed<float>(i, name, napi_float32_array, "a Float32Array", len, true);
  }
  int32_t* i32(size_t i, const char* name, int64_t& len) {
    return typed<int32_t>(i, name, napi_int32_array, "an Int32Array", len);
  }

  double num(size_t i, const char* name) {
    if (!ok) return 0;
    double v = 0;
    if (napi_get_value_double(env, argv[i], &v) != napi_ok) {
      fail("%s must be a number", name);
      return 0;
    }
    return v;
  }
  // A non-negative integer (a size or an index).
  int64_t dim(size_t i, const char* name) {
    const double v = num(i, name);
    if (!ok) return 0;
    if (!(v >= 0 && v <= kMaxDim && v == std::floor(v))) {
      fail("%s must be a non-negative integer, got %g", name, v);
      return 0;
    }
    return (int64_t)v;
  }
  // Any integer (ignoreIndex may be negative).
  int64_t integer(size_t i, const char* name) {
    const double v = num(i, name);
    if (!ok) return 0;
    if (!(std::fabs(v) <= kMaxDim && v == std::floor(v))) {
      fail("%s must be an integer, got %g", name, v);
      return 0;
    }
    return (int64_t)v;
  }
  bool boolean(size_t i, const char* name) {
    if (!ok) return false;
    bool b = false;
    if (napi_get_value_bool(env, argv[i], &b) != napi_ok) fail("%s must be a boolean", name);
    return b;
  }
  uint32_t uint32(size_t i, const char* name) {
    if (!ok) return 0;
    uint32_t v = 0;
    if (napi_get_value_uint32(env, argv[i], &v) != napi_ok) fail("%s must be a number", name);
    return v;
  }

  // Products of sizes, failing (not wrapping) past 2^53.
  int64_t mul(int64_t a, int64_t b) {
    if (!ok) return 0;
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > (int64_t)kMaxDim) {
      fail("shape too large (%lld x %lld)", (long long)a, (long long)b);
      return 0;
    }
    return r;
  }

  // len >= need, else fail with `what` explaining where need comes from.
  void need(const char* name, int64_t len, int64_t need_, const char* what = "") {
    if (ok && len < need_)
      fail("%s has %lld elements, needs %lld%s%s", name, (long long)len, (long long)need_, *what ? " for " : "",
           what);
  }
  void same(const char* name, int64_t len, const char* ref, int64_t ref_len) {
    if (ok && len != ref_len)
      fail("%s has %lld elements, expected %lld (the length of %s)", name, (long long)len, (long long)ref_len, ref);
  }
};

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
napi_value number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

#define BINDING(name) napi_value js_##name(napi_env env, napi_callback_info info)

BINDING(setThreads) {
  Call c(env, info, "setThreads", 1);
  const int64_t n = c.dim(0, "n");
  if (c.ok && n < 1) c.fail("n must be at least 1, got %lld", (long long)n);
  if (!c.ok) return nullptr;
  pool_set_threads((int)(n > 512 ? 512 : n));
  return undefined(env);
}

BINDING(getThreads) { return number(env, pool_get_threads()); }

// a (batch, m, k) or (batch, k, m) if transA; b (batch, k, n) or (batch, n, k) if transB;
// c (batch, m, n); batch items at i * stride.
BINDING(matmul) {
  Call c(env, info, "matmul", 14);
  int64_t la = 0, lb = 0, lc = 0;
  float* a = c.f32(0, "a", la);
  float* b = c.f32(1, "b", lb);
  float* out = c.f32(2, "c", lc);
  const int64_t batch = c.dim(3, "batch"), m = c.dim(4, "m"), n = c.dim(5, "n"), k = c.dim(6, "k");
  const bool ta = c.boolean(7, "transA"), tb = c.boolean(8, "transB");
  const int64_t sa = c.dim(9, "strideA"), sb = c.dim(10, "strideB"), sc = c.dim(11, "strideC");
  const double alpha = c.num(12, "alpha"), beta = c.num(13, "beta");
  if (!c.ok) return nullptr;
  if (batch > 0) {
    const int64_t mk = c.mul(m, k), kn = c.mul(k, n), mn = c.mul(m, n);
    const int64_t last_a = c.mul(batch - 1, mk == 0 ? 0 : sa), last_b = c.mul(batch - 1, kn == 0 ? 0 : sb),
                  last_c = c.mul(batch - 1, mn == 0 ? 0 : sc);
    if (!c.ok) return nullptr;
    // The explanation is formatted only on failure: this runs on every call.
    char what[200];
    if (mk > 0 && la < last_a + mk) {
      std::snprintf(what, sizeof what, "batch=%lld m=%lld k=%lld strideA=%lld (transA=%s)", (long long)batch,
                    (long long)m, (long long)k, (long long)sa, ta ? "true" : "false");
      c.need("a", la, last_a + mk, what);
    }
    if (kn > 0 && lb < last_b + kn) {
      std::snprintf(what, sizeof what, "batch=%lld k=%lld n=%lld strideB=%lld (transB=%s)", (long long)batch,
                    (long long)k, (long long)n, (long long)sb, tb ? "true" : "false");
      c.need("b", lb, last_b + kn, what);
    }
    if (mn > 0 && lc < last_c + mn) {
      std::snprintf(what, sizeof what, "batch=%lld m=%lld n=%lld strideC=%lld", (long long)batch, (long long)m,
                    (long long)n, (long long)sc);
      c.need("c", lc, last_c + mn, what);
    }
    if (!c.ok) return nullptr;
    gemm(a, b, out, batch, m, n, k, ta, tb, sa, sb, sc, (float)alpha, (float)beta);
  }
  return undefined(env);
}

// a, b, out (n)
#define ELEMENTWISE2(js, opname, fn)                        \
  BINDING(js) {                                             \
    Call c(env, info, opname, 3);                           \
    int64_t la = 0, lb = 0, lo = 0;                         \
    float* a = c.f32(0, "a", la);                           \
    float* b = c.f32(1, "b", lb);                           \
    float* out = c.f32(2, "out", lo);                       \
    c.same("b", lb, "a", la);                               \
    c.same("out", lo, "a", la);                             \
    if (!c.ok) return nullptr;                              \
    fn(a, b, out, la);                                      \
    return undefined(env);                                  \
  }
ELEMENTWISE2(add, "add", op_add)
ELEMENTWISE2(mul, "mul", op_mul)

// a, out (n)
BINDING(scale) {
  Call c(env, info, "scale", 3);
  int64_t la = 0, lo = 0;
  float* a = c.f32(0, "a", la);
  const double s = c.num(1, "s");
  float* out = c.f32(2, "out", lo);
  c.same("out", lo, "a", la);
  if (!c.ok) return nullptr;
  op_scale(a, s, out, la);
  return undefined(env);
}

// dst, src (n)
BINDING(axpy) {
  Call c(env, info, "axpy", 3);
  int64_t ld = 0, ls = 0;
  float* dst = c.f32(0, "dst", ld);
  float* src = c.f32(1, "src", ls);
  const double s = c.num(2, "s");
  c.same("src", ls, "dst", ld);
  if (!c.ok) return nullptr;
  op_axpy(dst, src, s, ld);
  return undefined(env);
}

// x (rows, cols), bias (cols), out (rows, cols)
#define ROW_BIAS(js, opname, fn)                            \
  BINDING(js) {                                             \
    Call c(env, info, opname, 5);                           \
    int64_t lx = 0, lb = 0, lo = 0;                         \
    float* x = c.f32(0, "x", lx);                           \
    float* bias = c.f32(1, "bias", lb);                     \
    float* out = c.f32(2, "out", lo);                       \
    const int64_t rows = c.dim(3, "rows"), cols = c.dim(4, "cols"); \
    const int64_t rc = c.mul(rows, cols);                   \
    c.need("x", lx, rc, "rows x cols");                     \
    c.need("out", lo, rc, "rows x cols");                   \
    c.need("bias", lb, cols, "cols");                       \
    if (!c.ok) return nullptr;                              \
    fn(x, bias, out, rows, cols);                           \
    return undefined(env);                                  \
  }
ROW_BIAS(addRowVector, "addRowVector", op_add_row_vector)
ROW_BIAS(biasGeluForward, "biasGeluForward", op_bias_gelu_forward)

// x (rows, cols), out (cols)
BINDING(sumRows) {
  Call c(env, info, "sumRows", 4);
  int64_t lx = 0, lo = 0;
  float* x = c.f32(0, "x", lx);
  float* out = c.f32(1, "out", lo);
  const int64_t rows = c.dim(2, "rows"), cols = c.dim(3, "cols");
  c.need("x", lx, c.mul(rows, cols), "rows x cols");
  c.need("out", lo, cols, "cols");
  if (!c.ok) return nullptr;
  op_sum_rows(x, out, rows, cols);
  return undefined(env);
}

// x, out (n)
#define UNARY(js, opname, xname, outname, fn)              \
  BINDING(js) {                                            \
    Call c(env, info, opname, 2);                          \
    int64_t lx = 0, lo = 0;                                \
    float* x = c.f32(0, xname, lx);                        \
    float* out = c.f32(1, outname, lo);                    \
    c.same(outname, lo, xname, lx);                        \
    if (!c.ok) return nullptr;                             \
    fn(x, out, lx);                                        \
    return undefined(env);                                 \
  }
UNARY(geluForward, "geluForward", "x", "out", op_gelu_forward)
UNARY(tanhForward, "tanhForward", "x", "out", op_tanh_forward)

// x, dy, dx (n)
#define BACKWARD(js, opname, xname, fn)                    \
  BINDING(js) {                                            \
    Call c(env, info, opname, 3);                          \
    int64_t lx = 0, lg = 0, ld = 0;                        \
    float* x = c.f32(0, xname, lx);                        \
    float* dy = c.f32(1, "dy", lg);                        \
    float* dx = c.f32(2, "dx", ld);                        \
    c.same("dy", lg, xname, lx);                           \
    c.same("dx", ld, xname, lx);                           \
    if (!c.ok) return nullptr;                             \
    fn(x, dy, dx, lx);                                     \
    return undefined(env);                                 \
  }
BACKWARD(geluBackward, "geluBackward", "x", op_gelu_backward)
BACKWARD(tanhBackward, "tanhBackward", "y", op_tanh_backward)

// x, dy, dx (rows, cols), bias, dbias (cols)
BINDING(biasGeluBackward) {
  Call c(env, info, "biasGeluBackward", 7);
  int64_t lx = 0, lb = 0, lg = 0, ld = 0, ldb = 0;
  float* x = c.f32(0, "x", lx);
  float* bias = c.f32(1, "bias", lb);
  float* dy = c.f32(2, "dy", lg);
  float* dx = c.f32(3, "dx", ld);
  float* dbias = c.f32(4, "dbias", ldb);
  const int64_t rows = c.dim(5, "rows"), cols = c.dim(6, "cols");
  const int64_t rc = c.mul(rows, cols);
  c.need("x", lx, rc, "rows x cols");
  c.need("dy", lg, rc, "rows x cols");
  c.need("dx", ld, rc, "rows x cols");
  c.need("bias", lb, cols, "cols");
  c.need("dbias", ldb, cols, "cols");
  if (!c.ok) return nullptr;
  op_bias_gelu_backward(x, bias, dy, dx, dbias, rows, cols);
  return undefined(env);
}

// x, out (n): forward; dy, dx (n): backward (the same mask, drawn again)
#define DROPOUT(js, opname, xname, outname, fn)                      \
  BINDING(js) {                                                      \
    Call c(env, info, opname, 4);                                    \
    int64_t lx = 0, lo = 0;                                          \
    float* x = c.f32(0, xname, lx);                                  \
    float* out = c.f32(1, outname, lo);                              \
    const double p = c.num(2, "p");                                  \
    const uint32_t seed = c.uint32(3, "seed");                       \
    c.same(outname, lo, xname, lx);                                  \
    if (c.ok && !(p >= 0 && p < 1)) c.fail("p must be in [0, 1), got %g", p); \
    if (!c.ok) return nullptr;                                       \
    fn(x, out, lx, p, seed);                                         \
    return undefined(env);                                           \
  }
DROPOUT(dropoutForward, "dropoutForward", "x", "out", op_dropout_forward)
DROPOUT(dropoutBackward, "dropoutBackward", "dy", "dx", op_dropout_backward)

// x, out (rows, cols), mask (ceil(rows / maskGroup), cols) or null
BINDING(softmaxForward) {
  Call c(env, info, "softmaxForward", 7);
  int64_t lx = 0, lo = 0, lm = 0;
  float* x = c.f32(0, "x", lx);
  float* out = c.f32(1, "out", lo);
  const int64_t rows = c.dim(2, "rows"), cols = c.dim(3, "cols");
  const double scale = c.num(4, "scale");
  float* mask = c.f32_or_null(5, "mask", lm);
  int64_t group = 1;
  const int64_t rc = c.mul(rows, cols);
  c.need("x", lx, rc, "rows x cols");
  c.need("out", lo, rc, "rows x cols");
  if (c.ok && mask) {
    group = c.dim(6, "maskGroup");
    if (c.ok && group < 1) c.fail("maskGroup must be at least 1, got %lld", (long long)group);
    if (c.ok) c.need("mask", lm, c.mul((rows + group - 1) / group, cols), "ceil(rows / maskGroup) x cols");
  }
  if (!c.ok) return nullptr;
  op_softmax_forward(x, out, rows, cols, scale, mask, group);
  return undefined(env);
}

// y, dy, dx (rows, cols)
BINDING(softmaxBackward) {
  Call c(env, info, "softmaxBackward", 6);
  int64_t ly = 0, lg = 0, ld = 0;
  float* y = c.f32(0, "y", ly);
  float* dy = c.f32(1, "dy", lg);
  float* dx = c.f32(2, "dx", ld);
  const int64_t rows = c.dim(3, "rows"), cols = c.dim(4, "cols");
  const double scale = c.num(5, "scale");
  const int64_t rc = c.mul(rows, cols);
  c.need("y", ly, rc, "rows x cols");
  c.need("dy", lg, rc, "rows x cols");
  c.need("dx", ld, rc, "rows x cols");
  if (!c.ok) return nullptr;
  op_softmax_backward(y, dy, dx, rows, cols, scale);
  return undefined(env);
}

// What the LayerNorm forward kernels check alike: out (rows, cols), gamma,
// beta (cols), mean, rstd (rows); returns rows x cols.
int64_t need_norm_outputs(Call& c, int64_t rows, int64_t cols, int64_t lo, int64_t lg, int64_t lb, int64_t lmu,
                          int64_t lrs) {
  const int64_t rc = c.mul(rows, cols);
  c.need("out", lo, rc, "rows x cols");
  c.need("gamma", lg, cols, "cols");
  c.need("beta", lb, cols, "cols");
  c.need("mean", lmu, rows, "rows");
  c.need("rstd", lrs, rows, "rows");
  return rc;
}

// x, out (rows, cols), gamma, beta (cols), mean, rstd (rows)
BINDING(layerNormForward) {
  Call c(env, info, "layerNormForward", 9);
  int64_t lx = 0, lg = 0, lb = 0, lo = 0, lmu = 0, lrs = 0;
  float* x = c.f32(0, "x", lx);
  float* gamma = c.f32(1, "gamma", lg);
  float* beta = c.f32(2, "beta", lb);
  float* out = c.f32(3, "out", lo);
  float* mean = c.f32(4, "mean", lmu);
  float* rstd = c.f32(5, "rstd", lrs);
  const int64_t rows = c.dim(6, "rows"), cols = c.dim(7, "cols");
  const double eps = c.num(8, "eps");
  c.need("x", lx, need_norm_outputs(c, rows, cols, lo, lg, lb, lmu, lrs), "rows x cols");
  if (!c.ok) return nullptr;
  op_layernorm_forward(x, gamma, beta, out, mean, rstd, rows, cols, eps);
  return undefined(env);
}

// x, dy, dx (rows, cols), gamma, dgamma, dbeta (cols), mean, rstd (rows)
BINDING(layerNormBackward) {
  Call c(env, info, "layerNormBackward", 10);
  int64_t lx = 0, lg = 0, lmu = 0, lrs = 0, ldy = 0, ldx = 0, ldg = 0, ldb = 0;
  float* x = c.f32(0, "x", lx);
  float* gamma = c.f32(1, "gamma", lg);
  float* mean = c.f32(2, "mean", lmu);
  float* rstd = c.f32(3, "rstd", lrs);
  float* dy = c.f32(4, "dy", ldy);
  float* dx = c.f32(5, "dx", ldx);
  float* dgamma = c.f32(6, "dgamma", ldg);
  float* dbeta = c.f32(7, "dbeta", ldb);
  const int64_t rows = c.dim(8, "rows"), cols = c.dim(9, "cols");
  const int64_t rc = c.mul(rows, cols);
  c.need("x", lx, rc, "rows x cols");
  c.need("dy", ldy, rc, "rows x cols");
  c.need("dx", ldx, rc, "rows x cols");
  c.need("gamma", lg, cols, "cols");
  c.need("dgamma", ldg, cols, "cols");
  c.need("dbeta", ldb, cols, "cols");
  c.need("mean", lmu, rows, "rows");
  c.need("rstd", lrs, rows, "rows");
  if (!c.ok) return nullptr;
  op_layernorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols);
  return undefined(env);
}

// x, y, sum, out (rows, cols), gamma, beta (cols), mean, rstd (rows)
BINDING(addLayerNormForward) {
  Call c(env, info, "addLayerNormForward", 11);
  int64_t lx = 0, ly = 0, lg = 0, lb = 0, ls = 0, lo = 0, lmu = 0, lrs = 0;
  float* x = c.f32(0, "x", lx);
  float* y = c.f32(1, "y", ly);
  float* gamma = c.f32(2, "gamma", lg);
  float* beta = c.f32(3, "beta", lb);
  float* sum = c.f32(4, "sum", ls);
  float* out = c.f32(5, "out", lo);
  float* mean = c.f32(6, "mean", lmu);
  float* rstd = c.f32(7, "rstd", lrs);
  const int64_t rows = c.dim(8, "rows"), cols = c.dim(9, "cols");
  const double eps = c.num(10, "eps");
  const int64_t rc = need_norm_outputs(c, rows, cols, lo, lg, lb, lmu, lrs);
  c.need("x", lx, rc, "rows x cols");
  c.need("y", ly, rc, "rows x cols");
  c.need("sum", ls, rc, "rows x cols");
  if (!c.ok) return nullptr;
  op_add_layernorm_forward(x, y, gamma, beta, sum, out, mean, rstd, rows, cols, eps);
  return undefined(env);
}

// Checks every target before anything is written; returns the non-ignored count.
int64_t check_targets(Call& c, const int32_t* targets, int64_t rows, int64_t cols, int64_t ignore) {
  int64_t count = 0;
  for (int64_t r = 0; r < rows && c.ok; r++) {
    const int64_t t = targets[r];
    if (t == ignore) continue;
    if (t < 0 || t >= cols)
      c.fail("target %lld at row %lld is outside [0, %lld) and is not the ignore index %lld", (long long)t,
             (long long)r, (long long)cols, (long long)ignore);
    count++;
  }
  return count;
}

// logits (rows, cols), targets (rows) int32, losses, lse (rows)
BINDING(crossEntropyForward) {
  Call c(env, info, "crossEntropyForward", 7);
  int64_t ll = 0, lt = 0, lo = 0, le = 0;
  float* logits = c.f32(0, "logits", ll);
  int32_t* targets = c.i32(1, "targets", lt);
  float* losses = c.f32(2, "losses", lo);
  float* lse = c.f32(3, "lse", le);
  const int64_t rows = c.dim(4, "rows"), cols = c.dim(5, "cols");
  const int64_t ignore = c.integer(6, "ignoreIndex");
  c.need("logits", ll, c.mul(rows, cols), "rows x cols");
  c.need("targets", lt, rows, "rows");
  c.need("losses", lo, rows, "rows");
  c.need("lse", le, rows, "rows");
  const int64_t count = c.ok ? check_targets(c, targets, rows, cols, ignore) : 0;
  if (!c.ok) return nullptr;
  op_cross_entropy_forward(logits, targets, losses, lse, rows, cols, ignore);
  return number(env, (double)count);
}

// logits, dlogits (rows, cols), targets (rows) int32, lse (rows)
BINDING(crossEntropyBackward) {
  Call c(env, info, "crossEntropyBackward", 8);
  int64_t ll = 0, lt = 0, le = 0, ld = 0;
  float* logits = c.f32(0, "logits", ll);
  int32_t* targets = c.i32(1, "targets", lt);
  float* lse = c.f32(2, "lse", le);
  float* dlogits = c.f32(3, "dlogits", ld);
  const int64_t rows = c.dim(4, "rows"), cols = c.dim(5, "cols");
  const int64_t ignore = c.integer(6, "ignoreIndex");
  const double grad_scale = c.num(7, "gradScale");
  const int64_t rc = c.mul(rows, cols);
  c.need("logits", ll, rc, "rows x cols");
  c.need("dlogits", ld, rc, "rows x cols");
  c.need("targets", lt, rows, "rows");
  c.need("lse", le, rows, "rows");
  if (c.ok) check_targets(c, targets, rows, cols, ignore);
  if (!c.ok) return nullptr;
  op_cross_entropy_backward(logits, targets, lse, dlogits, rows, cols, ignore, grad_scale);
  return undefined(env);
}

void check_ids(Call& c, const int32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n && c.ok; i++)
    if (ids[i] < 0 || ids[i] >= vocab)
      c.fail("id %d at position %lld is outside [0, %lld)", ids[i], (long long)i, (long long)vocab);
}

// table (vocab, dim), ids (n) int32, out (n, dim)
BINDING(embeddingForward) {
  Call c(env, info, "embeddingForward", 6);
  int64_t lt = 0, li = 0, lo = 0;
  float* table = c.f32(0, "table", lt);
  int32_t* ids = c.i32(1, "ids", li);
  float* out = c.f32(2, "out", lo);
  const int64_t n = c.dim(3, "n"), dim = c.dim(4, "dim"), vocab = c.dim(5, "vocab");
  c.need("table", lt, c.mul(vocab, dim), "vocab x dim");
  c.need("ids", li, n, "n");
  c.need("out", lo, c.mul(n, dim), "n x dim");
  if (c.ok) check_ids(c, ids, n, vocab);
  if (!c.ok) return nullptr;
  op_embedding_forward(table, ids, out, n, dim);
  return undefined(env);
}

// dout (n, dim), ids (n) int32, dtable (vocab, dim)
BINDING(embeddingBackward) {
  Call c(env, info, "embeddingBackward", 6);
  int64_t lg = 0, li = 0, lt = 0;
  float* dout = c.f32(0, "dout", lg);
  int32_t* ids = c.i32(1, "ids", li);
  float* dtable = c.f32(2, "dtable", lt);
  const int64_t n = c.dim(3, "n"), dim = c.dim(4, "dim"), vocab = c.dim(5, "vocab");
  c.need("dout", lg, c.mul(n, dim), "n x dim");
  c.need("ids", li, n, "n");
  c.need("dtable", lt, c.mul(vocab, dim), "vocab x dim");
  if (c.ok) check_ids(c, ids, n, vocab);
  if (!c.ok) return nullptr;
  op_embedding_backward(dout, ids, dtable, n, dim);
  return undefined(env);
}

// x (d0, d1, d2, d3), out (d[p0], d[p1], d[p2], d[p3])
BINDING(permute4) {
  Call c(env, info, "permute4", 10);
  int64_t lx = 0, lo = 0;
  float* x = c.f32(0, "x", lx);
  float* out = c.f32(1, "out", lo);
  int64_t d[4];
  int p[4];
  d[0] = c.dim(2, "d0"), d[1] = c.dim(3, "d1"), d[2] = c.dim(4, "d2"), d[3] = c.dim(5, "d3");
  const int64_t p0 = c.dim(6, "p0"), p1 = c.dim(7, "p1"), p2 = c.dim(8, "p2"), p3 = c.dim(9, "p3");
  if (!c.ok) return nullptr;
  const int64_t pp[4] = {p0, p1, p2, p3};
  int seen = 0;
  for (int i = 0; i < 4; i++) {
    if (pp[i] > 3 || (seen & (1 << pp[i]))) {
      c.fail("perm [%lld,%lld,%lld,%lld] is not a permutation of [0,1,2,3]", (long long)p0, (long long)p1,
             (long long)p2, (long long)p3);
      return nullptr;
    }
    seen |= 1 << pp[i];
    p[i] = (int)pp[i];
  }
  const int64_t total = c.mul(c.mul(d[0], d[1]), c.mul(d[2], d[3]));
  c.need("x", lx, total, "d0 x d1 x d2 x d3");
  c.need("out", lo, total, "d0 x d1 x d2 x d3");
  if (!c.ok) return nullptr;
  if (total > 0) op_permute4(x, out, d, p);
  return undefined(env);
}

// The head kernels' shared checks: sizes, part < parts, x and out long enough.
bool heads_args(Call& c, size_t first, int64_t& batch, int64_t& seq, int64_t& parts, int64_t& part, int64_t& heads,
                int64_t& dim, int64_t& one, int64_t& all) {
  batch = c.dim(first, "batch"), seq = c.dim(first + 1, "seq"), parts = c.dim(first + 2, "parts");
  part = c.dim(first + 3, "part"), heads = c.dim(first + 4, "heads"), dim = c.dim(first + 5, "headDim");
  if (c.ok && part >= parts) c.fail("part %lld is not below parts %lld", (long long)part, (long long)parts);
  one = c.mul(c.mul(batch, seq), c.mul(heads, dim));
  all = c.mul(one, parts);
  return c.ok;
}

// x (batch, seq, parts, heads, headDim), bias (heads * headDim) or null, out (batch, heads, seq, headDim)
BINDING(splitHeads) {
  Call c(env, info, "splitHeads", 9);
  int64_t lx = 0, lb = 0, lo = 0, batch, seq, parts, part, heads, dim, one, all;
  float* x = c.f32(0, "x", lx);
  float* bias = c.f32_or_null(1, "bias", lb);
  float* out = c.f32(2, "out", lo);
  if (!heads_args(c, 3, batch, seq, parts, part, heads, dim, one, all)) return nullptr;
  c.need("x", lx, all, "batch x seq x parts x heads x headDim");
  c.need("out", lo, one, "batch x seq x heads x headDim");
  if (bias) c.need("bias", lb, c.mul(heads, dim), "heads x headDim");
  if (!c.ok) return nullptr;
  op_split_heads(x, bias, out, batch, seq, parts, part, heads, dim);
  return undefined(env);
}

// x (batch, heads, seq, headDim), out (batch, seq, parts, heads, headDim)
BINDING(mergeHeads) {
  Call c(env, info, "mergeHeads", 8);
  int64_t lx = 0, lo = 0, batch, seq, parts, part, heads, dim, one, all;
  float* x = c.f32(0, "x", lx);
  float* out = c.f32(1, "out", lo);
  if (!heads_args(c, 2, batch, seq, parts, part, heads, dim, one, all)) return nullptr;
  c.need("x", lx, one, "batch x heads x seq x headDim");
  c.need("out", lo, all, "batch x seq x parts x heads x headDim");
  if (!c.ok) return nullptr;
  op_merge_heads(x, out, batch, seq, parts, part, heads, dim);
  return undefined(env);
}

// param, grad, m, v (n)
BINDING(adamwStep) {
  Call c(env, info, "adamwStep", 11);
  int64_t lp = 0, lg = 0, lm = 0, lv = 0;
  float* param = c.f32(0, "param", lp);
  float* grad = c.f32(1, "grad", lg);
  float* m = c.f32(2, "m", lm);
  float* v = c.f32(3, "v", lv);
  const double lr = c.num(4, "lr"), beta1 = c.num(5, "beta1"), beta2 = c.num(6, "beta2"), eps = c.num(7, "eps"),
               wd = c.num(8, "weightDecay"), bc1 = c.num(9, "bc1"), bc2 = c.num(10, "bc2");
  c.same("grad", lg, "param", lp);
  c.same("m", lm, "param", lp);
  c.same("v", lv, "param", lp);
  if (!c.ok) return nullptr;
  op_adamw_step(param, grad, m, v, lp, lr, beta1, beta2, eps, wd, bc1, bc2);
  return undefined(env);
}

BINDING(sum) {
  Call c(env, info, "sum", 1);
  int64_t la = 0;
  float* a = c.f32(0, "a", la);
  if (!c.ok) return nullptr;
  return number(env, op_sum(a, la));
}
BINDING(dot) {
  Call c(env, info, "dot", 2);
  int64_t la = 0, lb = 0;
  float* a = c.f32(0, "a", la);
  float* b = c.f32(1, "b", lb);
  c.same("b", lb, "a", la);
  if (!c.ok) return nullptr;
  return number(env, op_dot(a, b, la));
}
BINDING(sumSquares) {
  Call c(env, info, "sumSquares", 1);
  int64_t la = 0;
  float* a = c.f32(0, "a", la);
  if (!c.ok) return nullptr;
  return number(env, op_sum_squares(a, la));
}
BINDING(allFinite) {
  Call c(env, info, "allFinite", 1);
  int64_t la = 0;
  float* a = c.f32(0, "a", la);
  if (!c.ok) return nullptr;
  napi_value r;
  napi_get_boolean(env, op_all_finite(a, la), &r);
  return r;
}

// ---- not part of the Kernels interface: information and test hooks

// simd(): the instruction set in use; simd(name): switch to it (tests and benchmarks), returns success.
BINDING(simd) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_value r;
  if (argc >= 1) {
    char name[16] = {0};
    size_t len = 0;
    if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
      napi_throw_error(env, nullptr, "untie native simd: name must be a string");
      return nullptr;
    }
    const SimdLevel want = !std::strcmp(name, "avx512") ? kAvx512 : !std::strcmp(name, "avx2") ? kAvx2 : kScalar;
    napi_get_boolean(env, set_simd(want), &r);
    return r;
  }
  napi_create_string_utf8(env, simd_name(simd_level()), NAPI_AUTO_LENGTH, &r);
  return r;
}

// Every tensor of a step is a fresh Float32Array (calloc'd by Node), and a
// BERT step allocates and drops about a gigabyte of them. With glibc's
// defaults, arrays above the (dynamic) mmap threshold are mmapped and
// unmapped each time, and the heap top is trimmed as soon as 2x that is free,
// so the first kernel that writes an output takes a page fault per 4 KB: on
// the tiny preset that was over half of the step (dropoutForward, writing two
// fresh arrays, ran at ~9 ns/element; an x @ W^T GEMM writing a fresh output
// at a third of the speed of the same GEMM into a reused one). Keeping arrays
// up to 32 MB (glibc's maximum) on the heap, and the heap from shrinking
// until 64 MB are free at its top, lets freed arrays be reused without new
// faults. The cost: up to 64 MB more RSS after a peak. Set UNTIE_MALLOC_TUNE=0
// to keep the defaults; an explicit MALLOC_MMAP_THRESHOLD_ or
// MALLOC_TRIM_THRESHOLD_ in the environment is also left alone.
void tune_malloc() {
#if defined(__GLIBC__)
  const char* opt = std::getenv("UNTIE_MALLOC_TUNE");
  if (opt && !std::strcmp(opt, "0")) return;
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

napi_value Init(napi_env env, napi_value exports) {
  tune_malloc();
#define EXPORT(name) {#name, nullptr, js_##name, nullptr, nullptr, nullptr, napi_default, nullptr}
  napi_property_descriptor props[] = {
      EXPORT(setThreads),     EXPORT(getThreads),          EXPORT(matmul),
      EXPORT(add),            EXPORT(mul),                 EXPORT(scale),
      EXPORT(axpy),           EXPORT(addRowVector),        EXPORT(sumRows),
      EXPORT(geluForward),    EXPORT(geluBackward),        EXPORT(tanhForward),
      EXPORT(tanhBackward),   EXPORT(biasGeluForward),     EXPORT(biasGeluBackward),
      EXPORT(dropoutForward), EXPORT(dropoutBackward),     EXPORT(softmaxForward),
      EXPORT(softmaxBackward), EXPORT(layerNormForward),   EXPORT(layerNormBackward),
      EXPORT(addLayerNormForward), EXPORT(crossEntropyForward), EXPORT(crossEntropyBackward),
      EXPORT(embeddingForward), EXPORT(embeddingBackward), EXPORT(permute4),
      EXPORT(splitHeads),     EXPORT(mergeHeads),          EXPORT(adamwStep),
      EXPORT(sum),            EXPORT(dot),                 EXPORT(sumSquares),
      EXPORT(allFinite),      EXPORT(simd),
      EXPORT(watchInterrupt), EXPORT(unwatchInterrupt),
  };
#undef EXPORT
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace
}  // namespace untie

NAPI_MODULE(NODE_GYP_MODULE_NAME, untie::Init)
