// Self-attention for many tiny heads (AMU: 10 heads of width 2 over 160 genes) as one
// TensorFlow CPU op, computed per (sample, head) inside the L1 cache.
//
// The TensorFlow-ops version (amu_tf/layers/tiny_head_attention.py) materialises the
// [batch, heads, T, T] score tensor (1 MB per sample) and makes several memory-bound passes
// over it.  Here, as in FlashAttention, that tensor is never stored: the forward pass keeps
// one row of T scores at a time and saves only the row's log-sum-exp; the backward pass
// recomputes the scores (2 multiply-adds each for heads of width 2) and the dropout mask
// (a counter-based hash of the element's position, so it needs no storage either).
//
// AmuTinyAttention(qkv [B, T, 3*H*D] float32, seed [2] int32; num_heads H, rate)
//   -> y [B, T, H*D], lse [B, H, T]
//   qkv is the fused projection: queries (already scaled by 1/sqrt(D)), keys, values, each
//   laid out [H, D] along the last axis, i.e. the layout of reshape(qkv, [B, T, 3, H, D]).
//   y = dropout(softmax(q k^T)) v per head, dropout keeping an element with probability
//   keep = thr / 2^24 and dividing by exactly keep (unbiased).
// AmuTinyAttentionGrad(qkv, seed, y, lse, dy; num_heads, rate) -> dqkv [B, T, 3*H*D]
//
// Built on first use by amu_tf/kernels/tiny_attention.py (g++ and TensorFlow's headers).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::errors::InvalidArgument;
using tensorflow::shape_inference::DimensionHandle;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

// Sixteen float lanes (GCC/Clang vector extensions: one AVX-512 register here, two AVX2
// registers on older CPUs), used by the forward pass to compute sixteen query rows at once.
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
typedef uint32_t vu16 __attribute__((vector_size(64)));
constexpr int kLanes = 16;

static inline vf16 splat(float a) { return vf16{} + a; }
static inline vu16 splat_u(uint32_t a) { return vu16{} + a; }

// What exp and the hash need to be written once for float / uint32_t and for the vectors.
static inline float like(float, float a) { return a; }
static inline vf16 like(vf16, float a) { return splat(a); }
static inline int32_t to_int(float x) { return static_cast<int32_t>(x); }
static inline vi16 to_int(vf16 x) { return __builtin_convertvector(x, vi16); }
static inline float bits_to_float(int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}
static inline vf16 bits_to_float(vi16 b) {
  vf16 f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}

// exp(x) for x <= 0 (every call: a score minus an upper bound of its row's maximum or its
// row's log-sum-exp; x below -87 gives exp(-87) ~ 1.6e-38 instead of a smaller number, which
// is below float32 resolution next to the row's largest term): Cephes' expf (range reduction
// by ln 2, degree-6 polynomial), written so that the compiler vectorises it (F = float in
// loops over keys, or vf16 for sixteen rows at once); about 1 ulp.
template <typename F>
static inline F vexp(F x) {
  x = x < like(x, -87.0f) ? like(x, -87.0f) : x;
  const F magic = like(x, 12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  F t = x * 1.44269504088896341f + magic;
  F n = t - magic;
  F r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F p = like(x, 1.9875691500E-4f);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  return p * bits_to_float((to_int(n) + 127) << 23);
}

// A 32-bit integer mixer (Wellons' "lowbias32"), used as a counter-based random generator
// (U = uint32_t, or vu16 for sixteen rows at once: the same hash per lane).
template <typename U>
static inline U mix32(U x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

struct Dims {
  int64_t B, T, H, D;
  int64_t row() const { return 3 * H * D; }  // qkv row stride
};

struct Dropout {
  bool on = false;
  uint32_t key = 0;
  uint32_t thr = 1u << 24;  // keep if (hash >> 8) < thr
  float inv_keep = 1.0f;
};

static Dropout make_dropout(float rate, const int32_t* seed) {
  Dropout d;
  if (rate <= 0.0f) return d;
  d.on = true;
  double keep = std::round((1.0 - rate) * 16777216.0);
  if (keep < 1.0) keep = 1.0;
  d.thr = static_cast<uint32_t>(keep);
  d.inv_keep = static_cast<float>(16777216.0 / keep);
  d.key = mix32(static_cast<uint32_t>(seed[0]) ^ mix32(static_cast<uint32_t>(seed[1]) + 0x9e3779b9u));
  return d;
}

// 1.0 where the element (row key, column j) is kept, else 0.0 (unscaled).
static inline void keep_row(const Dropout& dr, uint32_t row_key, int64_t T, float* keep) {
  const uint32_t thr = dr.thr;
#pragma omp simd
  for (int64_t j = 0; j < T; ++j) {
    uint32_t h = mix32(row_key + static_cast<uint32_t>(j) * 0x9e3779b9u);
    keep[j] = (h >> 8) < thr ? 1.0f : 0.0f;
  }
}

static inline uint32_t row_key(const Dropout& dr, const Dims& s, int64_t b, int64_t h, int64_t i) {
  return mix32(static_cast<uint32_t>((b * s.H + h) * s.T + i) ^ dr.key);
}

// Scratch for one (sample, head): keys and values transposed to [D][T] so the loops over
// the T keys are unit-stride.
struct Scratch {
  std::vector<float> qT, kT, vT, s, e, keep, dkT, dvT, kmin, kmax;
  explicit Scratch(const Dims& d)
      : qT(d.D * d.T), kT(d.D * d.T), vT(d.D * d.T), s(d.T), e(d.T), keep(d.T), dkT(d.D * d.T),
        dvT(d.D * d.T), kmin(d.D), kmax(d.D) {}
};

static void load_kv(const float* qkv, const Dims& s, int64_t b, int64_t h, Scratch* w) {
  const int64_t HD = s.H * s.D;
  for (int64_t t = 0; t < s.T; ++t) {
    const float* r = qkv + (b * s.T + t) * s.row();
    for (int64_t d = 0; d < s.D; ++d) {
      w->kT[d * s.T + t] = r[HD + h * s.D + d];
      w->vT[d * s.T + t] = r[2 * HD + h * s.D + d];
    }
  }
  for (int64_t d = 0; d < s.D; ++d) {
    const float* kd = w->kT.data() + d * s.T;
    float lo = kd[0], hi = kd[0];
    for (int64_t t = 1; t < s.T; ++t) {
      lo = kd[t] < lo ? kd[t] : lo;
      hi = kd[t] > hi ? kd[t] : hi;
    }
    w->kmin[d] = lo;
    w->kmax[d] = hi;
  }
}

// An upper bound of max_j q . k_j from the keys' per-dimension ranges (O(D), no pass over
// the keys). Subtracting it instead of the exact maximum keeps every exp() <= 1 and leaves
// softmax unchanged; only when the bound is far above the maximum (the row sum underflows)
// is the row recomputed with the exact maximum.
static inline float score_bound(const float* q, const Scratch& w, int64_t D) {
  float m = 0.0f;
  for (int64_t d = 0; d < D; ++d) m += q[d] >= 0.0f ? q[d] * w.kmax[d] : q[d] * w.kmin[d];
  return m;
}

// One query row, keys and values of width D (1 to 4) known at compile time, all in one pass
// over the keys: scores, exp, row sum, dropout and the weighted sum of values (scalar
// accumulators: the compiler vectorises the loop over keys). Returns false (the row is to be
// redone with the exact maximum) when the row sum underflowed.
template <int D, bool DROP>
static inline bool forward_row_fused(const float* q, const Scratch& w, int64_t T,
                                     const Dropout& dr, uint32_t rk, float* yi, float* lse_i) {
  const float m = score_bound(q, w, D);
  const float* k0 = w.kT.data();
  const float* k1 = k0 + T;
  const float* k2 = k1 + T;
  const float* k3 = k2 + T;
  const float* v0 = w.vT.data();
  const float* v1 = v0 + T;
  const float* v2 = v1 + T;
  const float* v3 = v2 + T;
  const float q0 = q[0], q1 = D > 1 ? q[1] : 0.0f, q2 = D > 2 ? q[2] : 0.0f,
              q3 = D > 3 ? q[3] : 0.0f;
  float l = 0.0f, a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
  const uint32_t thr = dr.thr;
#pragma omp simd reduction(+ : l, a0, a1, a2, a3)
  for (int64_t j = 0; j < T; ++j) {
    float sc = q0 * k0[j];
    if constexpr (D > 1) sc += q1 * k1[j];
    if constexpr (D > 2) sc += q2 * k2[j];
    if constexpr (D > 3) sc += q3 * k3[j];
    float e = vexp(sc - m);
    l += e;
    if constexpr (DROP) {
      uint32_t h = mix32(rk + static_cast<uint32_t>(j) * 0x9e3779b9u);
      e = (h >> 8) < thr ? e : 0.0f;
    }
    a0 += e * v0[j];
    if constexpr (D > 1) a1 += e * v1[j];
    if constexpr (D > 2) a2 += e * v2[j];
    if constexpr (D > 3) a3 += e * v3[j];
  }
  if (!(l > 1e-30f)) return false;
  const float norm = dr.inv_keep / l;
  yi[0] = a0 * norm;
  if constexpr (D > 1) yi[1] = a1 * norm;
  if constexpr (D > 2) yi[2] = a2 * norm;
  if constexpr (D > 3) yi[3] = a3 * norm;
  *lse_i = m + std::log(l);
  return true;
}

// Gradient of one query row, fused as above: dv_j and dk_j accumulate in the scratch,
// dq_i is written.
template <int D, bool DROP>
static inline void backward_row_fused(const float* q, const float* dyi, float rowdot, float li,
                                      Scratch* w, int64_t T, const Dropout& dr, uint32_t rk,
                                      float* dqi) {
  const float* k0 = w->kT.data();
  const float* k1 = k0 + T;
  const float* k2 = k1 + T;
  const float* k3 = k2 + T;
  const float* v0 = w->vT.data();
  const float* v1 = v0 + T;
  const float* v2 = v1 + T;
  const float* v3 = v2 + T;
  float* __restrict__ dk0 = w->dkT.data();
  float* __restrict__ dk1 = dk0 + T;
  float* __restrict__ dk2 = dk1 + T;
  float* __restrict__ dk3 = dk2 + T;
  float* __restrict__ dv0 = w->dvT.data();
  float* __restrict__ dv1 = dv0 + T;
  float* __restrict__ dv2 = dv1 + T;
  float* __restrict__ dv3 = dv2 + T;
  const float q0 = q[0], q1 = D > 1 ? q[1] : 0.0f, q2 = D > 2 ? q[2] : 0.0f,
              q3 = D > 3 ? q[3] : 0.0f;
  const float g0 = dyi[0], g1 = D > 1 ? dyi[1] : 0.0f, g2 = D > 2 ? dyi[2] : 0.0f,
              g3 = D > 3 ? dyi[3] : 0.0f;
  float dq0 = 0.0f, dq1 = 0.0f, dq2 = 0.0f, dq3 = 0.0f;
  const uint32_t thr = dr.thr;
  const float c = dr.inv_keep;
#pragma omp simd reduction(+ : dq0, dq1, dq2, dq3)
  for (int64_t j = 0; j < T; ++j) {
    float sc = q0 * k0[j];
    float dp = g0 * v0[j];
    if constexpr (D > 1) { sc += q1 * k1[j]; dp += g1 * v1[j]; }
    if constexpr (D > 2) { sc += q2 * k2[j]; dp += g2 * v2[j]; }
    if constexpr (D > 3) { sc += q3 * k3[j]; dp += g3 * v3[j]; }
    const float p = vexp(sc - li);
    float pk = p, dpk = dp;
    if constexpr (DROP) {
      uint32_t h = mix32(rk + static_cast<uint32_t>(j) * 0x9e3779b9u);
      const float kf = (h >> 8) < thr ? c : 0.0f;
      pk = p * kf;
      dpk = dp * kf;
    }
    const float ds = p * (dpk - rowdot);
    dq0 += ds * k0[j];
    dk0[j] += ds * q0;
    dv0[j] += pk * g0;
    if constexpr (D > 1) { dq1 += ds * k1[j]; dk1[j] += ds * q1; dv1[j] += pk * g1; }
    if constexpr (D > 2) { dq2 += ds * k2[j]; dk2[j] += ds * q2; dv2[j] += pk * g2; }
    if constexpr (D > 3) { dq3 += ds * k3[j]; dk3[j] += ds * q3; dv3[j] += pk * g3; }
  }
  dqi[0] = dq0;
  if constexpr (D > 1) dqi[1] = dq1;
  if constexpr (D > 2) dqi[2] = dq2;
  if constexpr (D > 3) dqi[3] = dq3;
}

// Sixteen query rows at a time, one per vector lane: the loop runs over the keys, whose
// coordinates and values are broadcast, so a query row's scores, exp, row sum and weighted
// sum of values stay in its lane and need no horizontal reductions. The same arithmetic as
// forward_row_fused (bound, exp, dropout hash), only in a different order of summation.
// Rows i0 .. i0+15 of one (sample, head); qT holds the queries transposed to [D][T].
// Returns a bit mask of the lanes whose bound-shifted row sum underflowed (to be redone).
template <int D, bool DROP>
static inline uint32_t forward_block16(const float* qT, const Scratch& w, int64_t T, int64_t i0,
                                       const Dropout& dr, const uint32_t* rks, vf16* y_out,
                                       float* lse_out) {
  vf16 q[D], a[D], m = splat(0.0f), l = splat(0.0f);
  for (int d = 0; d < D; ++d) {
    std::memcpy(&q[d], qT + d * T + i0, sizeof(vf16));
    m += q[d] >= splat(0.0f) ? q[d] * w.kmax[d] : q[d] * w.kmin[d];
    a[d] = splat(0.0f);
  }
  vu16 rk = splat_u(0u);
  if constexpr (DROP) std::memcpy(&rk, rks, sizeof(vu16));
  const float* k = w.kT.data();
  const float* v = w.vT.data();
  for (int64_t j = 0; j < T; ++j) {
    vf16 sc = q[0] * k[j] - m;
    for (int d = 1; d < D; ++d) sc += q[d] * k[d * T + j];
    vf16 e = vexp(sc);
    l += e;
    if constexpr (DROP) {
      const vu16 h = mix32(rk + static_cast<uint32_t>(j) * 0x9e3779b9u);
      e = (h >> 8) < splat_u(dr.thr) ? e : splat(0.0f);
    }
    for (int d = 0; d < D; ++d) a[d] += e * v[d * T + j];
  }
  uint32_t redo = 0;
  const vf16 norm = dr.inv_keep / l;
  for (int d = 0; d < D; ++d) y_out[d] = a[d] * norm;
  for (int lane = 0; lane < kLanes; ++lane) {
    if (!(l[lane] > 1e-30f)) redo |= 1u << lane;
    else lse_out[lane] = m[lane] + std::log(l[lane]);
  }
  return redo;
}

// scores of query row i against all keys into w->s
static inline void scores_row(const float* q, const Dims& s, Scratch* w) {
  float* sc = w->s.data();
  const float* kT = w->kT.data();
  const int64_t T = s.T;
  {
    const float q0 = q[0];
#pragma omp simd
    for (int64_t j = 0; j < T; ++j) sc[j] = q0 * kT[j];
  }
  for (int64_t d = 1; d < s.D; ++d) {
    const float qd = q[d];
    const float* kd = kT + d * T;
#pragma omp simd
    for (int64_t j = 0; j < T; ++j) sc[j] += qd * kd[j];
  }
}

// One query row with the exact row maximum (several passes over the row in w->s and w->e):
// any head width, and the rows whose bound-shifted sum underflowed.
static void forward_row_exact(const float* qkv, const Dims& s, const Dropout& dr, int64_t b,
                              int64_t h, int64_t i, Scratch* w, float* y, float* lse) {
  const int64_t T = s.T, HD = s.H * s.D;
  float* sc = w->s.data();
  float* e = w->e.data();
  float* keep = w->keep.data();
  const float* q = qkv + (b * T + i) * s.row() + h * s.D;
  scores_row(q, s, w);
  float m = sc[0];
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < T; ++j) m = sc[j] > m ? sc[j] : m;
  float l = 0.0f;
#pragma omp simd reduction(+ : l)
  for (int64_t j = 0; j < T; ++j) {
    e[j] = vexp(sc[j] - m);
    l += e[j];
  }
  if (dr.on) {
    keep_row(dr, row_key(dr, s, b, h, i), T, keep);
#pragma omp simd
    for (int64_t j = 0; j < T; ++j) e[j] *= keep[j];
  }
  const float norm = dr.inv_keep / l;
  float* yi = y + (b * T + i) * HD + h * s.D;
  for (int64_t d = 0; d < s.D; ++d) {
    const float* vd = w->vT.data() + d * T;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < T; ++j) acc += e[j] * vd[j];
    yi[d] = acc * norm;
  }
  lse[(b * s.H + h) * T + i] = m + std::log(l);
}

static void forward_item(const float* qkv, const Dims& s, const Dropout& dr, int64_t b,
                         int64_t h, Scratch* w, float* y, float* lse) {
  load_kv(qkv, s, b, h, w);
  const int64_t T = s.T, HD = s.H * s.D;
  int64_t first_row = 0;  // rows before it were done sixteen at a time
  if (s.D <= 4 && T >= kLanes) {
    for (int64_t t = 0; t < T; ++t) {
      const float* r = qkv + (b * T + t) * s.row() + h * s.D;
      for (int64_t d = 0; d < s.D; ++d) w->qT[d * T + t] = r[d];
    }
    for (int64_t i0 = 0; i0 + kLanes <= T; i0 += kLanes) {
      uint32_t rks[kLanes];
      if (dr.on)
        for (int lane = 0; lane < kLanes; ++lane) rks[lane] = row_key(dr, s, b, h, i0 + lane);
      vf16 yv[4];
      float* lse_row = lse + (b * s.H + h) * T + i0;
      uint32_t redo = 0;
#define AMU_FWD16(DD)                                                                      \
  case DD:                                                                                 \
    redo = dr.on ? forward_block16<DD, true>(w->qT.data(), *w, T, i0, dr, rks, yv, lse_row) \
                 : forward_block16<DD, false>(w->qT.data(), *w, T, i0, dr, rks, yv, lse_row); \
    break;
      switch (s.D) {
        AMU_FWD16(1)
        AMU_FWD16(2)
        AMU_FWD16(3)
        AMU_FWD16(4)
      }
#undef AMU_FWD16
      for (int lane = 0; lane < kLanes; ++lane) {
        float* yi = y + (b * T + i0 + lane) * HD + h * s.D;
        for (int64_t d = 0; d < s.D; ++d) yi[d] = yv[d][lane];
      }
      // lanes whose bound-shifted sum underflowed: the exact-maximum path below
      for (int lane = 0; lane < kLanes; ++lane)
        if (redo & (1u << lane)) forward_row_exact(qkv, s, dr, b, h, i0 + lane, w, y, lse);
      first_row = i0 + kLanes;
    }
  }
  for (int64_t i = first_row; i < T; ++i) {
    const float* q = qkv + (b * T + i) * s.row() + h * s.D;
    {
      float* yi = y + (b * T + i) * HD + h * s.D;
      float* li = lse + (b * s.H + h) * T + i;
      const uint32_t rk = dr.on ? row_key(dr, s, b, h, i) : 0u;
      bool done = false;
#define AMU_FWD(DD)                                                                 \
  case DD:                                                                          \
    done = dr.on ? forward_row_fused<DD, true>(q, *w, T, dr, rk, yi, li) \
                 : forward_row_fused<DD, false>(q, *w, T, dr, rk, yi, li); \
    break;
      switch (s.D) {
        AMU_FWD(1)
        AMU_FWD(2)
        AMU_FWD(3)
        AMU_FWD(4)
        default:
          break;
      }
#undef AMU_FWD
      if (done) continue;
    }
    // generic width, or a row whose bound-shifted sum underflowed: exact maximum
    forward_row_exact(qkv, s, dr, b, h, i, w, y, lse);
  }
}

static void backward_item(const float* qkv, const Dims& s, const Dropout& dr, const float* y,
                          const float* lse, const float* dy, int64_t b, int64_t h, Scratch* w,
                          float* dqkv) {
  load_kv(qkv, s, b, h, w);
  const int64_t T = s.T, HD = s.H * s.D, D = s.D;
  std::fill(w->dkT.begin(), w->dkT.end(), 0.0f);
  std::fill(w->dvT.begin(), w->dvT.end(), 0.0f);
  float* sc = w->s.data();
  float* p = w->e.data();
  float* keep = w->keep.data();
  for (int64_t i = 0; i < T; ++i) {
    const float* q = qkv + (b * T + i) * s.row() + h * D;
    const float* dyi = dy + (b * T + i) * HD + h * D;
    const float* yi = y + (b * T + i) * HD + h * D;
    float rowdot = 0.0f;  // rowsum(dP * P) = dy_i . y_i
    for (int64_t d = 0; d < D; ++d) rowdot += dyi[d] * yi[d];
    const float li = lse[(b * s.H + h) * T + i];
    if (D <= 4) {
      const uint32_t rk = dr.on ? row_key(dr, s, b, h, i) : 0u;
      float* dqi = dqkv + (b * T + i) * s.row() + h * D;
#define AMU_BWD(DD)                                                                         \
  case DD:                                                                                  \
    if (dr.on)                                                                              \
      backward_row_fused<DD, true>(q, dyi, rowdot, li, w, T, dr, rk, dqi);                  \
    else                                                                                    \
      backward_row_fused<DD, false>(q, dyi, rowdot, li, w, T, dr, rk, dqi);                 \
    break;
      switch (D) {
        AMU_BWD(1)
        AMU_BWD(2)
        AMU_BWD(3)
        AMU_BWD(4)
      }
#undef AMU_BWD
      continue;
    }
    scores_row(q, s, w);
#pragma omp simd
    for (int64_t j = 0; j < T; ++j) p[j] = vexp(sc[j] - li);
    // sc <- dP_ij = keep_ij / keep * (dy_i . v_j); keep <- keep_ij / keep
    {
      const float d0 = dyi[0];
      const float* v0 = w->vT.data();
#pragma omp simd
      for (int64_t j = 0; j < T; ++j) sc[j] = d0 * v0[j];
      for (int64_t d = 1; d < D; ++d) {
        const float dd = dyi[d];
        const float* vd = w->vT.data() + d * T;
#pragma omp simd
        for (int64_t j = 0; j < T; ++j) sc[j] += dd * vd[j];
      }
    }
    if (dr.on) {
      keep_row(dr, row_key(dr, s, b, h, i), T, keep);
      const float c = dr.inv_keep;
#pragma omp simd
      for (int64_t j = 0; j < T; ++j) {
        keep[j] *= c;
        sc[j] *= keep[j];
      }
    }
    // dv_j += (keep_ij / keep) P_ij dy_i
    for (int64_t d = 0; d < D; ++d) {
      const float dd = dyi[d];
      float* dvd = w->dvT.data() + d * T;
      if (dr.on) {
#pragma omp simd
        for (int64_t j = 0; j < T; ++j) dvd[j] += keep[j] * p[j] * dd;
      } else {
#pragma omp simd
        for (int64_t j = 0; j < T; ++j) dvd[j] += p[j] * dd;
      }
    }
    // dS_ij = P_ij (dP_ij - rowdot), kept in p
#pragma omp simd
    for (int64_t j = 0; j < T; ++j) p[j] = p[j] * (sc[j] - rowdot);
    float* dqi = dqkv + (b * T + i) * s.row() + h * D;
    for (int64_t d = 0; d < D; ++d) {
      const float* kd = w->kT.data() + d * T;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < T; ++j) acc += p[j] * kd[j];
      dqi[d] = acc;
      const float qd = q[d];
      float* dkd = w->dkT.data() + d * T;
#pragma omp simd
      for (int64_t j = 0; j < T; ++j) dkd[j] += p[j] * qd;
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    float* r = dqkv + (b * T + t) * s.row();
    for (int64_t d = 0; d < D; ++d) {
      r[HD + h * D + d] = w->dkT[d * T + t];
      r[2 * HD + h * D + d] = w->dvT[d * T + t];
    }
  }
}

static tensorflow::Status check_inputs(OpKernelContext* ctx, int num_heads, Dims* dims) {
  const Tensor& qkv = ctx->input(0);
  const Tensor& seed = ctx->input(1);
  if (qkv.dims() != 3)
    return InvalidArgument("AmuTinyAttention: qkv must be [batch, tokens, 3*heads*dim], got ",
                           qkv.shape().DebugString());
  const int64_t last = qkv.dim_size(2);
  if (num_heads <= 0 || last % (3 * num_heads) != 0)
    return InvalidArgument("AmuTinyAttention: last axis ", last, " is not 3 * num_heads (",
                           num_heads, ") * head width");
  if (seed.NumElements() != 2) return InvalidArgument("AmuTinyAttention: seed must have 2 values");
  dims->B = qkv.dim_size(0);
  dims->T = qkv.dim_size(1);
  dims->H = num_heads;
  dims->D = last / (3 * num_heads);
  return tensorflow::OkStatus();
}

// What both ops share: the attributes, and running a function over every (sample, head)
// pair on TensorFlow's intra-op threads (each pair on one thread: deterministic).
class AttentionOpBase : public OpKernel {
 public:
  explicit AttentionOpBase(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("num_heads", &num_heads_));
    OP_REQUIRES_OK(c, c->GetAttr("rate", &rate_));
  }

 protected:
  template <typename ItemFn>
  static void for_each_item(OpKernelContext* ctx, const Dims& s, int64_t cost_per_element,
                            ItemFn fn) {
    if (s.B == 0 || s.T == 0) return;
    auto work = [&](int64_t begin, int64_t end) {
      Scratch w(s);
      for (int64_t item = begin; item < end; ++item) fn(item / s.H, item % s.H, &w);
    };
    const auto& pool = *ctx->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(pool.num_threads, pool.workers, s.B * s.H,
                      s.T * s.T * cost_per_element, work);
  }

  int num_heads_;
  float rate_;
};

class AmuTinyAttentionOp : public AttentionOpBase {
 public:
  using AttentionOpBase::AttentionOpBase;

  void Compute(OpKernelContext* ctx) override {
    Dims s;
    OP_REQUIRES_OK(ctx, check_inputs(ctx, num_heads_, &s));
    const float* qkv = ctx->input(0).flat<float>().data();
    const Dropout dr = make_dropout(rate_, ctx->input(1).flat<int32_t>().data());
    Tensor* y_t = nullptr;
    Tensor* lse_t = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({s.B, s.T, s.H * s.D}), &y_t));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({s.B, s.H, s.T}), &lse_t));
    float* y = y_t->flat<float>().data();
    float* lse = lse_t->flat<float>().data();
    for_each_item(ctx, s, s.D * 6 + 40, [&](int64_t b, int64_t h, Scratch* w) {
      forward_item(qkv, s, dr, b, h, w, y, lse);
    });
  }
};

class AmuTinyAttentionGradOp : public AttentionOpBase {
 public:
  using AttentionOpBase::AttentionOpBase;

  void Compute(OpKernelContext* ctx) override {
    Dims s;
    OP_REQUIRES_OK(ctx, check_inputs(ctx, num_heads_, &s));
    const TensorShape yshape({s.B, s.T, s.H * s.D});
    OP_REQUIRES(ctx, ctx->input(2).shape() == yshape && ctx->input(4).shape() == yshape,
                InvalidArgument("AmuTinyAttentionGrad: y and dy must be ", yshape.DebugString()));
    OP_REQUIRES(ctx, ctx->input(3).shape() == TensorShape({s.B, s.H, s.T}),
                InvalidArgument("AmuTinyAttentionGrad: lse must be [batch, heads, tokens]"));
    const float* qkv = ctx->input(0).flat<float>().data();
    const Dropout dr = make_dropout(rate_, ctx->input(1).flat<int32_t>().data());
    const float* y = ctx->input(2).flat<float>().data();
    const float* lse = ctx->input(3).flat<float>().data();
    const float* dy = ctx->input(4).flat<float>().data();
    Tensor* dqkv_t = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, ctx->input(0).shape(), &dqkv_t));
    float* dqkv = dqkv_t->flat<float>().data();
    for_each_item(ctx, s, s.D * 12 + 60, [&](int64_t b, int64_t h, Scratch* w) {
      backward_item(qkv, s, dr, y, lse, dy, b, h, w, dqkv);
    });
  }
};

// Dropout with a counter-based mask: y = x * keep(seed, i) / keep_prob. The mask is a hash
// of the element's index, so the gradient is the same op applied to dy with the same seed.
class AmuHashDropoutOp : public OpKernel {
 public:
  explicit AmuHashDropoutOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("rate", &rate_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_t = ctx->input(0);
    OP_REQUIRES(ctx, ctx->input(1).NumElements() == 2,
                InvalidArgument("AmuHashDropout: seed must have 2 values"));
    Tensor* y_t = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_t.shape(), &y_t));
    const float* x = x_t.flat<float>().data();
    float* y = y_t->flat<float>().data();
    const int64_t n = x_t.NumElements();
    const Dropout dr = make_dropout(rate_, ctx->input(1).flat<int32_t>().data());
    if (n == 0) return;
    auto work = [&](int64_t begin, int64_t end) {
      const uint32_t key = dr.key, thr = dr.thr;
      const float c = dr.inv_keep;
      if (!dr.on) {
        std::memcpy(y + begin, x + begin, sizeof(float) * (end - begin));
        return;
      }
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const uint32_t h = mix32(static_cast<uint32_t>(i) * 0x9e3779b9u + key);
        y[i] = (h >> 8) < thr ? x[i] * c : 0.0f;
      }
    };
    const auto& pool = *ctx->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(pool.num_threads, pool.workers, n, 8, work);
  }

 private:
  float rate_;
};

}  // namespace

REGISTER_OP("AmuTinyAttention")
    .Input("qkv: float")
    .Input("seed: int32")
    .Output("y: float")
    .Output("lse: float")
    .Attr("num_heads: int >= 1")
    .Attr("rate: float = 0.0")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle qkv;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &qkv));
      int num_heads;
      TF_RETURN_IF_ERROR(c->GetAttr("num_heads", &num_heads));
      DimensionHandle hd;
      TF_RETURN_IF_ERROR(c->Divide(c->Dim(qkv, 2), 3, true, &hd));
      c->set_output(0, c->MakeShape({c->Dim(qkv, 0), c->Dim(qkv, 1), hd}));
      c->set_output(1, c->MakeShape({c->Dim(qkv, 0), c->MakeDim(num_heads), c->Dim(qkv, 1)}));
      return tensorflow::OkStatus();
    });

REGISTER_OP("AmuTinyAttentionGrad")
    .Input("qkv: float")
    .Input("seed: int32")
    .Input("y: float")
    .Input("lse: float")
    .Input("dy: float")
    .Output("dqkv: float")
    .Attr("num_heads: int >= 1")
    .Attr("rate: float = 0.0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("AmuTinyAttention").Device(DEVICE_CPU), AmuTinyAttentionOp);
REGISTER_KERNEL_BUILDER(Name("AmuTinyAttentionGrad").Device(DEVICE_CPU), AmuTinyAttentionGradOp);

REGISTER_OP("AmuHashDropout")
    .Input("x: float")
    .Input("seed: int32")
    .Output("y: float")
    .Attr("rate: float = 0.0")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return tensorflow::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("AmuHashDropout").Device(DEVICE_CPU), AmuHashDropoutOp);
