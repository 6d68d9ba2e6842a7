// Kernel bodies, compiled once per instruction set: ops.cc includes this file
// inside namespace untie::isa_<name> with VBYTES (vector width in bytes) set
// and the matching `#pragma GCC target`. No include guard on purpose.
//
// Math is done in double wherever the reference (plain TypeScript, which
// computes in double and rounds on store) does, in the same order, so most
// results match it bit for bit. The exception is the exp/erf-bound kernels
// (GELU, softmax forward, cross-entropy): they run in float32 with our own
// vectorised expf (see "float32 vector math"), within ~2e-6 relative of the
// reference; softmax backward and layernorm stay in double.

typedef double vd __attribute__((vector_size(VBYTES)));
typedef float vf __attribute__((vector_size(VBYTES / 2)));
typedef long long vl __attribute__((vector_size(VBYTES)));
constexpr int VL = VBYTES / 8;  // doubles per vector

static inline vd bc(double x) { return vd{} + x; }
static inline vd loadf(const float* p) {
  vf t;
  __builtin_memcpy(&t, p, sizeof t);
  return __builtin_convertvector(t, vd);
}
static inline void storef(float* p, vd x) {
  vf t = __builtin_convertvector(x, vf);
  __builtin_memcpy(p, &t, sizeof t);
}
static inline double hsum(vd v) {
  double s = 0.0;
  for (int l = 0; l < VL; l++) s += v[l];
  return s;
}

// ---- float32 vector math (GELU, softmax, cross-entropy)
//
// These kernels are bound by exp/erf throughput, and doing them in double
// cost 2-5 ns per element. In float, with the error terms below, they stay
// within ~1e-6 relative of the reference's double results (measured: see
// test/native-kernels.test.ts), and every element goes through the same
// vector code on a given path, so results are still deterministic.

typedef float vF __attribute__((vector_size(VBYTES)));
typedef int32_t vI __attribute__((vector_size(VBYTES)));
constexpr int FL = VBYTES / 4;  // floats per vector

static inline vF bcf(float x) { return vF{} + x; }
static inline vF ldF(const float* p) {
  vF v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void stF(float* p, vF v) { __builtin_memcpy(p, &v, sizeof v); }
static inline float hsumF(vF v) {
  float s = 0.0f;
  for (int l = 0; l < FL; l++) s += v[l];
  return s;
}
static inline float hmaxF(vF v) {
  float m = v[0];
  for (int l = 1; l < FL; l++) m = v[l] > m ? v[l] : m;
  return m;
}
// a * b + c, fused where the path has FMA (the build uses -ffp-contract=off,
// so it is spelled out).
static inline vF fmaF(vF a, vF b, vF c) {
#if VBYTES == 64
  return (vF)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif VBYTES == 32
  return (vF)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}
// The rounding error of the product p = fl(a * b): a * b - p (exact with FMA;
// zero, i.e. not corrected, on the portable path).
static inline vF prod_err(vF a, vF b, vF p) {
#if VBYTES >= 32
  return fmaF(a, b, -p);
#else
  (void)a; (void)b; (void)p;
  return vF{};
#endif
}

// exp(x) in float: x = n ln2 + r, |r| <= ln2/2, exp(r) by Cephes' degree-7
// polynomial (relative error ~1.5e-7), times 2^n built in the exponent bits.
// x below -87.3 (where exp underflows float's normal range; -inf included)
// gives 0, x above 88 is clamped; NaN stays NaN.
static inline vF vexpf(vF x) {
  const vF lo = bcf(-87.33654f);
  const vF xc = x > bcf(88.0f) ? bcf(88.0f) : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const vF t = xc * 1.44269504088896341f + shifter;
  const vF n = t - shifter;
  vF r = fmaF(n, bcf(-0.693359375f), xc);  // ln2 high part: n * it is exact
  r = fmaF(n, bcf(2.12194440e-4f), r);     // ln2 low part
  vF p = bcf(1.9875691500e-4f);
  p = fmaF(p, r, bcf(1.3981999507e-3f));
  p = fmaF(p, r, bcf(8.3334519073e-3f));
  p = fmaF(p, r, bcf(4.1665795894e-2f));
  p = fmaF(p, r, bcf(1.6666665459e-1f));
  p = fmaF(p, r, bcf(5.0000001201e-1f));
  p = fmaF(p * r, r, r) + 1.0f;
  const vI bits = (((vI)t - (vI)bcf(shifter)) + 127) << 23;
  const vF y = p * (vF)bits;
  return xc < lo ? bcf(0.0f) : y;
}

// 1 + erf(x / sqrt(2)) = 2 * Phi(x), as the reference computes erf (Numerical
// Recipes' erfc fit) but without forming erf: for x < 0 the result is erfc(z)
// itself, which 1 + erf would lose to cancellation in float. z^2 = x^2 / 2 is
// carried with its rounding error, since exp amplifies an absolute error in
// its argument into a relative one.
static inline vF vgelu_cdf2(vF x) {
  const vF z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
  const vF xx = x * x;
  const vF xx_err = prod_err(x, x, xx);
  const vF t = 1.0f / (1.0f + 0.5f * z);
  vF q = bcf(0.17087277f);
  q = fmaF(q, t, bcf(-0.82215223f));
  q = fmaF(q, t, bcf(1.48851587f));
  q = fmaF(q, t, bcf(-1.13520398f));
  q = fmaF(q, t, bcf(0.27886807f));
  q = fmaF(q, t, bcf(-0.18628806f));
  q = fmaF(q, t, bcf(0.09678418f));
  q = fmaF(q, t, bcf(0.37409196f));
  q = fmaF(q, t, bcf(1.00002368f));
  q = fmaF(q, t, bcf(-1.26551223f));
  vF e = vexpf(q - 0.5f * xx);
  e = fmaF(e, -0.5f * xx_err, e);  // exp(a - d) ~ exp(a) (1 - d)
  const vF r = t * e;              // erfc(|z|)
  return x >= 0.0f ? 2.0f - r : r;
}

// out[i] = f(x[i]) (mapF1) or f(x[i], y[i]) (mapF2) for i < n, in float
// vectors; the tail is padded so every element goes through the same code.
template <class F>
static inline void mapF1(const float* x, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 2 * FL <= n; i += 2 * FL) {
    const vF y0 = f(ldF(x + i)), y1 = f(ldF(x + i + FL));
    stF(out + i, y0);
    stF(out + i + FL, y1);
  }
  for (; i + FL <= n; i += FL) stF(out + i, f(ldF(x + i)));
  if (i < n) {
    float tx[FL] = {}, to[FL];
    const int64_t rest = n - i;
    __builtin_memcpy(tx, x + i, rest * sizeof(float));
    stF(to, f(ldF(tx)));
    __builtin_memcpy(out + i, to, rest * sizeof(float));
  }
}
template <class F>
static inline void mapF2(const float* x, const float* y, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 2 * FL <= n; i += 2 * FL) {
    const vF z0 = f(ldF(x + i), ldF(y + i)), z1 = f(ldF(x + i + FL), ldF(y + i + FL));
    stF(out + i, z0);
    stF(out + i + FL, z1);
  }
  for (; i + FL <= n; i += FL) stF(out + i, f(ldF(x + i), ldF(y + i)));
  if (i < n) {
    float tx[FL] = {}, ty[FL] = {}, to[FL];
    const int64_t rest = n - i;
    __builtin_memcpy(tx, x + i, rest * sizeof(float));
    __builtin_memcpy(ty, y + i, rest * sizeof(float));
    stF(to, f(ldF(tx), ldF(ty)));
    __builtin_memcpy(out + i, to, rest * sizeof(float));
  }
}

// out[i] = f(x[i], y[i]) for i < n, in vectors of VL; the tail is padded so
// that every element goes through the same vector code.
template <class F>
static inline void map2(const float* x, const float* y, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 4 * VL <= n; i += 4 * VL) {
    const vd z0 = f(loadf(x + i), loadf(y + i)), z1 = f(loadf(x + i + VL), loadf(y + i + VL)),
             z2 = f(loadf(x + i + 2 * VL), loadf(y + i + 2 * VL)), z3 = f(loadf(x + i + 3 * VL), loadf(y + i + 3 * VL));
    storef(out + i, z0);
    storef(out + i + VL, z1);
    storef(out + i + 2 * VL, z2);
    storef(out + i + 3 * VL, z3);
  }
  for (; i + VL <= n; i += VL) storef(out + i, f(loadf(x + i), loadf(y + i)));
  if (i < n) {
    float tx[VL] = {}, ty[VL] = {}, to[VL];
    const int64_t rest = n - i;
    __builtin_memcpy(tx, x + i, rest * sizeof(float));
    __builtin_memcpy(ty, y + i, rest * sizeof(float));
    storef(to, f(loadf(tx), loadf(ty)));
    __builtin_memcpy(out + i, to, rest * sizeof(float));
  }
}

// ---- elementwise (float ops give the same result as the reference's double ops then rounding)

static void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
static void mul(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}
static void scale(const float* a, double s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = (float)(s * (double)a[i]);
}
static void axpy(float* dst, const float* src, double s, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = (float)((double)dst[i] + s * (double)src[i]);
}
// x (rows, cols), bias (cols), out (rows, cols)
static void add_row_vector(const float* x, const float* bias, float* out, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    float* orow = out + r * cols;
    for (int64_t c = 0; c < cols; c++) orow[c] = xr[c] + bias[c];
  }
}
// x (rows, cols), out (cols): columns [c0, c1), rows summed in order, in double.
static void sum_rows(const float* x, float* out, int64_t rows, int64_t cols, int64_t c0, int64_t c1, double* acc) {
  const int64_t w = c1 - c0;
  for (int64_t c = 0; c < w; c++) acc[c] = 0.0;
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols + c0;
    for (int64_t c = 0; c < w; c++) acc[c] += (double)xr[c];
  }
  for (int64_t c = 0; c < w; c++) out[c0 + c] = (float)acc[c];
}

// ---- activations

static void gelu_forward(const float* x, float* out, int64_t n) {
  mapF1(x, out, n, [](vF v) { return 0.5f * v * vgelu_cdf2(v); });
}
// gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
static void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  mapF2(x, dy, dx, n, [](vF v, vF g) {
    const vF cdf = 0.5f * vgelu_cdf2(v);
    const vF vv = v * v;
    vF e = vexpf(-0.5f * vv);
    e = fmaF(e, -0.5f * prod_err(v, v, vv), e);
    return g * fmaF(v, 0.3989422804014327f * e, cdf);
  });
}
static void tanh_forward(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = (float)__builtin_tanh((double)x[i]);
}
static void tanh_backward(const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const double yi = y[i];
    dx[i] = (float)((double)dy[i] * (1.0 - yi * yi));
  }
}

// x (rows, cols), bias (cols): rows [r0, r1) of gelu(x + bias).
static void bias_gelu_forward(const float* x, const float* bias, float* out, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; r++)
    mapF2(x + r * cols, bias, out + r * cols, cols, [](vF v, vF b) {
      const vF s = v + b;
      return 0.5f * s * vgelu_cdf2(s);
    });
}

// Columns [c0, c1) of dx = dy * gelu'(x + bias), and their sums over the
// rows, in order, in acc (c1 - c0 doubles). A row's segment is computed as
// geluBackward computes it, through a padded vector for its tail.
static void bias_gelu_backward(const float* x, const float* bias, const float* dy, float* dx, int64_t rows,
                               int64_t cols, int64_t c0, int64_t c1, double* acc) {
  const int64_t w = c1 - c0;
  for (int64_t c = 0; c < w; c++) acc[c] = 0.0;
  float pre[64];
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t s = 0; s < w; s += 64) {
      const int64_t len = w - s < 64 ? w - s : 64;
      const int64_t off = r * cols + c0 + s;
      add(x + off, bias + c0 + s, pre, len);
      gelu_backward(pre, dy + off, dx + off, len);
      for (int64_t c = 0; c < len; c++) acc[s + c] += (double)dx[off + c];
    }
  }
}

// Elements [i0, i1) of inverted dropout (forward: x -> out; backward: dy ->
// dx, the same mask): keep iff (hash >> 8) >= threshold, which is
// dropoutUniform(seed, i) >= p with threshold = ceil(p * 2^24).
static void dropout(const float* x, float* out, int64_t i0, int64_t i1, uint32_t threshold, float keep,
                    uint32_t seed) {
  for (int64_t i = i0; i < i1; i++) {
    uint32_t h = seed ^ ((uint32_t)i * 0x9e3779b1u);
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    out[i] = x[i] * ((h >> 8) >= threshold ? keep : 0.0f);
  }
}

// ---- softmax: rows [r0, r1), in float; out holds the row's scaled, masked
// logits, then their exps. The tail is padded with -inf (exp gives 0).

static void softmax_forward(const float* x, float* out, int64_t r0, int64_t r1, int64_t cols, double scale,
                            const float* mask, int64_t group) {
  const float ninf = -__builtin_inff();
  const vF vsc = bcf((float)scale);
  const int64_t full = cols / FL * FL, rest = cols - full;
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    const float* mr = mask ? mask + (r / group) * cols : nullptr;
    float* orow = out + r * cols;
    vF vmax = bcf(ninf);
    for (int64_t c = 0; c < full; c += FL) {
      vF v = vsc * ldF(xr + c);
      if (mr) v = v + ldF(mr + c);
      stF(orow + c, v);
      vmax = v > vmax ? v : vmax;
    }
    vF vtail = bcf(ninf);
    for (int64_t j = 0; j < rest; j++) {
      float v = (float)scale * xr[full + j];
      if (mr) v = v + mr[full + j];
      vtail[j] = v;
    }
    vmax = vtail > vmax ? vtail : vmax;
    const float max = hmaxF(vmax);
    if (max == ninf) {
      for (int64_t c = 0; c < cols; c++) orow[c] = 0.0f;
      continue;
    }
    const vF vm = bcf(max);
    vF s0 = vF{}, s1 = vF{};
    int64_t c = 0;
    for (; c + 2 * FL <= full; c += 2 * FL) {
      const vF e0 = vexpf(ldF(orow + c) - vm), e1 = vexpf(ldF(orow + c + FL) - vm);
      stF(orow + c, e0);
      stF(orow + c + FL, e1);
      s0 += e0;
      s1 += e1;
    }
    for (; c < full; c += FL) {
      const vF e = vexpf(ldF(orow + c) - vm);
      stF(orow + c, e);
      s0 += e;
    }
    const vF et = vexpf(vtail - vm);
    s1 += et;
    const vF inv = bcf(1.0f / hsumF(s0 + s1));
    for (c = 0; c < full; c += FL) stF(orow + c, ldF(orow + c) * inv);
    for (int64_t j = 0; j < rest; j++) orow[full + j] = et[j] * inv[0];
  }
}

static void softmax_backward(const float* y, const float* dy, float* dx, int64_t r0, int64_t r1, int64_t cols,
                             double scale) {
  for (int64_t r = r0; r < r1; r++) {
    const float* yr = y + r * cols;
    const float* gr = dy + r * cols;
    float* dr = dx + r * cols;
    vd vdot = bc(0.0);
    int64_t c = 0;
    for (; c + VL <= cols; c += VL) vdot += loadf(gr + c) * loadf(yr + c);
    double dot = hsum(vdot);
    for (; c < cols; c++) dot += (double)gr[c] * (double)yr[c];
    const vd vdt = bc(dot);
    map2(yr, gr, dr, cols, [&](vd yv, vd gv) { return scale * yv * (gv - vdt); });
  }
}

// ---- layernorm

static void layernorm_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                              float* rstd, int64_t r0, int64_t r1, int64_t cols, double eps) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    vd vs = bc(0.0);
    int64_t c = 0;
    for (; c + VL <= cols; c += VL) vs += loadf(xr + c);
    double mu = hsum(vs);
    for (; c < cols; c++) mu += (double)xr[c];
    mu /= (double)cols;
    const vd vmu = bc(mu);
    vd vv = bc(0.0);
    for (c = 0; c + VL <= cols; c += VL) {
      const vd d = loadf(xr + c) - vmu;
      vv += d * d;
    }
    double var = hsum(vv);
    for (; c < cols; c++) {
      const double d = (double)xr[c] - mu;
      var += d * d;
    }
    var /= (double)cols;
    const double rs = 1.0 / __builtin_sqrt(var + eps);
    mean[r] = (float)mu;
    rstd[r] = (float)rs;
    float* orow = out + r * cols;
    const vd vrs = bc(rs);
    for (c = 0; c + VL <= cols; c += VL)
      storef(orow + c, (loadf(xr + c) - vmu) * vrs * loadf(gamma + c) + loadf(beta + c));
    for (; c < cols; c++) orow[c] = (float)(((double)xr[c] - mu) * rs * (double)gamma[c] + (double)beta[c]);
  }
}

// dx for rows [r0, r1).
static void layernorm_backward_dx(const float* x, const float* gamma, const float* mean, const float* rstd,
                                  const float* dy, float* dx, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    float* dr = dx + r * cols;
    const double mu = mean[r], rs = rstd[r];
    const vd vmu = bc(mu), vrs = bc(rs);
    vd vg = bc(0.0), vgx = bc(0.0);
    int64_t c = 0;
    for (; c + VL <= cols; c += VL) {
      const vd xhat = (loadf(xr + c) - vmu) * vrs;
      const vd g = loadf(gr + c) * loadf(gamma + c);
      vg += g;
      vgx += g * xhat;
    }
    double mg = hsum(vg), mgx = hsum(vgx);
    for (; c < cols; c++) {
      const double xhat = ((double)xr[c] - mu) * rs;
      const double g = (double)gr[c] * (double)gamma[c];
      mg += g;
      mgx += g * xhat;
    }
    mg /= (double)cols;
    mgx /= (double)cols;
    const vd vmg = bc(mg), vmgx = bc(mgx);
    for (c = 0; c + VL <= cols; c += VL) {
      const vd xhat = (loadf(xr + c) - vmu) * vrs;
      const vd g = loadf(gr + c) * loadf(gamma + c);
      storef(dr + c, vrs * (g - vmg - xhat * vmgx));
    }
    for (; c < cols; c++) {
      const double xhat = ((double)xr[c] - mu) * rs;
      const double g = (double)gr[c] * (double)gamma[c];
      dr[c] = (float)(rs * (g - mg - xhat * mgx));
    }
  }
}

// dgamma, dbeta for columns [c0, c1), rows summed in order. acc: 2 * (c1 - c0) doubles.
static void layernorm_backward_dgb(const float* x, const float* mean, const float* rstd, const float* dy,
                                   float* dgamma, float* dbeta, int64_t rows, int64_t cols, int64_t c0, int64_t c1,
                                   double* acc) {
  const int64_t w = c1 - c0;
  double* dg = acc;
  double* db = acc + w;
  for (int64_t c = 0; c < w; c++) dg[c] = db[c] = 0.0;
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols + c0;
    const float* gr = dy + r * cols + c0;
    const double mu = mean[r], rs = rstd[r];
    for (int64_t c = 0; c < w; c++) {
      const double xhat = ((double)xr[c] - mu) * rs;
      dg[c] += (double)gr[c] * xhat;
      db[c] += (double)gr[c];
    }
  }
  for (int64_t c = 0; c < w; c++) {
    dgamma[c0 + c] = (float)dg[c];
    dbeta[c0 + c] = (float)db[c];
  }
}

// ---- cross-entropy: rows [r0, r1); targets already validated

// exps in float, summed in double (8192-wide rows); lse in double as the reference.
static void cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t r0,
                                  int64_t r1, int64_t cols, int64_t ignore) {
  const int64_t full = cols / FL * FL, rest = cols - full;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t t = targets[r];
    if (t == ignore) {
      losses[r] = 0.0f;
      lse[r] = 0.0f;
      continue;
    }
    const float* lr = logits + r * cols;
    vF vmax = bcf(-__builtin_inff());
    for (int64_t c = 0; c < full; c += FL) {
      const vF v = ldF(lr + c);
      vmax = v > vmax ? v : vmax;
    }
    float max = hmaxF(vmax);
    for (int64_t j = 0; j < rest; j++) max = lr[full + j] > max ? lr[full + j] : max;
    const vF vm = bcf(max);
    vd s0 = bc(0.0), s1 = bc(0.0);
    for (int64_t c = 0; c < full; c += FL) {
      const vF e = vexpf(ldF(lr + c) - vm);
      // both halves of e, widened to double
      for (int h = 0; h < FL; h += VL) {
        vf half;
        __builtin_memcpy(&half, (const float*)&e + h, sizeof half);
        if (h == 0) s0 += __builtin_convertvector(half, vd);
        else s1 += __builtin_convertvector(half, vd);
      }
    }
    double sum = hsum(s0 + s1);
    if (rest) {
      vF v = bcf(-__builtin_inff());
      for (int64_t j = 0; j < rest; j++) v[j] = lr[full + j];
      const vF e = vexpf(v - vm);
      for (int64_t j = 0; j < rest; j++) sum += (double)e[j];
    }
    const double l = (double)max + __builtin_log(sum);
    lse[r] = (float)l;
    losses[r] = (float)(l - (double)lr[t]);
  }
}

// exp(logit - lse): the difference is formed exactly (as hi + lo, Knuth's
// two-sum) so that its rounding does not become a relative error of exp.
static inline vF vexp_diff(vF a, vF b) {
  const vF d = a - b;
  const vF bb = d - a;
  const vF lo = (a - (d - bb)) + (-b - bb);
  const vF e = vexpf(d);
  return fmaF(e, lo, e);
}

static void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse, float* dlogits,
                                   int64_t r0, int64_t r1, int64_t cols, int64_t ignore, double grad_scale) {
  const vF gs = bcf((float)grad_scale);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t t = targets[r];
    float* dr = dlogits + r * cols;
    if (t == ignore) {
      for (int64_t c = 0; c < cols; c++) dr[c] = 0.0f;
      continue;
    }
    const float* lr = logits + r * cols;
    const vF vl_ = bcf(lse[r]);
    mapF1(lr, dr, cols, [&](vF v) { return gs * vexp_diff(v, vl_); });
    const double pt = (double)vexp_diff(bcf(lr[t]), vl_)[0];
    dr[t] = (float)(grad_scale * (pt - 1.0));
  }
}

// ---- optimizer

static void adamw_step(float* param, const float* grad, float* m, float* v, int64_t i0, int64_t i1, double decay,
                       double beta1, double beta2, double step_size, double sqrt_bc2, double eps) {
  const double one_b1 = 1.0 - beta1, one_b2 = 1.0 - beta2;
  for (int64_t i = i0; i < i1; i++) {
    const double g = grad[i];
    const float p = (float)((double)param[i] * decay);
    const float mi = (float)(beta1 * (double)m[i] + one_b1 * g);
    const float vi = (float)(beta2 * (double)v[i] + one_b2 * g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = (float)((double)p - step_size * (double)mi / (__builtin_sqrt((double)vi) / sqrt_bc2 + eps));
  }
}

// ---- reductions over one chunk

static double sum(const float* a, int64_t n) {
  vd s = bc(0.0);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) s += loadf(a + i);
  double r = hsum(s);
  for (; i < n; i++) r += (double)a[i];
  return r;
}
static double dot(const float* a, const float* b, int64_t n) {
  vd s = bc(0.0);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) s += loadf(a + i) * loadf(b + i);
  double r = hsum(s);
  for (; i < n; i++) r += (double)a[i] * (double)b[i];
  return r;
}
static double sum_squares(const float* a, int64_t n) {
  vd s = bc(0.0);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) {
    const vd x = loadf(a + i);
    s += x * x;
  }
  double r = hsum(s);
  for (; i < n; i++) r += (double)a[i] * (double)a[i];
  return r;
}
// x * 0 is 0 for finite x and NaN for infinities and NaN.
static bool all_finite(const float* a, int64_t n) {
  vd s = bc(0.0);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) s += loadf(a + i) * 0.0;
  double r = hsum(s);
  for (; i < n; i++) r += (double)a[i] * 0.0;
  return r == 0.0;
}

static const OpsTable table = {
    add, mul, scale, axpy, add_row_vector, sum_rows, gelu_forward, gelu_backward, tanh_forward, tanh_backward,
    bias_gelu_forward, bias_gelu_backward, dropout, softmax_forward, softmax_backward, layernorm_forward, layernorm_backward_dx,
    layernorm_backward_dgb, cross_entropy_forward, cross_entropy_backward, adamw_step, sum, dot, sum_squares,
    all_finite,
};
