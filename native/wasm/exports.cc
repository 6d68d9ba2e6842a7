// The wasm module's exports: one function per kernel of
// src/backend/kernels.ts, with the interface's name and argument order, on
// pointers into the module's memory and 32-bit sizes. Arguments are checked
// on the JavaScript side (src/backend/wasm.ts) before any call, as addon.cc
// checks them for the native build; these only forward to gemm.h and ops.h.
#include <stdint.h>

#include "../gemm.h"
#include "../ops.h"

#define EXPORT(name) extern "C" __attribute__((export_name(#name)))

using namespace untie;
typedef int32_t i32;
typedef uint32_t u32;

EXPORT(matmul) void w_matmul(const float* a, const float* b, float* c, i32 batch, i32 m, i32 n, i32 k, i32 ta, i32 tb,
                            i32 sa, i32 sb, i32 sc, double alpha, double beta) {
  gemm(a, b, c, batch, m, n, k, ta != 0, tb != 0, sa, sb, sc, (float)alpha, (float)beta);
}

EXPORT(add) void w_add(const float* a, const float* b, float* out, i32 n) { op_add(a, b, out, n); }
EXPORT(mul) void w_mul(const float* a, const float* b, float* out, i32 n) { op_mul(a, b, out, n); }
EXPORT(scale) void w_scale(const float* a, double s, float* out, i32 n) { op_scale(a, s, out, n); }
EXPORT(axpy) void w_axpy(float* dst, const float* src, double s, i32 n) { op_axpy(dst, src, s, n); }
EXPORT(addRowVector) void w_add_row_vector(const float* x, const float* bias, float* out, i32 rows, i32 cols) {
  op_add_row_vector(x, bias, out, rows, cols);
}
EXPORT(sumRows) void w_sum_rows(const float* x, float* out, i32 rows, i32 cols) { op_sum_rows(x, out, rows, cols); }

EXPORT(geluForward) void w_gelu_forward(const float* x, float* out, i32 n) { op_gelu_forward(x, out, n); }
EXPORT(geluBackward) void w_gelu_backward(const float* x, const float* dy, float* dx, i32 n) {
  op_gelu_backward(x, dy, dx, n);
}
EXPORT(tanhForward) void w_tanh_forward(const float* x, float* out, i32 n) { op_tanh_forward(x, out, n); }
EXPORT(tanhBackward) void w_tanh_backward(const float* y, const float* dy, float* dx, i32 n) {
  op_tanh_backward(y, dy, dx, n);
}
EXPORT(biasGeluForward) void w_bias_gelu_forward(const float* x, const float* bias, float* out, i32 rows, i32 cols) {
  op_bias_gelu_forward(x, bias, out, rows, cols);
}
EXPORT(biasGeluBackward) void w_bias_gelu_backward(const float* x, const float* bias, const float* dy, float* dx,
                                                   float* dbias, i32 rows, i32 cols) {
  op_bias_gelu_backward(x, bias, dy, dx, dbias, rows, cols);
}

EXPORT(dropoutForward) void w_dropout_forward(const float* x, float* out, i32 n, double p, u32 seed) {
  op_dropout_forward(x, out, n, p, seed);
}
EXPORT(dropoutBackward) void w_dropout_backward(const float* dy, float* dx, i32 n, double p, u32 seed) {
  op_dropout_backward(dy, dx, n, p, seed);
}

// mask: null (0) or (ceil(rows / group), cols).
EXPORT(softmaxForward) void w_softmax_forward(const float* x, float* out, i32 rows, i32 cols, double scale,
                                              const float* mask, i32 group) {
  op_softmax_forward(x, out, rows, cols, scale, mask, group);
}
EXPORT(softmaxBackward) void w_softmax_backward(const float* y, const float* dy, float* dx, i32 rows, i32 cols,
                                                double scale) {
  op_softmax_backward(y, dy, dx, rows, cols, scale);
}

EXPORT(layerNormForward) void w_layernorm_forward(const float* x, const float* gamma, const float* beta, float* out,
                                                  float* mean, float* rstd, i32 rows, i32 cols, double eps) {
  op_layernorm_forward(x, gamma, beta, out, mean, rstd, rows, cols, eps);
}
EXPORT(layerNormBackward) void w_layernorm_backward(const float* x, const float* gamma, const float* mean,
                                                    const float* rstd, const float* dy, float* dx, float* dgamma,
                                                    float* dbeta, i32 rows, i32 cols) {
  op_layernorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols);
}
EXPORT(addLayerNormForward) void w_add_layernorm_forward(const float* x, const float* y, const float* gamma,
                                                         const float* beta, float* sum, float* out, float* mean,
                                                         float* rstd, i32 rows, i32 cols, double eps) {
  op_add_layernorm_forward(x, y, gamma, beta, sum, out, mean, rstd, rows, cols, eps);
}

// Targets already checked (the count of rows not ignored is taken there).
EXPORT(crossEntropyForward) void w_cross_entropy_forward(const float* logits, const int32_t* targets, float* losses,
                                                         float* lse, i32 rows, i32 cols, i32 ignore) {
  op_cross_entropy_forward(logits, targets, losses, lse, rows, cols, ignore);
}
EXPORT(crossEntropyBackward) void w_cross_entropy_backward(const float* logits, const int32_t* targets,
                                                           const float* lse, float* dlogits, i32 rows, i32 cols,
                                                           i32 ignore, double grad_scale) {
  op_cross_entropy_backward(logits, targets, lse, dlogits, rows, cols, ignore, grad_scale);
}

// Ids already checked.
EXPORT(embeddingForward) void w_embedding_forward(const float* table, const int32_t* ids, float* out, i32 n, i32 dim) {
  op_embedding_forward(table, ids, out, n, dim);
}
EXPORT(embeddingBackward) void w_embedding_backward(const float* dout, const int32_t* ids, float* dtable, i32 n,
                                                    i32 dim) {
  op_embedding_backward(dout, ids, dtable, n, dim);
}

EXPORT(permute4) void w_permute4(const float* x, float* out, i32 d0, i32 d1, i32 d2, i32 d3, i32 p0, i32 p1, i32 p2,
                                 i32 p3) {
  const int64_t d[4] = {d0, d1, d2, d3};
  const int p[4] = {p0, p1, p2, p3};
  op_permute4(x, out, d, p);
}

// bias: null (0) or (heads * dim).
EXPORT(splitHeads) void w_split_heads(const float* x, const float* bias, float* out, i32 batch, i32 seq, i32 parts,
                                      i32 part, i32 heads, i32 dim) {
  op_split_heads(x, bias, out, batch, seq, parts, part, heads, dim);
}
EXPORT(mergeHeads) void w_merge_heads(const float* x, float* out, i32 batch, i32 seq, i32 parts, i32 part, i32 heads,
                                      i32 dim) {
  op_merge_heads(x, out, batch, seq, parts, part, heads, dim);
}

EXPORT(adamwStep) void w_adamw_step(float* param, const float* grad, float* m, float* v, i32 n, double lr,
                                    double beta1, double beta2, double eps, double weight_decay, double bc1,
                                    double bc2) {
  op_adamw_step(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2);
}

EXPORT(sum) double w_sum(const float* a, i32 n) { return op_sum(a, n); }
EXPORT(dot) double w_dot(const float* a, const float* b, i32 n) { return op_dot(a, b, n); }
EXPORT(sumSquares) double w_sum_squares(const float* a, i32 n) { return op_sum_squares(a, n); }
EXPORT(allFinite) i32 w_all_finite(const float* a, i32 n) { return op_all_finite(a, n) ? 1 : 0; }
