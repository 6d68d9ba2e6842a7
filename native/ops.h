// Every kernel of src/backend/kernels.ts except matmul (gemm.h), one to one,
// on raw pointers. Shapes and lengths are validated by the caller (addon.cc).
#pragma once
#include <cstdint>

namespace untie {

// a, b, out (n). In place OK.
void op_add(const float* a, const float* b, float* out, int64_t n);
void op_mul(const float* a, const float* b, float* out, int64_t n);
// a, out (n): out = s * a. In place OK.
void op_scale(const float* a, double s, float* out, int64_t n);
// dst, src (n): dst += s * src.
void op_axpy(float* dst, const float* src, double s, int64_t n);

// x (rows, cols), bias (cols), out (rows, cols). In place OK.
void op_add_row_vector(const float* x, const float* bias, float* out, int64_t rows, int64_t cols);
// x (rows, cols), out (cols): out[c] = sum_r x[r, c].
void op_sum_rows(const float* x, float* out, int64_t rows, int64_t cols);

// x, out (n): exact GELU.
void op_gelu_forward(const float* x, float* out, int64_t n);
// x, dy, dx (n).
void op_gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
// x, out (n).
void op_tanh_forward(const float* x, float* out, int64_t n);
// y, dy, dx (n).
void op_tanh_backward(const float* y, const float* dy, float* dx, int64_t n);

// x (rows, cols), bias (cols), out (rows, cols).
void op_bias_gelu_forward(const float* x, const float* bias, float* out, int64_t rows, int64_t cols);
// x, dy, dx (rows, cols), bias, dbias (cols).
void op_bias_gelu_backward(const float* x, const float* bias, const float* dy, float* dx, float* dbias, int64_t rows,
                           int64_t cols);

// x, out (n); p in [0, 1).
void op_dropout_forward(const float* x, float* out, int64_t n, double p, uint32_t seed);
// dy, dx (n); p in [0, 1).
void op_dropout_backward(const float* dy, float* dx, int64_t n, double p, uint32_t seed);

// x, out (rows, cols), mask (ceil(rows / maskGroup), cols) or null.
void op_softmax_forward(const float* x, float* out, int64_t rows, int64_t cols, double scale, const float* mask,
                        int64_t mask_group);
// y, dy, dx (rows, cols).
void op_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols, double scale);

// x, out (rows, cols), gamma, beta (cols), mean, rstd (rows).
void op_layernorm_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean, float* rstd,
                          int64_t rows, int64_t cols, double eps);
// x, dy, dx (rows, cols), gamma, dgamma, dbeta (cols), mean, rstd (rows).
void op_layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                           float* dx, float* dgamma, float* dbeta, int64_t rows, int64_t cols);

// x, y, sum, out (rows, cols), gamma, beta (cols), mean, rstd (rows).
void op_add_layernorm_forward(const float* x, const float* y, const float* gamma, const float* beta, float* sum,
                              float* out, float* mean, float* rstd, int64_t rows, int64_t cols, double eps);

// logits (rows, cols), targets (rows), losses, lse (rows). Targets already checked.
void op_cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows,
                              int64_t cols, int64_t ignore_index);
// logits, dlogits (rows, cols), targets, lse (rows). Targets already checked.
void op_cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse, float* dlogits,
                               int64_t rows, int64_t cols, int64_t ignore_index, double grad_scale);

// table (vocab, dim), ids (n), out (n, dim). Ids already checked.
void op_embedding_forward(const float* table, const int32_t* ids, float* out, int64_t n, int64_t dim);
// dout (n, dim), ids (n), dtable (vocab, dim): accumulates in order of i. Ids already checked.
void op_embedding_backward(const float* dout, const int32_t* ids, float* dtable, int64_t n, int64_t dim);

// x (d0, d1, d2, d3), out (d[p0], d[p1], d[p2], d[p3]).
void op_permute4(const float* x, float* out, const int64_t d[4], const int p[4]);

// x (batch, seq, parts, heads, dim), bias (heads * dim) or null, out (batch, heads, seq, dim).
void op_split_heads(const float* x, const float* bias, float* out, int64_t batch, int64_t seq, int64_t parts,
                    int64_t part, int64_t heads, int64_t dim);
// x (batch, heads, seq, dim), out (batch, seq, parts, heads, dim): part `part` written.
void op_merge_heads(const float* x, float* out, int64_t batch, int64_t seq, int64_t parts, int64_t part,
                    int64_t heads, int64_t dim);

// param, grad, m, v (n).
void op_adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1,
                   double beta2, double eps, double weight_decay, double bc1, double bc2);

// Reductions over (n), accumulated in double.
double op_sum(const float* a, int64_t n);
double op_dot(const float* a, const float* b, int64_t n);
double op_sum_squares(const float* a, int64_t n);
bool op_all_finite(const float* a, int64_t n);

}  // namespace untie
