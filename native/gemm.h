#pragma once
#include <cstdint>

namespace untie {

// a (batch, m, k) or (batch, k, m) when transA, b (batch, k, n) or (batch, n, k)
// when transB, c (batch, m, n), each batch item at i * stride (0 broadcasts):
// C_i = alpha * op(A_i) @ op(B_i) + beta * C_i. beta = 0 never reads C.
// Shapes and lengths are validated by the caller.
void gemm(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k,
          bool transA, bool transB, int64_t strideA, int64_t strideB, int64_t strideC, float alpha,
          float beta);

}  // namespace untie
