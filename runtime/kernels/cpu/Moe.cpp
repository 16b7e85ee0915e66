// The routing ops of exported mixture-of-experts graphs on the CPU: top_k (ONNX TopK),
// gather_nd (ONNX GatherND) and the raised router, moe_router. They run the line and element functions of
// shardc/kernels/MoeKernels.h, the source the CUDA backend launches, in a loop; every dtype.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "MoeCpu.h"
#include "Sgemm.h"

#include "shardc/kernels/MoeKernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace shardc::rt::cpu {

namespace {
kernels::AnyType anyType(DType d) { return kernels::AnyType(int(d)); }
static_assert(int(kernels::AnyType::Bool) == int(DType::Bool) && int(kernels::AnyType::I64) == int(DType::I64),
              "kernels::AnyType follows rt::DType");
} // namespace

// top_k: x -> values (x's dtype), indices (i64); the axis' extent of the outputs is k.
std::string topKKernel(const KernelArgs &args) {
  if (auto e = expectArity("top_k", args, 1, 1, 2, 2); !e.empty())
    return e;
  const TensorView &x = args.in[0], &values = args.out[0], &indices = args.out[1];
  if (auto e = expectSameDType("top_k", {{"x", &x}, {"values", &values}}); !e.empty())
    return e;
  if (indices.dtype != DType::I64)
    return "top_k: indices must be i64, not " + std::string(dtypeName(indices.dtype));
  if (indices.shape != values.shape)
    return "top_k: values " + shapeString(values.shape) + " and indices " + shapeString(indices.shape) + " differ";
  kernels::TopKParams p;
  if (std::string err = kernels::planTopK(x.shape, values.shape, args.attrs ? args.attrs->getInt("axis", -1) : -1, p);
      !err.empty())
    return "top_k: " + err;
  p.x = x.data;
  p.values = values.data;
  p.indices = indices.as<int64_t>();
  p.type = anyType(x.dtype);
  p.largest = args.attrs ? args.attrs->getBool("largest", true) : true;
  for (int64_t line = 0; line < p.lines; ++line)
    kernels::topKLine(p, line);
  return "";
}

// gather_nd (ONNX GatherND, attribute batch_dims).
std::string gatherNdKernel(const KernelArgs &args) {
  if (auto e = expectArity("gather_nd", args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &data = args.in[0], &indices = args.in[1], &y = args.out[0];
  if (indices.dtype != DType::I64 && indices.dtype != DType::I32)
    return "gather_nd: indices must be i64 or i32, not " + std::string(dtypeName(indices.dtype));
  if (auto e = expectSameDType("gather_nd", {{"data", &data}, {"y", &y}}); !e.empty())
    return e;
  kernels::GatherNdParams p;
  if (std::string err = kernels::planGatherNd(data.shape, indices.shape, y.shape,
                                              args.attrs ? args.attrs->getInt("batch_dims", 0) : 0,
                                              int(dtypeSize(data.dtype)), p);
      !err.empty())
    return "gather_nd: " + err;
  for (int64_t i = 0, n = indices.numel(); i < n; ++i) {
    const int64_t index = indices.dtype == DType::I64 ? indices.as<int64_t>()[i] : indices.as<int32_t>()[i];
    const int64_t size = p.dimSize[i % p.q];
    if (index < -size || index >= size)
      return "gather_nd: index " + std::to_string(index) + " out of range for a dim of size " + std::to_string(size);
  }
  p.data = data.data;
  p.indices = indices.data;
  p.indices64 = indices.dtype == DType::I64;
  p.y = y.data;
  for (int64_t n = 0; n < p.count; ++n)
    kernels::gatherNdElement(p, n);
  return "";
}

// moe_router: logits [T, E] (and the score bias [E]) -> indices [T, k] (i64), weights [T, k];
// f32, bf16, f16 (all operands one dtype).
std::string moeRouterKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_router", args, 1, 2, 2, 2); !e.empty())
    return e;
  const TensorView &logits = args.in[0], &ids = args.out[0], &w = args.out[1];
  const TensorView *bias = args.in.size() > 1 ? &args.in[1] : nullptr;
  if (auto e = expectSameDType("moe_router", {{"logits", &logits}, {"weights", &w}}); !e.empty())
    return e;
  if (bias && bias->dtype != logits.dtype)
    return "moe_router: the bias must have the logits' dtype";
  if (logits.dtype != DType::F32 && logits.dtype != DType::BF16 && logits.dtype != DType::F16)
    return unsupportedDType("moe_router", logits.dtype);
  if (ids.dtype != DType::I64)
    return "moe_router: indices must be i64";
  kernels::MoeRouterParams p;
  const std::string scoring = args.attrs ? args.attrs->getString("scoring", "softmax") : "softmax";
  if (scoring != "softmax" && scoring != "sigmoid")
    return "moe_router: scoring '" + scoring + "' is not softmax or sigmoid";
  if (std::string err = kernels::planMoeRouter(logits.shape, bias ? &bias->shape : nullptr, ids.shape, w.shape,
                                               args.attrs ? args.attrs->getInt("n_group", 1) : 1,
                                               args.attrs ? args.attrs->getInt("topk_group", 1) : 1,
                                               args.attrs ? args.attrs->getInt("group_k", 2) : 2, p);
      !err.empty())
    return "moe_router: " + err;
  p.logits = logits.data;
  p.bias = bias ? bias->data : nullptr;
  p.indices = ids.as<int64_t>();
  p.weights = w.data;
  p.type = anyType(logits.dtype);
  p.sigmoid = scoring == "sigmoid";
  p.normalize = args.attrs && args.attrs->getBool("normalize", false);
  p.normEpsilon = float(args.attrs ? args.attrs->getFloat("norm_epsilon", 0.0) : 0.0);
  p.scale = float(args.attrs ? args.attrs->getFloat("scale", 1.0) : 1.0);
  for (int64_t t = 0; t < p.T; ++t)
    kernels::moeRouterToken(p, t);
  return "";
}

} // namespace shardc::rt::cpu

namespace shardc::rt::cpu {

// moe_experts: the grouped experts of a raised MoE block (sc.moe_experts, docs/moe.md), dropless.
//   x [T, H], indices [T, k] (i64 expert ids), weights [T, k], gate_up [E, 2I, H] (gate rows
//   first), down [E, H, I] -> y [T, H], hidden [T·k, I] (the activations, a workspace).
// The loop of GEMMs of MoeKernels.h, as the CUDA backend runs it with cuBLASLt: the T·k (token,
// choice) pairs sorted by expert (moePermutePlan), each expert group's rows run as two GEMMs
// (sgemm: OpenBLAS where built) with act(gate)·up between (moeGluElement; attribute
// `activation`: silu for SwiGLU, gelu_tanh or gelu_erf for GeGLU), then each token sums its k
// rows scaled by their weights in choice order (moeUnpermuteElement, the exported graph's
// order). f32 (16-bit via f32).
std::string moeExpertsKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_experts", args, 5, 5, 2, 2); !e.empty())
    return e;
  const TensorView &x = args.in[0], &ids = args.in[1], &w = args.in[2], &gu = args.in[3], &down = args.in[4];
  const TensorView &y = args.out[0], &hidden = args.out[1];
  if (auto e = expectSameDType("moe_experts", {{"x", &x}, {"weights", &w}, {"gate_up", &gu}, {"down", &down}, {"y", &y},
                                               {"hidden", &hidden}});
      !e.empty())
    return e;
  if (x.dtype != DType::F32)
    return unsupportedDType("moe_experts", x.dtype);
  if (ids.dtype != DType::I64)
    return "moe_experts: indices must be i64";
  if (x.rank() != 2 || ids.rank() != 2 || gu.rank() != 3 || down.rank() != 3)
    return "moe_experts: x [T, H], indices [T, k], gate_up [E, 2I, H], down [E, H, I] expected";
  const int64_t T = x.shape[0], H = x.shape[1], k = ids.shape[1], E = gu.shape[0], I = down.shape[2];
  if (ids.shape[0] != T || w.shape != ids.shape || gu.shape != std::vector<int64_t>{E, 2 * I, H} ||
      down.shape != std::vector<int64_t>{E, H, I})
    return "moe_experts: shapes do not agree: x " + describe(x) + ", indices " + describe(ids) + ", gate_up " +
           describe(gu) + ", down " + describe(down);
  if (auto e = expectShape("moe_experts", "y", y, {T, H}); !e.empty())
    return e;
  if (auto e = expectShape("moe_experts", "hidden", hidden, {T * k, I}); !e.empty())
    return e;
  kernels::MoeActivation act = kernels::MoeActivation::Silu;
  if (std::string err = kernels::moeActivationOf(args.attrs ? args.attrs->getString("activation", "silu") : "silu", act);
      !err.empty())
    return "moe_experts: " + err;
  const int64_t N = T * k, *id = ids.as<int64_t>();
  for (int64_t r = 0; r < N; ++r)
    if (id[r] < 0 || id[r] >= E)
      return "moe_experts: expert id " + std::to_string(id[r]) + " outside [0, " + std::to_string(E) + ")";
  std::vector<int64_t> counts(static_cast<size_t>(E)), rowOf(static_cast<size_t>(N));
  std::vector<float> rows(size_t(N * H)), gate(size_t(N * 2 * I)), back(size_t(N * H));
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = 0;
  bool unrouted = false;
  if (std::string err = kernels::planMoeRowGroups(id, T, k, E, rowOf.data(), counts.data(), groups, total, unrouted);
      !err.empty())
    return "moe_experts: " + err;
  kernels::MoeEpParams pp;
  pp.x = x.data, pp.rows = rows.data(), pp.rowOfC = rowOf.data(), pp.T = T, pp.H = H, pp.k = k;
  for (int64_t n = 0; n < N * H; ++n)
    kernels::moePermuteElement(pp, n);
  kernels::MoeGluParams glu; // hidden in expert order
  glu.gate = gate.data(), glu.hidden = hidden.as<float>(), glu.rows = total, glu.I = I, glu.activation = act;
  if (std::string err = kernels::runMoeExpertGroups(groups, total, rows.data(), gu.as<float>(), down.as<float>(), H, I,
                                                    gate.data(), glu.hidden, back.data(), cpuExpertGemm,
                                                    [&glu](int64_t n) { return cpuGlu(glu, n); });
      !err.empty())
    return "moe_experts: " + err;
  pp.back = back.data(), pp.weights = w.as<float>(), pp.y = y.as<float>();
  for (int64_t n = 0; n < T * H; ++n)
    kernels::moeUnpermuteElement(pp, n);
  return "";
}

} // namespace shardc::rt::cpu
