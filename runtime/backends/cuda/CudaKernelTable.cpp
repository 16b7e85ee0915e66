// The table behind lookupCudaKernel and --check-backend cuda (CudaKernelTable.h): each library
// kernel with the predicate saying which operands it takes. A launch goes through
// dispatch<I>, which asks the predicate first, so a step the table says it cannot take fails
// with the same words the check prints.
#include "CudaKernelTable.h"

#include "CudaBackend.h"
#include "LibraryKernels.h"
#include "shardc/kernels/AttentionRows.h"
#include "shardc/kernels/ElementwiseKernels.h"
#include "shardc/kernels/FlashAttention.h"
#include "shardc/kernels/IndexKernels.h"
#include "shardc/kernels/ScanKernels.h"
#include "shardc/kernels/MoeGradKernels.h"
#include "shardc/kernels/MoeKernels.h"
#include "shardc/kernels/SelectKernels.h"

#include <array>
#include <utility>

namespace shardc::cuda {

namespace {

using rt::DType;
using rt::KernelArgs;
using rt::TensorView;

constexpr uint32_t bit(DType d) { return 1u << unsigned(d); }
constexpr uint32_t kFloats = bit(DType::F32) | bit(DType::BF16) | bit(DType::F16);
constexpr uint32_t kIds = bit(DType::I64) | bit(DType::I32);

std::string counts(std::string_view op, const KernelArgs &a, size_t inMin, size_t inMax, size_t outMin,
                   size_t outMax) {
  if (a.in.size() >= inMin && a.in.size() <= inMax && a.out.size() >= outMin && a.out.size() <= outMax)
    return "";
  return std::string(op) + ": " + std::to_string(a.in.size()) + " inputs and " + std::to_string(a.out.size()) +
         " outputs (the CUDA kernel takes " + std::to_string(inMin) + (inMax > inMin ? "+" : "") + " and " +
         std::to_string(outMin) + (outMax > outMin ? "+" : "") + ")";
}

std::string dtypeIn(std::string_view op, const char *role, const TensorView &t, uint32_t set, const char *names) {
  if (set & bit(t.dtype))
    return "";
  return std::string(op) + ": " + role + " of dtype " + rt::dtypeName(t.dtype) + " (the CUDA kernel takes " +
         names + ")";
}

std::string sameDtype(std::string_view op, const char *role, const TensorView &t, const TensorView &like) {
  if (t.dtype == like.dtype)
    return "";
  return std::string(op) + ": " + role + " of dtype " + rt::dtypeName(t.dtype) + ", not " +
         rt::dtypeName(like.dtype) + " as the first input";
}

// The first non-empty of the checks.
template <typename... E> std::string firstOf(E &&...errors) {
  std::string out;
  ((out.empty() ? (void)(out = std::forward<E>(errors)) : (void)0), ...);
  return out;
}

std::string floatsAlike(std::string_view op, const KernelArgs &a) {
  std::string err = dtypeIn(op, "the first input", a.in[0], kFloats, "f32, bf16, f16");
  for (size_t i = 1; i < a.in.size() && err.empty(); ++i)
    err = sameDtype(op, "an input", a.in[i], a.in[0]);
  for (size_t i = 0; i < a.out.size() && err.empty(); ++i)
    err = sameDtype(op, "an output", a.out[i], a.in[0]);
  return err;
}


std::string acceptsLinear(const KernelArgs &a) {
  if (std::string err = firstOf(floatsAlike("linear", a)); !err.empty())
    return err;
  const std::string epilogue = a.attrs ? a.attrs->getString("epilogue", "") : "";
  if (!epilogue.empty() && (epilogue != "gelu_tanh" || a.in.size() < 3))
    return "linear: the epilogue '" + epilogue + "' (with" + (a.in.size() < 3 ? "out" : "") +
           " a bias) has no cuBLASLt plan";
  return a.in[1].rank() == 2 ? "" : "linear: the CUDA kernel takes a 2-D weight";
}

std::string acceptsMatmul(const KernelArgs &a) {
  return firstOf(floatsAlike("matmul", a));
}

// q, k, v 4-D of one float dtype, GQA heads, a bool or f32 mask: what every attention kernel takes.
std::string attentionOperands(std::string_view op, const KernelArgs &a, size_t mask) {
  const TensorView &q = a.in[0], &k = a.in[1], &v = a.in[2];
  std::string err = dtypeIn(op, "q", q, kFloats, "f32, bf16, f16");
  if (err.empty())
    err = firstOf(sameDtype(op, "k", k, q), sameDtype(op, "v", v, q));
  if (err.empty() && (q.rank() != 4 || k.rank() != 4 || v.rank() != 4))
    err = std::string(op) + ": the CUDA kernel takes 4-D q, k, v";
  if (err.empty() && (k.shape[1] == 0 || q.shape[1] % k.shape[1] != 0))
    err = std::string(op) + ": query heads are not a multiple of kv heads";
  if (err.empty() && a.in.size() > mask)
    err = dtypeIn(op, "the mask", a.in[mask], bit(DType::Bool) | bit(DType::F32), "bool, f32");
  return err;
}

// The row kernels (AttentionRows.h and the library's f32 one) keep a row of scores in 48 KiB
// of shared memory.
std::string rowFits(std::string_view op, size_t bytes, const char *what) {
  if (bytes <= 48 * 1024)
    return "";
  return std::string(op) + ": " + what + " exceed the CUDA row kernel's 48 KiB of shared memory";
}

std::string acceptsAttention(const KernelArgs &a) {
  const TensorView &q = a.in[0], &k = a.in[1], &v = a.in[2];
  if (std::string err = firstOf(attentionOperands("attention", a, 3), sameDtype("attention", "y", a.out[0], q));
      !err.empty())
    return err;
  if (a.out.size() > 1) { // training: the row kernel that also writes lse
    if (a.out[1].dtype != DType::F32 || a.out[1].numel() != q.shape[0] * q.shape[1] * q.shape[2])
      return "attention: lse must be f32 [B, Hq, S]";
    return rowFits("attention", kernels::attentionRowsForwardShared(k.shape[2]), "the keys");
  }
  const bool flash = q.dtype != DType::F32 && q.shape[3] == v.shape[3] &&
                     kernels::flashAttentionSupportsHeadDim(q.shape[3]);
  return flash ? "" : rowFits("attention", size_t(k.shape[2] + 32) * 4, "the keys");
}

std::string acceptsAttentionGrad(const KernelArgs &a) {
  const TensorView &q = a.in[0], &k = a.in[1], &v = a.in[2];
  std::string err = attentionOperands("attention_grad", a, 6);
  for (size_t i : {3, 5})
    if (err.empty())
      err = sameDtype("attention_grad", i == 3 ? "out" : "dout", a.in[i], q);
  for (size_t i = 0; i < 3 && err.empty(); ++i)
    err = sameDtype("attention_grad", "a gradient", a.out[i], q);
  if (!err.empty())
    return err;
  if (a.in[4].dtype != DType::F32 || a.in[4].numel() != q.shape[0] * q.shape[1] * q.shape[2])
    return "attention_grad: lse must be f32 [B, Hq, S]";
  return firstOf(rowFits("attention_grad", kernels::attentionRowsGradQShared(k.shape[2]), "the keys"),
                 rowFits("attention_grad", kernels::attentionRowsGradKVShared(q.shape[2], q.shape[3], v.shape[3]),
                         "the query rows"));
}

std::string acceptsEmbedding(const KernelArgs &a) {
  if (std::string err = firstOf(dtypeIn("embedding", "the ids", a.in[1], kIds, "i64, i32"));
      !err.empty())
    return err;
  if (a.in[0].rank() != 2 || (rt::dtypeSize(a.in[0].dtype) != 2 && rt::dtypeSize(a.in[0].dtype) != 4))
    return std::string("embedding: the CUDA kernel takes a [V, H] table of 2- or 4-byte elements, not ") +
           rt::dtypeName(a.in[0].dtype) + " of rank " + std::to_string(a.in[0].rank());
  if (a.in.size() == 3 && (a.in[2].dtype != DType::I64 || a.in[2].numel() != 1))
    return "embedding: row_start must be one i64";
  return "";
}

std::string acceptsCopy(const KernelArgs &) { return ""; }
std::string acceptsCast(const KernelArgs &) { return ""; }
std::string acceptsSplit(const KernelArgs &) { return ""; }

std::string acceptsDynamicSlice(const KernelArgs &a) {
  if (a.in[1].dtype != DType::I64 || a.in[1].numel() != 1 || a.out[0].rank() != a.in[0].rank())
    return "dynamic_slice: the CUDA kernel takes an i64 start and a result of the input's rank";
  return "";
}

std::string acceptsGather(const KernelArgs &a) {
  return firstOf(dtypeIn("gather", "the indices", a.in[1], kIds, "i64, i32"));
}

std::string acceptsTokenLoss(const KernelArgs &a) {
  if (a.in[0].rank() != 3 || a.in[1].dtype != DType::I64 || a.out[0].dtype != DType::F32 ||
      a.out[1].dtype != DType::F32)
    return "token_loss: the CUDA kernel takes logits [B, S, V], i64 labels and f32 outputs";
  return dtypeIn("token_loss", "the logits", a.in[0], kFloats, "f32, bf16, f16");
}

std::string acceptsTokenLossGrad(const KernelArgs &a) {
  const TensorView &x = a.in[0];
  if (x.rank() != 3 || a.in[1].dtype != DType::I64 || a.in[2].dtype != DType::F32 || a.in[2].numel() != 1 ||
      a.out[0].dtype != x.dtype)
    return "token_loss_grad: the CUDA kernel takes logits [B, S, V], i64 labels, one f32 dsum and dlogits of "
           "the logits' dtype";
  return dtypeIn("token_loss_grad", "the logits", x, kFloats, "f32, bf16, f16");
}

std::string acceptsEmbeddingGrad(const KernelArgs &a) {
  const TensorView &ids = a.in[0], &dy = a.in[1], &dtable = a.out[0];
  if (std::string err = firstOf(dtypeIn("embedding_grad", "the ids", ids, kIds, "i64, i32"),
                                dtypeIn("embedding_grad", "dy", dy, kFloats, "f32, bf16, f16"),
                                sameDtype("embedding_grad", "dtable", dtable, dy));
      !err.empty())
    return err;
  if (dtable.rank() != 2 || dy.numel() != ids.numel() * dtable.shape[1])
    return "embedding_grad: the CUDA kernel takes dy [..., H] and dtable [V, H]";
  if (a.in.size() == 3 && (a.in[2].dtype != DType::I64 || a.in[2].numel() != 1))
    return "embedding_grad: row_start must be one i64";
  if (dtable.shape[1] * 4 > 48 * 1024)
    return "embedding_grad: hidden size " + std::to_string(dtable.shape[1]) +
           " exceeds the CUDA kernel's shared-memory row (12288 floats)";
  return "";
}

// Data movement through the strided-copy kernel: any dtype, inputs and outputs alike, rank <= 8.
std::string movesAlike(std::string_view op, const KernelArgs &a) {
  std::string err;
  for (size_t i = 0; i < a.in.size() && err.empty(); ++i)
    err = sameDtype(op, "an input", a.in[i], a.in[0]);
  if (err.empty())
    err = sameDtype(op, "the output", a.out[0], a.in[0]);
  if (err.empty() && (a.out[0].rank() > kernels::kIndexMaxRank || a.in[0].rank() > kernels::kIndexMaxRank))
    err = std::string(op) + ": rank over " + std::to_string(kernels::kIndexMaxRank);
  return err;
}
std::string acceptsSlice(const KernelArgs &a) { return movesAlike("slice", a); }
std::string acceptsConcat(const KernelArgs &a) { return movesAlike("concat", a); }
std::string acceptsTranspose(const KernelArgs &a) { return movesAlike("transpose", a); }
std::string acceptsExpand(const KernelArgs &a) { return movesAlike("expand", a); }

std::string reduces(std::string_view op, const KernelArgs &a) {
  std::string err = floatsAlike(op, a);
  if (err.empty() && a.in[0].rank() > kernels::kIndexMaxRank)
    err = std::string(op) + ": rank over " + std::to_string(kernels::kIndexMaxRank);
  return err;
}
std::string acceptsReduceSum(const KernelArgs &a) { return reduces("reduce_sum", a); }
std::string acceptsReduceMean(const KernelArgs &a) { return reduces("reduce_mean", a); }
std::string acceptsReduceMax(const KernelArgs &a) { return reduces("reduce_max", a); }

// Every operand f32, bf16 or f16, each its own (the ElementwiseKernels.h kernels load each
// operand as its dtype says).
std::string floatsEach(std::string_view op, const KernelArgs &a, size_t outputs) {
  std::string err;
  for (size_t i = 0; i < a.in.size() && err.empty(); ++i)
    err = dtypeIn(op, "an input", a.in[i], kFloats, "f32, bf16, f16");
  for (size_t i = 0; i < outputs && err.empty(); ++i)
    err = dtypeIn(op, "an output", a.out[i], kFloats, "f32, bf16, f16");
  return err;
}

// The elementwise plan, made on the step's shapes (the launch makes the same).
std::string elementwisePlan(std::string_view op, const KernelArgs &a) {
  std::vector<std::vector<int64_t>> shapes;
  for (const TensorView &t : a.in)
    shapes.push_back(t.shape);
  kernels::ElementwiseParams p;
  std::string err = kernels::planElementwise(a.out[0].shape, shapes, p);
  return err.empty() ? "" : std::string(op) + ": " + err;
}

std::string acceptsFormula(const KernelArgs &a) {
  if (std::string err = firstOf(floatsEach("formula", a, 1)); !err.empty())
    return err;
  const std::string name = a.attrs ? a.attrs->getString("formula", "") : "";
  kernels::FormulaId id;
  int arity = 0;
  if (!kernels::findFormula(name, id, arity))
    return "formula: '" + name + "' is not a row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h)";
  if (size_t(arity) != a.in.size())
    return "formula: '" + name + "' takes " + std::to_string(arity) + " operands, not " + std::to_string(a.in.size());
  return elementwisePlan("formula", a);
}

std::string acceptsRotary(const KernelArgs &a) {
  if (std::string err = firstOf(floatsEach("rotary", a, 1)); !err.empty())
    return err;
  const TensorView &x = a.in[0];
  if (x.rank() < 1 || x.shape.back() % 2 != 0 || a.out[0].shape != x.shape)
    return "rotary: the CUDA kernel takes x with an even last dim and y of x's shape";
  return elementwisePlan("rotary", a);
}

std::string normPlan(std::string_view op, const KernelArgs &a, bool layer) {
  const TensorView &x = a.in[0];
  if (a.out[0].shape != x.shape)
    return std::string(op) + ": y must have x's shape";
  kernels::NormParams p;
  const int64_t axis = a.attrs ? a.attrs->getInt("axis", -1) : -1;
  const bool bias = layer && a.in.size() > 2;
  std::string err = kernels::planNorm(x.shape, axis, a.in[1].shape, bias ? &a.in[2].shape : nullptr, p);
  for (size_t i = 1; i < a.out.size() && err.empty(); ++i)
    if (a.out[i].dtype != DType::F32 || a.out[i].numel() != p.rows)
      err = "the statistics outputs must be f32, one per row";
  return err.empty() ? "" : std::string(op) + ": " + err;
}
std::string acceptsRmsNorm(const KernelArgs &a) {
  return firstOf(floatsEach("rms_norm", a, 1), normPlan("rms_norm", a, false));
}
std::string acceptsLayerNorm(const KernelArgs &a) {
  if (std::string err = firstOf(floatsEach("layer_norm", a, 1)); !err.empty())
    return err;
  return normPlan("layer_norm", a, true);
}

std::string softmaxPlan(std::string_view op, const KernelArgs &a) {
  if (std::string err = floatsEach(op, a, 1); !err.empty())
    return err;
  if (a.out[0].shape != a.in[0].shape)
    return std::string(op) + ": y must have x's shape";
  kernels::SoftmaxParams p;
  std::string err = kernels::planSoftmax(a.in[0].shape, a.attrs ? a.attrs->getInt("axis", -1) : -1, p);
  return err.empty() ? "" : std::string(op) + ": " + err;
}
std::string acceptsSoftmax(const KernelArgs &a) { return softmaxPlan("softmax", a); }
std::string acceptsLogSoftmax(const KernelArgs &a) { return softmaxPlan("log_softmax", a); }

std::string acceptsSiluMul(const KernelArgs &a) {
  if (std::string err = floatsEach("silu_mul", a, 1); !err.empty())
    return err;
  return elementwisePlan("silu_mul", a);
}
std::string acceptsPow(const KernelArgs &a) {
  if (std::string err = floatsEach("pow", a, 1); !err.empty())
    return err;
  if (a.in[1].dtype != a.in[0].dtype) // the CPU rounds the exponent to the base's dtype first
    return std::string("pow: an exponent of dtype ") + rt::dtypeName(a.in[1].dtype) + " for a base of " +
           rt::dtypeName(a.in[0].dtype) + " has no CUDA kernel";
  return elementwisePlan("pow", a);
}

std::string selectPlan(std::string_view op, const KernelArgs &a) {
  std::vector<std::vector<int64_t>> shapes;
  for (const TensorView &t : a.in)
    shapes.push_back(t.shape);
  kernels::SelectParams p;
  std::string err = kernels::planSelect(a.out[0].shape, shapes, p);
  return err.empty() ? "" : std::string(op) + ": " + err;
}
std::string acceptsWhere(const KernelArgs &a) {
  return firstOf(dtypeIn("where", "the condition", a.in[0], bit(DType::Bool), "bool"),
                 sameDtype("where", "b", a.in[2], a.in[1]), sameDtype("where", "y", a.out[0], a.in[1]),
                 selectPlan("where", a));
}
std::string acceptsEqual(const KernelArgs &a) {
  return firstOf(sameDtype("equal", "b", a.in[1], a.in[0]), dtypeIn("equal", "y", a.out[0], bit(DType::Bool), "bool"),
                 selectPlan("equal", a));
}
std::string acceptsIsnan(const KernelArgs &a) {
  if (a.out[0].shape != a.in[0].shape)
    return "isnan: y must have x's shape";
  return firstOf(dtypeIn("isnan", "y", a.out[0], bit(DType::Bool), "bool"), selectPlan("isnan", a));
}
std::string acceptsGatherElements(const KernelArgs &a) {
  if (std::string err = firstOf(dtypeIn("gather_elements", "the indices", a.in[1], kIds, "i64, i32"),
                                sameDtype("gather_elements", "y", a.out[0], a.in[0]));
      !err.empty())
    return err;
  if (a.out[0].shape != a.in[1].shape)
    return "gather_elements: y must have the indices' shape";
  kernels::GatherElementsParams p;
  std::string err = kernels::planGatherElements(a.in[0].shape, a.in[1].shape, a.attrs ? a.attrs->getInt("axis", 0) : 0,
                                                int(rt::dtypeSize(a.in[0].dtype)), p);
  return err.empty() ? "" : "gather_elements: " + err;
}
std::string acceptsTrilu(const KernelArgs &a) {
  if (std::string err = sameDtype("trilu", "y", a.out[0], a.in[0]); !err.empty())
    return err;
  if (a.out[0].shape != a.in[0].shape || a.in[0].rank() < 2)
    return "trilu: the CUDA kernel takes x of rank >= 2 and y of its shape";
  return "";
}
std::string acceptsTopK(const KernelArgs &a) {
  if (std::string err = firstOf(sameDtype("top_k", "values", a.out[0], a.in[0]),
                                dtypeIn("top_k", "indices", a.out[1], bit(DType::I64), "i64"));
      !err.empty())
    return err;
  if (a.out[1].shape != a.out[0].shape)
    return "top_k: indices must have the values' shape";
  kernels::TopKParams p;
  std::string err = kernels::planTopK(a.in[0].shape, a.out[0].shape, a.attrs ? a.attrs->getInt("axis", -1) : -1, p);
  return err.empty() ? "" : "top_k: " + err;
}
std::string acceptsGatherNd(const KernelArgs &a) {
  if (std::string err = firstOf(dtypeIn("gather_nd", "the indices", a.in[1], kIds, "i64, i32"),
                                sameDtype("gather_nd", "y", a.out[0], a.in[0]));
      !err.empty())
    return err;
  kernels::GatherNdParams p;
  std::string err = kernels::planGatherNd(a.in[0].shape, a.in[1].shape, a.out[0].shape,
                                          a.attrs ? a.attrs->getInt("batch_dims", 0) : 0,
                                          int(rt::dtypeSize(a.in[0].dtype)), p);
  return err.empty() ? "" : "gather_nd: " + err;
}
std::string acceptsMoeExperts(const KernelArgs &a) {
  std::string err = dtypeIn("moe_experts", "indices", a.in[1], bit(DType::I64), "i64");
  for (const TensorView *t : {&a.in[0], &a.in[2], &a.in[3], &a.in[4], &a.out[0], &a.out[1]})
    if (err.empty())
      err = dtypeIn("moe_experts", "an operand", *t, bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  kernels::MoeExpertsParams p;
  err = kernels::planMoeExperts(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.in[3].shape, a.in[4].shape, p);
  if (err.empty())
    err = kernels::moeActivationOf(a.attrs ? a.attrs->getString("activation", "silu") : "silu", p.activation);
  if (err.empty() && (a.out[0].shape != a.in[0].shape || a.out[1].shape != std::vector<int64_t>{p.T * p.k, p.I}))
    err = "y must be [T, H] and hidden [T*k, I]";
  return err.empty() ? "" : "moe_experts: " + err;
}
std::string acceptsMoeRouter(const KernelArgs &a) {
  if (std::string err = firstOf(dtypeIn("moe_router", "the logits", a.in[0], kFloats, "f32 bf16 f16"),
                                dtypeIn("moe_router", "indices", a.out[0], bit(DType::I64), "i64"),
                                sameDtype("moe_router", "weights", a.out[1], a.in[0]));
      !err.empty())
    return err;
  if (a.in.size() > 1)
    if (std::string err = sameDtype("moe_router", "bias", a.in[1], a.in[0]); !err.empty())
      return err;
  const std::string scoring = a.attrs ? a.attrs->getString("scoring", "softmax") : "softmax";
  if (scoring != "softmax" && scoring != "sigmoid")
    return "moe_router: scoring '" + scoring + "' is not softmax or sigmoid";
  kernels::MoeRouterParams p;
  std::string err = kernels::planMoeRouter(a.in[0].shape, a.in.size() > 1 ? &a.in[1].shape : nullptr, a.out[0].shape,
                                           a.out[1].shape, a.attrs ? a.attrs->getInt("n_group", 1) : 1,
                                           a.attrs ? a.attrs->getInt("topk_group", 1) : 1,
                                           a.attrs ? a.attrs->getInt("group_k", 2) : 2, p);
  return err.empty() ? "" : "moe_router: " + err;
}

// The MoE backward (MoeGradKernels.h).
std::string acceptsMoeExpertsGrad(const KernelArgs &a) {
  std::string err = dtypeIn("moe_experts_grad", "indices", a.in[1], bit(DType::I64), "i64");
  for (const TensorView *t : {&a.in[0], &a.in[2], &a.in[3], &a.in[4], &a.in[5], &a.out[0], &a.out[1], &a.out[2],
                              &a.out[3], &a.out[4]})
    if (err.empty())
      err = dtypeIn("moe_experts_grad", "an operand", *t, bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  kernels::MoeExpertsGradParams p;
  err = kernels::planMoeExpertsGrad(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.in[3].shape, a.in[4].shape,
                                    a.in[5].shape, p);
  kernels::MoeActivation act;
  if (err.empty())
    err = kernels::moeActivationOf(a.attrs ? a.attrs->getString("activation", "silu") : "silu", act);
  if (err.empty() && (a.out[0].shape != a.in[0].shape || a.out[1].shape != a.in[2].shape ||
                      a.out[2].shape != a.in[3].shape || a.out[3].shape != a.in[4].shape ||
                      a.out[4].shape != std::vector<int64_t>{p.T * p.k, 3 * p.I}))
    err = "dx, dweights, dgate_up and ddown must have their primals' shapes and work [T*k, 3I]";
  return err.empty() ? "" : "moe_experts_grad: " + err;
}
std::string acceptsMoeGroupedGemmGrad(const KernelArgs &a) {
  std::string err = dtypeIn("moe_grouped_gemm_grad", "recv_counts", a.in[3], bit(DType::I64), "i64");
  for (const TensorView *t : {&a.in[0], &a.in[1], &a.in[2], &a.in[4], &a.in[5], &a.out[0], &a.out[1], &a.out[2],
                              &a.out[3], &a.out[4]})
    if (err.empty())
      err = dtypeIn("moe_grouped_gemm_grad", "an operand", *t, bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  kernels::MoeExpertsGradParams p;
  err = kernels::planMoeGroupedGemmGrad(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.in[3].shape, a.in[4].shape,
                                        a.in[5].shape, p);
  kernels::MoeActivation act;
  if (err.empty())
    err = kernels::moeActivationOf(a.attrs ? a.attrs->getString("activation", "silu") : "silu", act);
  if (err.empty() && (a.out[0].shape != a.in[0].shape || a.out[1].shape != a.in[2].shape ||
                      a.out[2].shape != a.in[4].shape || a.out[3].shape != a.in[5].shape ||
                      a.out[4].shape != std::vector<int64_t>{p.T, 3 * p.I}))
    err = "dx, dweights, dgate_up and ddown must have the shapes of recv_x, recv_w and the stacks, work [R, 3I]";
  return err.empty() ? "" : "moe_grouped_gemm_grad: " + err;
}
std::string acceptsMoeRouterGrad(const KernelArgs &a) {
  std::string err = dtypeIn("moe_router_grad", "indices", a.in[1], bit(DType::I64), "i64");
  for (const TensorView *t : {&a.in[0], &a.in[2], &a.out[0]})
    if (err.empty())
      err = dtypeIn("moe_router_grad", "an operand", *t, bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  const std::string scoring = a.attrs ? a.attrs->getString("scoring", "softmax") : "softmax";
  if (scoring != "softmax" && scoring != "sigmoid")
    return "moe_router_grad: scoring '" + scoring + "' is not softmax or sigmoid";
  kernels::MoeRouterGradParams p;
  err = kernels::planMoeRouterGrad(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.out[0].shape, p);
  return err.empty() ? "" : "moe_router_grad: " + err;
}

// Expert parallelism's local steps (docs/moe.md).
std::string acceptsMoePermute(const KernelArgs &a) {
  std::string err = firstOf(dtypeIn("moe_permute", "indices", a.in[1], bit(DType::I64), "i64"),
                            dtypeIn("moe_permute", "counts", a.out[1], bit(DType::I64), "i64"),
                            dtypeIn("moe_permute", "row_of", a.out[2], bit(DType::I64), "i64"),
                            sameDtype("moe_permute", "rows", a.out[0], a.in[0]));
  if (!err.empty())
    return err;
  const auto &x = a.in[0].shape, &ids = a.in[1].shape;
  if (x.size() != 2 || ids.size() != 2 || ids[0] != x[0] || a.out[1].shape.size() != 1 ||
      a.out[0].shape != std::vector<int64_t>{x[0] * ids[1], x[1]} || a.out[2].shape != std::vector<int64_t>{x[0] * ids[1]})
    return "moe_permute: x [T, H], indices [T, k] -> rows [T*k, H], counts [E], row_of [T*k] expected";
  return "";
}
std::string acceptsMoeGroupedGemm(const KernelArgs &a) {
  std::string err = dtypeIn("moe_grouped_gemm", "recv_counts", a.in[1], bit(DType::I64), "i64");
  for (const TensorView *t : {&a.in[0], &a.in[2], &a.in[3], &a.out[0], &a.out[1]})
    if (err.empty())
      err = dtypeIn("moe_grouped_gemm", "an operand", *t, bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  const auto &recv = a.in[0].shape, &gu = a.in[2].shape, &dn = a.in[3].shape;
  if (recv.size() != 2 || gu.size() != 3 || dn.size() != 3 || gu[0] != dn[0] || gu[1] != 2 * dn[2] || gu[2] != recv[1] ||
      dn[1] != recv[1] || a.in[1].shape.size() != 1 || gu[0] == 0 || a.in[1].shape[0] % gu[0] != 0 ||
      a.out[0].shape != recv || a.out[1].shape != std::vector<int64_t>{recv[0], dn[2]})
    return "moe_grouped_gemm: recv [R, H], recv_counts [G*El], gate_up [El, 2I, H], down [El, H, I] -> out [R, H], "
           "hidden [R, I] expected";
  return "";
}
std::string acceptsMoeUnpermute(const KernelArgs &a) {
  std::string err = dtypeIn("moe_unpermute", "row_of", a.in[1], bit(DType::I64), "i64");
  for (const TensorView *t : {&a.in[0], &a.in[2], &a.out[0]})
    if (err.empty())
      err = dtypeIn("moe_unpermute", "an operand", *t, bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  const auto &rows = a.in[0].shape, &w = a.in[2].shape;
  if (rows.size() != 2 || w.size() != 2 || rows[0] != w[0] * w[1] || a.in[1].shape != std::vector<int64_t>{rows[0]} ||
      a.out[0].shape != std::vector<int64_t>{w[0], rows[1]})
    return "moe_unpermute: rows [T*k, H], row_of [T*k], weights [T, k] -> y [T, H] expected";
  return "";
}

std::string acceptsGemm(const KernelArgs &a) {
  std::string err;
  for (const TensorView *t : {&a.in[0], &a.in[1], &a.out[0]})
    if (err.empty())
      err = dtypeIn("gemm", "an operand", *t, bit(DType::F32), "f32");
  if (err.empty() && a.in.size() > 2)
    err = dtypeIn("gemm", "C", a.in[2], bit(DType::F32), "f32");
  if (!err.empty())
    return err;
  const TensorView &A = a.in[0], &B = a.in[1], &y = a.out[0];
  const bool transA = a.attrs && a.attrs->getBool("trans_a", false);
  const bool transB = a.attrs && a.attrs->getBool("trans_b", false);
  if (A.rank() != 2 || B.rank() != 2 || y.rank() != 2)
    return "gemm: the CUDA kernel takes 2-D operands";
  if ((transA ? A.shape[0] : A.shape[1]) != (transB ? B.shape[1] : B.shape[0]) ||
      y.shape[0] != (transA ? A.shape[1] : A.shape[0]) || y.shape[1] != (transB ? B.shape[0] : B.shape[1]))
    return "gemm: the operands' dims do not match";
  if (a.in.size() > 2) {
    kernels::StridedCopyParams p;
    if (std::string plan = kernels::planExpand(a.in[2].shape, y.shape, 4, p); !plan.empty())
      return "gemm: C: " + plan;
  }
  return "";
}

std::string acceptsLess(const KernelArgs &a) {
  return firstOf(sameDtype("less", "b", a.in[1], a.in[0]), dtypeIn("less", "y", a.out[0], bit(DType::Bool), "bool"),
                 selectPlan("less", a));
}
std::string acceptsLessEqual(const KernelArgs &a) {
  return firstOf(sameDtype("less_equal", "b", a.in[1], a.in[0]),
                 dtypeIn("less_equal", "y", a.out[0], bit(DType::Bool), "bool"), selectPlan("less_equal", a));
}
// ONNX scans and index ops (ScanKernels.h): every dtype, one thread per line or slice element.
std::string acceptsCumsum(const KernelArgs &a) {
  if (std::string err = sameDtype("cumsum", "y", a.out[0], a.in[0]); !err.empty())
    return err;
  if (a.out[0].shape != a.in[0].shape)
    return "cumsum: y must have x's shape";
  kernels::AxisLinesParams p;
  std::string err = kernels::planAxisLines(a.in[0].shape, a.attrs ? a.attrs->getInt("axis", 0) : 0, p);
  return err.empty() ? "" : "cumsum: " + err;
}
std::string acceptsArgExtremum(const char *name, const KernelArgs &a) {
  if (std::string err = dtypeIn(name, "y", a.out[0], bit(DType::I64), "i64"); !err.empty())
    return err;
  kernels::AxisLinesParams p;
  std::string err = kernels::planAxisLines(a.in[0].shape, a.attrs ? a.attrs->getInt("axis", 0) : 0, p);
  if (err.empty() && a.out[0].numel() != p.outer * p.inner)
    err = "y must have one element per line";
  return err.empty() ? "" : name + (": " + err);
}
std::string acceptsArgMax(const KernelArgs &a) { return acceptsArgExtremum("arg_max", a); }
std::string acceptsArgMin(const KernelArgs &a) { return acceptsArgExtremum("arg_min", a); }
std::string acceptsScatterElements(const KernelArgs &a) {
  if (std::string err = firstOf(dtypeIn("scatter_elements", "the indices", a.in[1], bit(DType::I64), "i64"),
                                sameDtype("scatter_elements", "updates", a.in[2], a.in[0]),
                                sameDtype("scatter_elements", "y", a.out[0], a.in[0]));
      !err.empty())
    return err;
  if (a.out[0].shape != a.in[0].shape)
    return "scatter_elements: y must have the data's shape";
  kernels::ScatterElementsParams p;
  std::string err = kernels::planScatterElements(a.in[0].shape, a.in[1].shape, a.in[2].shape,
                                                 a.attrs ? a.attrs->getInt("axis", 0) : 0,
                                                 a.attrs ? a.attrs->getString("reduction", "none") : "none", p);
  return err.empty() ? "" : "scatter_elements: " + err;
}
std::string acceptsScatterNd(const KernelArgs &a) {
  if (std::string err = firstOf(dtypeIn("scatter_nd", "the indices", a.in[1], bit(DType::I64), "i64"),
                                sameDtype("scatter_nd", "updates", a.in[2], a.in[0]),
                                sameDtype("scatter_nd", "y", a.out[0], a.in[0]));
      !err.empty())
    return err;
  kernels::ScatterNdParams p;
  std::string err = kernels::planScatterNd(a.in[0].shape, a.in[1].shape,
                                           a.attrs ? a.attrs->getString("reduction", "none") : "none", p);
  return err.empty() ? "" : "scatter_nd: " + err;
}

// The vocabulary-parallel loss: logits [B, S, V] (in[0]), i64 labels and max in the logits'
// dtype [B, S]; the row operands `rows` f32 (f64 for f64 logits); an optional i64 vocab_start.
std::string acceptsLossRows(std::string_view op, const KernelArgs &a, std::initializer_list<const TensorView *> rows,
                            size_t startAt) {
  const TensorView &x = a.in[0];
  if (x.rank() != 3)
    return std::string(op) + ": logits must be [B, S, V]";
  const std::vector<int64_t> bs{x.shape[0], x.shape[1]};
  const DType rowType = x.dtype == DType::F64 ? DType::F64 : DType::F32;
  if (std::string err = firstOf(dtypeIn(op, "the logits", x, kFloats | bit(DType::F64), "f32, bf16, f16, f64"),
                                dtypeIn(op, "labels", a.in[1], bit(DType::I64), "i64"),
                                sameDtype(op, "max", a.in[2], x));
      !err.empty())
    return err;
  if (a.in[1].shape != bs || a.in[2].shape != bs)
    return std::string(op) + ": labels and max must be [B, S] of the logits";
  for (const TensorView *t : rows)
    if (t->shape != bs || t->dtype != rowType)
      return std::string(op) + ": the row statistics must be [B, S] in f32 (f64 for f64 logits)";
  if (a.in.size() > startAt && (a.in[startAt].dtype != DType::I64 || a.in[startAt].numel() != 1))
    return std::string(op) + ": vocab_start must be one i64";
  return "";
}
std::string acceptsTokenLossStats(const KernelArgs &a) {
  return acceptsLossRows("token_loss_stats", a, {&a.out[0], &a.out[1]}, 3);
}
std::string acceptsTokenLossStatsGrad(const KernelArgs &a) {
  if (std::string err = acceptsLossRows("token_loss_stats_grad", a, {&a.in[3], &a.in[4]}, 5); !err.empty())
    return err;
  if (a.out[0].shape != a.in[0].shape)
    return "token_loss_stats_grad: dlogits must have the logits' shape";
  return sameDtype("token_loss_stats_grad", "dlogits", a.out[0], a.in[0]);
}
std::string acceptsTokenLossCombine(const KernelArgs &a) {
  const TensorView &sumexp = a.in[0];
  if (sumexp.rank() != 2 || (sumexp.dtype != DType::F32 && sumexp.dtype != DType::F64))
    return "token_loss_combine: sumexp must be f32 or f64 [B, S]";
  if (std::string err = firstOf(sameDtype("token_loss_combine", "picked", a.in[1], sumexp),
                                dtypeIn("token_loss_combine", "max", a.in[2], kFloats | bit(DType::F64), "float"),
                                dtypeIn("token_loss_combine", "labels", a.in[3], bit(DType::I64), "i64"),
                                sameDtype("token_loss_combine", "sum", a.out[0], sumexp),
                                sameDtype("token_loss_combine", "count", a.out[1], sumexp));
      !err.empty())
    return err;
  for (int i = 1; i < 4; ++i)
    if (a.in[i].shape != sumexp.shape)
      return "token_loss_combine: picked, max and labels must have sumexp's shape";
  if (a.out[0].numel() != 1 || a.out[1].numel() != 1)
    return "token_loss_combine: sum and count are scalars";
  return "";
}

constexpr CudaKernelEntry kTable[] = {
    {"linear", lib::linearKernel, acceptsLinear, "f32 bf16 f16", 2, 3, 1, 1},
    {"matmul", lib::matmulKernel, acceptsMatmul, "f32 bf16 f16", 2, 2, 1, 1},
    {"attention", lib::attentionWithLseKernel, acceptsAttention, "f32 bf16 f16", 3, 4, 1, 2},
    {"attention_grad", lib::attentionGradKernel, acceptsAttentionGrad, "f32 bf16 f16", 6, 7, 3, 3},
    {"embedding", lib::embeddingKernel, acceptsEmbedding, "2- and 4-byte tables, i64/i32 ids", 2, 3, 1, 1},
    {"copy", lib::copyKernel, acceptsCopy, "all", 1, 1, 1, 1},
    {"cast", lib::castKernel, acceptsCast, "all", 1, 1, 1, 1},
    {"split", lib::splitKernel, acceptsSplit, "all", 1, 1, 1, 4096},
    {"dynamic_slice", lib::dynamicSliceKernel, acceptsDynamicSlice, "all", 2, 2, 1, 1},
    {"gather", lib::gatherKernel, acceptsGather, "all, i64/i32 indices", 2, 2, 1, 1},
    {"token_loss", lib::tokenLossKernel, acceptsTokenLoss, "f32 bf16 f16", 2, 2, 2, 2},
    {"token_loss_grad", lib::tokenLossGradKernel, acceptsTokenLossGrad, "f32 bf16 f16", 3, 3, 1, 1},
    {"token_loss_stats", lib::tokenLossStatsKernel, acceptsTokenLossStats, "f32 bf16 f16 f64", 3, 4, 2, 2},
    {"token_loss_stats_grad", lib::tokenLossStatsGradKernel, acceptsTokenLossStatsGrad, "f32 bf16 f16 f64", 5, 6, 1, 1},
    {"token_loss_combine", lib::tokenLossCombineKernel, acceptsTokenLossCombine, "f32 f64", 4, 4, 2, 2},
    {"embedding_grad", lib::embeddingGradKernel, acceptsEmbeddingGrad, "f32 bf16 f16", 2, 3, 1, 1},
    {"slice", lib::sliceKernel, acceptsSlice, "all", 1, 1, 1, 1},
    {"concat", lib::concatKernel, acceptsConcat, "all", 1, 4096, 1, 1},
    {"transpose", lib::transposeKernel, acceptsTranspose, "all", 1, 1, 1, 1},
    {"expand", lib::expandKernel, acceptsExpand, "all", 1, 1, 1, 1},
    {"reduce_sum", lib::reduceSumKernel, acceptsReduceSum, "f32 bf16 f16", 1, 1, 1, 1},
    {"reduce_mean", lib::reduceMeanKernel, acceptsReduceMean, "f32 bf16 f16", 1, 1, 1, 1},
    {"reduce_max", lib::reduceMaxKernel, acceptsReduceMax, "f32 bf16 f16", 1, 1, 1, 1},
    {"formula", lib::formulaKernel, acceptsFormula, "f32 bf16 f16 (each operand its own)", 1, 2, 1, 1},
    {"rotary", lib::rotaryKernel, acceptsRotary, "f32 bf16 f16 (each operand its own)", 3, 3, 1, 1},
    {"rms_norm", lib::rmsNormKernel, acceptsRmsNorm, "f32 bf16 f16 (each operand its own)", 2, 2, 1, 1},
    {"layer_norm", lib::layerNormKernel, acceptsLayerNorm, "f32 bf16 f16 (each operand its own)", 2, 3, 1, 3},
    {"softmax", lib::softmaxKernel, acceptsSoftmax, "f32 bf16 f16 (each operand its own)", 1, 1, 1, 1},
    {"log_softmax", lib::logSoftmaxKernel, acceptsLogSoftmax, "f32 bf16 f16 (each operand its own)", 1, 1, 1, 1},
    {"silu_mul", lib::siluMulKernel, acceptsSiluMul, "f32 bf16 f16 (each operand its own)", 2, 2, 1, 1},
    {"pow", lib::powKernel, acceptsPow, "f32 bf16 f16 (exponent of the base's dtype)", 2, 2, 1, 1},
    {"where", lib::whereKernel, acceptsWhere, "all, bool condition", 3, 3, 1, 1},
    {"equal", lib::equalKernel, acceptsEqual, "all, bool result", 2, 2, 1, 1},
    {"isnan", lib::isnanKernel, acceptsIsnan, "all, bool result", 1, 1, 1, 1},
    {"gather_elements", lib::gatherElementsKernel, acceptsGatherElements, "all, i64/i32 indices", 2, 2, 1, 1},
    {"trilu", lib::triluKernel, acceptsTrilu, "all", 1, 1, 1, 1},
    {"gemm", lib::gemmKernel, acceptsGemm, "f32", 2, 3, 1, 1},
    {"less", lib::lessKernel, acceptsLess, "all, bool result", 2, 2, 1, 1},
    {"less_equal", lib::lessEqualKernel, acceptsLessEqual, "all, bool result", 2, 2, 1, 1},
    {"cumsum", lib::cumsumKernel, acceptsCumsum, "all", 1, 1, 1, 1},
    {"arg_max", lib::argMaxKernel, acceptsArgMax, "all, i64 result", 1, 1, 1, 1},
    {"scatter_nd", lib::scatterNdKernel, acceptsScatterNd, "all, i64 indices", 3, 3, 1, 1},
    {"top_k", lib::topKKernel, acceptsTopK, "all, i64 indices", 1, 1, 2, 2},
    {"gather_nd", lib::gatherNdKernel, acceptsGatherNd, "all, i64/i32 indices", 2, 2, 1, 1},
    {"moe_experts", lib::moeExpertsKernel, acceptsMoeExperts, "f32, i64 indices", 5, 5, 2, 2},
    {"arg_min", lib::argMinKernel, acceptsArgMin, "all, i64 result", 1, 1, 1, 1},
    {"scatter_elements", lib::scatterElementsKernel, acceptsScatterElements, "all, i64 indices", 3, 3, 1, 1},
    {"moe_router", lib::moeRouterKernel, acceptsMoeRouter, "f32 bf16 f16, i64 indices", 1, 2, 2, 2},
    {"moe_permute", lib::moePermuteKernel, acceptsMoePermute, "all, i64 indices", 2, 2, 3, 3},
    {"moe_grouped_gemm", lib::moeGroupedGemmKernel, acceptsMoeGroupedGemm, "f32, i64 counts", 4, 4, 2, 2},
    {"moe_unpermute", lib::moeUnpermuteKernel, acceptsMoeUnpermute, "f32, i64 rows", 3, 3, 1, 1},
    {"moe_experts_grad", lib::moeExpertsGradKernel, acceptsMoeExpertsGrad, "f32, i64 indices", 6, 6, 5, 5},
    {"moe_router_grad", lib::moeRouterGradKernel, acceptsMoeRouterGrad, "f32, i64 indices", 3, 3, 1, 1},
    {"moe_grouped_gemm_grad", lib::moeGroupedGemmGradKernel, acceptsMoeGroupedGemmGrad, "f32, i64 counts", 6, 6, 5,
     5},
};
constexpr size_t kCount = sizeof(kTable) / sizeof(kTable[0]);

// Entry I's launch: the operand counts and the predicate, then the kernel.
template <size_t I> std::string dispatch(const KernelArgs &a) {
  if (std::string err = cudaKernelAccepts(kTable[I], a); !err.empty())
    return err;
  return kTable[I].run(a);
}
template <size_t... I> constexpr std::array<rt::KernelFn, sizeof...(I)> dispatchers(std::index_sequence<I...>) {
  return {dispatch<I>...};
}
constexpr std::array<rt::KernelFn, kCount> kDispatch = dispatchers(std::make_index_sequence<kCount>());

} // namespace

std::string cudaKernelAccepts(const CudaKernelEntry &e, const KernelArgs &a) {
  if (std::string err = counts(e.op, a, e.inMin, e.inMax, e.outMin, e.outMax); !err.empty())
    return err;
  return e.accepts(a);
}

const CudaKernelEntry *cudaKernelTable(size_t &count) {
  count = kCount;
  return kTable;
}

const CudaKernelEntry *findCudaKernel(std::string_view op) {
  for (const CudaKernelEntry &e : kTable)
    if (e.op == op)
      return &e;
  return nullptr;
}

rt::KernelFn lookupCudaKernel(std::string_view op) {
  const CudaKernelEntry *e = findCudaKernel(op);
  if (!e)
    return nullptr;
  if (op == "attention")
    lib::prepareAttention();
  return kDispatch[size_t(e - kTable)];
}

} // namespace shardc::cuda
