// The routing ops of mixture-of-experts graphs as exporters write them: top_k (ONNX TopK) and
// gather_nd (ONNX GatherND, the experts' weight gather). One source for the CUDA backend (nvcc,
// runtime/backends/cuda/SharedKernels.cu) and the CPU backend, which runs the same line and
// element functions in a plain loop (runtime/kernels/cpu/Moe.cpp), so both compute the same bits.
#pragma once

#include "shardc/kernels/SelectKernels.h"

#include <cstdint>

namespace shardc::kernels {

// top_k along one axis: each line (the axis' elements at one coordinate of the other dims) keeps
// its k largest (smallest) elements in order, ties to the lower index (ONNX: sorted output, the
// stable order), NaN above every number when largest (below when smallest), as onnxruntime.
// values copy the elements' bytes; indices are i64 positions along the axis.
struct TopKParams {
  const void *x = nullptr;
  void *values = nullptr;
  int64_t *indices = nullptr;
  AnyType type = AnyType::F32;
  int64_t lines = 0, axisLen = 0, inner = 1, k = 0; // inner: the axis' element stride
  int largest = 1;
};

namespace moe_detail {
using namespace select_detail;
// Is element a (at position ia) before element b (at ib) in the output order?
SIMT_DEVICE bool before(const TopKParams &p, int64_t a, int64_t ia, int64_t b, int64_t ib) {
  if (isFloat(p.type)) {
    const double va = loadFloat(p.x, a, p.type), vb = loadFloat(p.x, b, p.type);
    const bool na = va != va, nb = vb != vb;
    if (na || nb)
      return na && nb ? ia < ib : (p.largest ? na : nb);
    if (va != vb)
      return p.largest ? va > vb : va < vb;
    return ia < ib;
  }
  int64_t va, vb;
  if (p.type == AnyType::U8 || p.type == AnyType::Bool) {
    va = static_cast<const uint8_t *>(p.x)[a];
    vb = static_cast<const uint8_t *>(p.x)[b];
  } else {
    va = loadInt(p.x, a, p.type);
    vb = loadInt(p.x, b, p.type);
  }
  if (va != vb)
    return p.largest ? va > vb : va < vb;
  return ia < ib;
}
} // namespace moe_detail

// Line `line` of top_k: an insertion into the line's k output slots, scanning the axis once.
SIMT_DEVICE void topKLine(const TopKParams &p, int64_t line) {
  using namespace moe_detail;
  const int64_t outer = line / p.inner, in = line % p.inner;
  const int64_t xBase = outer * p.axisLen * p.inner + in, yBase = outer * p.k * p.inner + in;
  int64_t *idx = p.indices + yBase;
  int64_t filled = 0;
  for (int64_t i = 0; i < p.axisLen; ++i) {
    int64_t at = filled;
    while (at > 0 && before(p, xBase + i * p.inner, i, xBase + idx[(at - 1) * p.inner] * p.inner, idx[(at - 1) * p.inner]))
      --at;
    if (at >= p.k)
      continue;
    const int64_t last = filled < p.k ? filled : p.k - 1;
    for (int64_t j = last; j > at; --j)
      idx[j * p.inner] = idx[(j - 1) * p.inner];
    idx[at * p.inner] = i;
    if (filled < p.k)
      ++filled;
  }
  const int size = sizeOf(p.type);
  for (int64_t j = 0; j < p.k; ++j)
    copyElement(p.values, yBase + j * p.inner, p.x, xBase + idx[j * p.inner] * p.inner, size);
}

SIMT_DEVICE void topKLines(const TopKParams &p) {
  const int64_t line = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (line < p.lines)
    topKLine(p, line);
}

// gather_nd with `batch_dims` b: y[batch, j, s] = data[batch, indices[batch, j, 0..q), s] where
// batch runs over the first b dims (shared by data and indices), j over the indices' further
// dims but the last, q = the indices' last dim indexes data's dims b..b+q, s over the rest of
// data's dims (the slice). Negative indices count from the end; an index out of range gives
// zeros (the CPU kernel reports it first).
struct GatherNdParams {
  const void *data = nullptr, *indices = nullptr;
  void *y = nullptr;
  int indices64 = 1, elemSize = 4, q = 0;
  int64_t count = 0, tuples = 0, slice = 1, dataBatch = 0; // tuples: j's extent per batch
  int64_t dimSize[kIndexMaxRank] = {}, dimStride[kIndexMaxRank] = {};
};

SIMT_DEVICE void gatherNdElement(const GatherNdParams &p, int64_t n) {
  using namespace select_detail;
  const int64_t s = n % p.slice, row = n / p.slice, batch = row / p.tuples;
  int64_t at = batch * p.dataBatch + s;
  for (int t = 0; t < p.q; ++t) {
    int64_t index = p.indices64 ? static_cast<const int64_t *>(p.indices)[row * p.q + t]
                                : static_cast<const int32_t *>(p.indices)[row * p.q + t];
    if (index < 0)
      index += p.dimSize[t];
    if (index < 0 || index >= p.dimSize[t]) {
      zeroElement(p.y, n, p.elemSize);
      return;
    }
    at += index * p.dimStride[t];
  }
  copyElement(p.y, n, p.data, at, p.elemSize);
}

SIMT_DEVICE void gatherNdElements(const GatherNdParams &p) {
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n < p.count)
    gatherNdElement(p, n);
}

// moe_experts (sc.moe_experts, docs/moe.md) runs as a loop of GEMMs on both backends (CPU:
// sgemm, runtime/kernels/cpu/Moe.cpp; CUDA: cuBLASLt, runtime/backends/cuda/MoeKernels.cu): the
// (token, choice) pairs sorted by expert (moePermutePlan below), per expert group
// (planMoeGemmGroups) gate_up = rows·gate_up[e]^T, the GLU (moeGluElement), hidden·down[e]^T,
// then each token sums its k rows scaled by their weights (moeUnpermuteElement). The step's
// shapes (planMoeExperts): x [T, H], indices and weights [T, k], gate_up [E, 2I, H], down [E, H, I].
enum class MoeActivation : int { Silu, GeluTanh, GeluErf };
struct MoeExpertsParams {
  int64_t T = 0, H = 0, k = 0, E = 0, I = 0;
  MoeActivation activation = MoeActivation::Silu;
};

// The experts' gate activation (the formulas of FusedPrelude.h): SwiGLU's silu, GeGLU's gelu.
SIMT_DEVICE float moeActivate(MoeActivation a, float g) {
  return a == MoeActivation::GeluTanh  ? sc_op_gelu_tanh<float>(g)
         : a == MoeActivation::GeluErf ? sc_op_gelu_erf<float>(g)
                                       : g / (1.0f + sc_exp(-g));
}

// The GLU between the two GEMMs, one element per thread: gate [rows, 2I] holds each row's gate
// columns then its up columns; hidden[r, c] = act(gate[r, c]) · gate[r, I + c].
struct MoeGluParams {
  const float *gate = nullptr;
  float *hidden = nullptr;
  int64_t rows = 0, I = 0;
  MoeActivation activation = MoeActivation::Silu;
};
SIMT_DEVICE void moeGluElement(const MoeGluParams &p, int64_t n) {
  const int64_t r = n / p.I, c = n % p.I;
  p.hidden[n] = moeActivate(p.activation, p.gate[r * 2 * p.I + c]) * p.gate[r * 2 * p.I + p.I + c];
}
SIMT_DEVICE void moeGluElements(const MoeGluParams &p) {
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n < p.rows * p.I)
    moeGluElement(p, n);
}

// moe_router (sc.moe_router, docs/moe.md), one token per thread: from the logits [T, E],
// scores = softmax or sigmoid; the choice reads scores + bias; with nGroup > 1 each group is
// scored by the sum of its groupK largest choice scores and only the topkGroup best groups stay
// eligible (the others read -inf); indices [T, k] are the k largest eligible choice scores (ties
// to the lower expert, NaN first, as top_k); weights are the unbiased scores of the chosen,
// divided by their sum + normEpsilon when `normalize`, times `scale`. f32 arithmetic (the
// scores as the unraised graph's f32 kernels compute them); 16-bit logits read as f32.
constexpr int kRouterMaxGroups = 64, kRouterMaxGroupK = 8;
struct MoeRouterParams {
  const void *logits = nullptr, *bias = nullptr; // bias: null when none
  int64_t *indices = nullptr;
  void *weights = nullptr;
  AnyType type = AnyType::F32; // logits, bias and weights
  int64_t T = 0, E = 0, k = 0, nGroup = 1, topkGroup = 1, groupK = 2;
  int sigmoid = 0, normalize = 0;
  float normEpsilon = 0.0f, scale = 1.0f;
};

namespace moe_detail {
struct RouterRow {
  const MoeRouterParams &p;
  int64_t t;
  float maxLogit, invSum;
  uint64_t groups; // eligible groups (a bit each)
  SIMT_DEVICE float logit(int64_t e) const { return float(loadFloat(p.logits, t * p.E + e, p.type)); }
  SIMT_DEVICE float score(int64_t e) const {
    const float l = logit(e);
    return p.sigmoid ? 1.0f / (1.0f + sc_exp(-l)) : sc_exp(l - maxLogit) * invSum;
  }
  SIMT_DEVICE float choice(int64_t e) const {
    return p.bias ? score(e) + float(loadFloat(p.bias, e, p.type)) : score(e);
  }
  SIMT_DEVICE float eligible(int64_t e) const {
    return (groups >> (e / (p.E / p.nGroup))) & 1 ? choice(e) : -__builtin_huge_valf();
  }
};
// a before b in top-k order: larger first, NaN above every number, ties to the lower index.
SIMT_DEVICE bool routerBefore(float va, int64_t ia, float vb, int64_t ib) {
  const bool na = va != va, nb = vb != vb;
  if (na || nb)
    return na && nb ? ia < ib : na;
  return va != vb ? va > vb : ia < ib;
}
} // namespace moe_detail

SIMT_DEVICE void moeRouterToken(const MoeRouterParams &p, int64_t t) {
  using namespace moe_detail;
  RouterRow row{p, t, 0.0f, 1.0f, ~uint64_t(0)};
  if (!p.sigmoid) {
    float m = -__builtin_huge_valf();
    for (int64_t e = 0; e < p.E; ++e)
      m = row.logit(e) > m ? row.logit(e) : m;
    double sum = 0.0;
    for (int64_t e = 0; e < p.E; ++e)
      sum += sc_exp(row.logit(e) - m);
    row.maxLogit = m;
    row.invSum = float(1.0 / sum);
  }
  if (p.nGroup > 1) {
    // Each group's score: the sum of its groupK largest choice scores (in descending order).
    const int64_t size = p.E / p.nGroup;
    float groupScore[kRouterMaxGroups];
    for (int64_t g = 0; g < p.nGroup; ++g) {
      float best[kRouterMaxGroupK];
      int64_t at[kRouterMaxGroupK], filled = 0;
      for (int64_t i = 0; i < size; ++i) {
        const int64_t e = g * size + i;
        const float v = row.choice(e);
        int64_t pos = filled;
        while (pos > 0 && routerBefore(v, e, best[pos - 1], at[pos - 1]))
          --pos;
        if (pos >= p.groupK)
          continue;
        for (int64_t j = (filled < p.groupK ? filled : p.groupK - 1); j > pos; --j)
          best[j] = best[j - 1], at[j] = at[j - 1];
        best[pos] = v, at[pos] = e;
        filled += filled < p.groupK;
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < filled; ++j)
        sum += best[j];
      groupScore[g] = sum;
    }
    // The topkGroup best groups (ties to the lower group).
    row.groups = 0;
    for (int64_t n = 0; n < p.topkGroup; ++n) {
      int64_t pick = -1;
      for (int64_t g = 0; g < p.nGroup; ++g)
        if (!((row.groups >> g) & 1) && (pick < 0 || routerBefore(groupScore[g], g, groupScore[pick], pick)))
          pick = g;
      row.groups |= uint64_t(1) << pick;
    }
  }
  // The k largest eligible choice scores, by insertion into the output slots.
  int64_t *idx = p.indices + t * p.k, filled = 0;
  for (int64_t e = 0; e < p.E; ++e) {
    const float v = row.eligible(e);
    int64_t pos = filled;
    while (pos > 0 && routerBefore(v, e, row.eligible(idx[pos - 1]), idx[pos - 1]))
      --pos;
    if (pos >= p.k)
      continue;
    for (int64_t j = (filled < p.k ? filled : p.k - 1); j > pos; --j)
      idx[j] = idx[j - 1];
    idx[pos] = e;
    filled += filled < p.k;
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < p.k; ++j)
    sum += row.score(idx[j]);
  const float denom = sum + p.normEpsilon;
  for (int64_t j = 0; j < p.k; ++j) {
    float w = row.score(idx[j]);
    if (p.normalize)
      w = w / denom;
    w = w * p.scale;
    const int64_t at = t * p.k + j;
    if (p.type == AnyType::F32)
      static_cast<float *>(p.weights)[at] = w;
    else
      static_cast<unsigned short *>(p.weights)[at] = p.type == AnyType::BF16 ? sc_to_bf16(w) : sc_to_f16(w);
  }
}

SIMT_DEVICE void moeRouterTokens(const MoeRouterParams &p) {
  const int64_t t = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (t < p.T)
    moeRouterToken(p, t);
}

// Expert parallelism (docs/moe.md): the local steps around the dispatch and combine
// all-to-alls. One thread of moePermutePlan sorts the N = T·k (token, choice) pairs by expert
// (a counting sort: counts[E], then rowOf[t·k + j], the pair's row, grouped by expert in
// token order; host and device code: the CUDA backend runs it on the host); moePermuteElement
// copies x[t] to its rows (any dtype, by bytes); the local experts run over the received rows
// (laid out [source][local expert] by recv_counts) as the GEMM groups of planMoeGemmGroups;
// moeUnpermuteElement sums each token's k weighted rows in j order.
struct MoeEpParams {
  const void *x = nullptr;
  void *rows = nullptr;
  const int64_t *ids = nullptr, *rowOfC = nullptr;
  int64_t *counts = nullptr, *rowOf = nullptr;
  const float *back = nullptr, *weights = nullptr;
  float *y = nullptr;
  int64_t T = 0, H = 0, k = 0, E = 0;
  int elemSize = 4;
  int bad = 0; // moePermutePlan: an expert id outside [0, E) was seen (its pair gets row -1)
};

SIMT_HOST_DEVICE void moePermutePlan(MoeEpParams &p) {
  const int64_t N = p.T * p.k;
  for (int64_t e = 0; e < p.E; ++e)
    p.counts[e] = 0;
  for (int64_t s = 0; s < N; ++s) {
    if (p.ids[s] < 0 || p.ids[s] >= p.E)
      p.bad = 1;
    else
      ++p.counts[p.ids[s]];
  }
  // rowOf doubles as the running fill: each expert's first row, then one more per pair.
  int64_t start = 0;
  for (int64_t e = 0; e < p.E; ++e) {
    const int64_t n = p.counts[e];
    p.counts[e] = start; // temporarily the expert's next free row
    start += n;
  }
  for (int64_t s = 0; s < N; ++s)
    p.rowOf[s] = p.ids[s] < 0 || p.ids[s] >= p.E ? -1 : p.counts[p.ids[s]]++;
  // counts[e] is now the end of expert e's rows: back to counts.
  for (int64_t e = p.E - 1; e > 0; --e)
    p.counts[e] -= p.counts[e - 1];
}

SIMT_DEVICE void moePermuteElement(const MoeEpParams &p, int64_t n) {
  const int64_t s = n / p.H, c = n % p.H, row = p.rowOfC[s];
  if (row >= 0)
    select_detail::copyElement(p.rows, row * p.H + c, p.x, (s / p.k) * p.H + c, p.elemSize);
}

SIMT_DEVICE void moeUnpermuteElement(const MoeEpParams &p, int64_t n) {
  const int64_t t = n / p.H, c = n % p.H;
  float acc = 0.0f;
  for (int64_t j = 0; j < p.k; ++j) {
    const int64_t row = p.rowOfC[t * p.k + j];
    const float v = row < 0 ? 0.0f : p.back[row * p.H + c] * p.weights[t * p.k + j];
    acc = j == 0 ? v : acc + v;
  }
  p.y[n] = acc;
}

SIMT_DEVICE void moePermuteElements(const MoeEpParams &p) {
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n < p.T * p.k * p.H)
    moePermuteElement(p, n);
}
SIMT_DEVICE void moeUnpermuteElements(const MoeEpParams &p) {
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n < p.T * p.H)
    moeUnpermuteElement(p, n);
}

#if !defined(__CUDACC_RTC__)
// ---- Plans (host code): "" or a one-line error.
inline std::string planTopK(const std::vector<int64_t> &xShape, const std::vector<int64_t> &yShape, int64_t axis,
                            TopKParams &p) {
  const int64_t rank = int64_t(xShape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank || int64_t(yShape.size()) != rank)
    return "axis " + std::to_string(axis) + " or the outputs' rank does not fit x of rank " + std::to_string(rank);
  p.lines = 1;
  p.inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis && yShape[size_t(d)] != xShape[size_t(d)])
      return "the outputs' dims off the axis must be x's";
    if (d != axis)
      p.lines *= xShape[size_t(d)];
    if (d > axis)
      p.inner *= xShape[size_t(d)];
  }
  p.axisLen = xShape[size_t(axis)];
  p.k = yShape[size_t(axis)];
  if (p.k > p.axisLen)
    return "k " + std::to_string(p.k) + " exceeds the axis' " + std::to_string(p.axisLen) + " elements";
  if (p.inner == 0)
    p.lines = 0;
  return "";
}

inline std::string planGatherNd(const std::vector<int64_t> &dataShape, const std::vector<int64_t> &indexShape,
                                const std::vector<int64_t> &yShape, int64_t batchDims, int elemSize, GatherNdParams &p) {
  const int64_t r = int64_t(dataShape.size()), m = int64_t(indexShape.size());
  if (m < 1 || batchDims < 0 || batchDims >= m || batchDims >= r)
    return "batch_dims " + std::to_string(batchDims) + " does not fit data of rank " + std::to_string(r) +
           " and indices of rank " + std::to_string(m);
  const int64_t q = indexShape.back();
  if (q < 1 || batchDims + q > r || q > kIndexMaxRank)
    return "the indices' last dim " + std::to_string(q) + " does not fit data of rank " + std::to_string(r);
  std::vector<int64_t> want(indexShape.begin(), indexShape.end() - 1);
  for (int64_t d = 0; d < batchDims; ++d)
    if (indexShape[size_t(d)] != dataShape[size_t(d)])
      return "the batch dims of data and indices differ";
  want.insert(want.end(), dataShape.begin() + batchDims + q, dataShape.end());
  if (want != yShape)
    return "y's shape does not follow from data's and the indices'";
  const std::vector<int64_t> dense = index_detail::denseStrides(dataShape);
  p.q = int(q);
  p.elemSize = elemSize;
  p.slice = 1;
  for (int64_t d = batchDims + q; d < r; ++d)
    p.slice *= dataShape[size_t(d)];
  int64_t batch = 1;
  for (int64_t d = 0; d < batchDims; ++d)
    batch *= dataShape[size_t(d)];
  p.tuples = 1;
  for (int64_t d = batchDims; d < m - 1; ++d)
    p.tuples *= indexShape[size_t(d)];
  p.dataBatch = batchDims > 0 ? dense[size_t(batchDims - 1)] : 0;
  for (int64_t t = 0; t < q; ++t) {
    p.dimSize[t] = dataShape[size_t(batchDims + t)];
    p.dimStride[t] = dense[size_t(batchDims + t)];
  }
  p.count = batch * p.tuples * p.slice;
  if (p.tuples == 0)
    p.tuples = 1, p.count = 0;
  if (p.slice == 0)
    p.slice = 1, p.count = 0;
  return "";
}

// One GEMM group of the MoE loops of GEMMs: `rows` consecutive rows from `firstRow`, all of
// local expert `expert`.
struct MoeGemmGroup {
  int64_t expert = 0, firstRow = 0, rows = 0;
};
// The groups of the row counts `counts` [segments], segment s holding rows of local expert
// s % localExperts in segment order (moe_experts: one segment per expert; moe_grouped_gemm:
// [source][local expert]); empty segments are left out, `total` is the rows covered. "" or why
// not: a negative count, or more than maxRows rows.
inline std::string planMoeGemmGroups(const int64_t *counts, int64_t segments, int64_t localExperts, int64_t maxRows,
                                     std::vector<MoeGemmGroup> &groups, int64_t &total) {
  groups.clear();
  total = 0;
  if (localExperts < 1 || segments % localExperts != 0)
    return std::to_string(segments) + " row counts are not whole groups of " + std::to_string(localExperts) +
           " local experts";
  for (int64_t s = 0; s < segments; ++s) {
    if (counts[s] < 0 || counts[s] > maxRows - total)
      return "the row counts (segment " + std::to_string(s) + ": " + std::to_string(counts[s]) + ") exceed the " +
             std::to_string(maxRows) + " rows";
    if (counts[s] > 0)
      groups.push_back({s % localExperts, total, counts[s]});
    total += counts[s];
  }
  return "";
}

// The grouped layout of T·k (token, choice) pairs by their expert ids (moePermutePlan: rowOf
// [T·k] and counts [E] in the caller's memory; an id outside [0, E) gives row -1 and sets
// `unrouted`) and its GEMM groups, one per expert with rows.
inline std::string planMoeRowGroups(const int64_t *ids, int64_t T, int64_t k, int64_t E, int64_t *rowOf,
                                    int64_t *counts, std::vector<MoeGemmGroup> &groups, int64_t &total,
                                    bool &unrouted) {
  MoeEpParams order;
  order.ids = ids, order.counts = counts, order.rowOf = rowOf, order.T = T, order.k = k, order.E = E;
  moePermutePlan(order);
  unrouted = order.bad != 0;
  return planMoeGemmGroups(counts, E, E, T * k, groups, total);
}

// The experts over grouped rows [total, H] (moe_experts after the permute, moe_grouped_gemm on
// the received rows), as both backends run them: per group gate = rows · gate_up[e]^T into
// gate [total, 2I], then glu(total) (moeGluElement over total·I into hidden [total, I]), then per
// group out = hidden · down[e]^T into out [total, H]. gemm(M, N, K, A, B, C) is C [M, N] = A [M, K]
// · B^T with B stored [N, K], packed row-major f32 (CPU: sgemm; CUDA: cuBLASLt).
template <typename Gemm, typename Glu>
std::string runMoeExpertGroups(const std::vector<MoeGemmGroup> &groups, int64_t total, const float *rows,
                               const float *gateUp, const float *down, int64_t H, int64_t I, float *gate,
                               float *hidden, float *out, Gemm &&gemm, Glu &&glu) {
  std::string err;
  for (const MoeGemmGroup &g : groups)
    if (err.empty())
      err = gemm(g.rows, 2 * I, H, rows + g.firstRow * H, gateUp + g.expert * 2 * I * H, gate + g.firstRow * 2 * I);
  if (err.empty())
    err = glu(total);
  for (const MoeGemmGroup &g : groups)
    if (err.empty())
      err = gemm(g.rows, H, I, hidden + g.firstRow * I, down + g.expert * H * I, out + g.firstRow * H);
  return err;
}

inline std::string moeActivationOf(const std::string &name, MoeActivation &a) {
  if (name == "silu")
    a = MoeActivation::Silu;
  else if (name == "gelu_tanh")
    a = MoeActivation::GeluTanh;
  else if (name == "gelu_erf")
    a = MoeActivation::GeluErf;
  else
    return "activation '" + name + "' is not silu, gelu_tanh or gelu_erf";
  return "";
}

inline std::string planMoeExperts(const std::vector<int64_t> &x, const std::vector<int64_t> &ids,
                                  const std::vector<int64_t> &weights, const std::vector<int64_t> &gateUp,
                                  const std::vector<int64_t> &down, MoeExpertsParams &p) {
  if (x.size() != 2 || ids.size() != 2 || gateUp.size() != 3 || down.size() != 3)
    return "x [T, H], indices [T, k], gate_up [E, 2I, H], down [E, H, I] expected";
  p.T = x[0], p.H = x[1], p.k = ids[1], p.E = gateUp[0], p.I = down[2];
  if (ids[0] != p.T || weights != ids || gateUp[1] != 2 * p.I || gateUp[2] != p.H || down[0] != p.E || down[1] != p.H)
    return "the operands' shapes do not agree";
  return "";
}
inline std::string planMoeRouter(const std::vector<int64_t> &logits, const std::vector<int64_t> *bias,
                                 const std::vector<int64_t> &ids, const std::vector<int64_t> &weights, int64_t nGroup,
                                 int64_t topkGroup, int64_t groupK, MoeRouterParams &p) {
  if (logits.size() != 2 || ids.size() != 2 || ids[0] != logits[0] || weights != ids || ids[1] < 1 ||
      ids[1] > logits[1] || (bias && *bias != std::vector<int64_t>{logits[1]}))
    return "logits [T, E], bias [E], indices and weights [T, k] with 1 <= k <= E expected";
  p.T = logits[0], p.E = logits[1], p.k = ids[1];
  if (nGroup < 1 || nGroup > kRouterMaxGroups || p.E % nGroup != 0 || topkGroup < 1 || topkGroup > nGroup ||
      groupK < 1 || groupK > kRouterMaxGroupK || groupK > p.E / nGroup || topkGroup * (p.E / nGroup) < p.k)
    return "n_group " + std::to_string(nGroup) + " (at most " + std::to_string(kRouterMaxGroups) + "), topk_group " +
           std::to_string(topkGroup) + " and group_k " + std::to_string(groupK) + " (at most " +
           std::to_string(kRouterMaxGroupK) + ") do not fit " + std::to_string(p.E) + " experts and k " +
           std::to_string(p.k);
  p.nGroup = nGroup, p.topkGroup = topkGroup, p.groupK = groupK;
  return "";
}
#endif

} // namespace shardc::kernels
