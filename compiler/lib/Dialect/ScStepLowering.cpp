// Each sc op's artifact step and cost (StepOpInterface, ScOpInterfaces.td): the ops whose step
// is not simply their mnemonic without attributes, and whose cost is not the default. The
// attributes are the runtime's (rt::Attrs), named as its kernels read them.
#include "shardc/Dialect/ScDialect.h"

using namespace mlir;

namespace shardc {

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

uint64_t bytesOf(Value v) {
  RankedTensorType t = typeOf(v);
  Type et = t.getElementType();
  uint64_t width = et.isInteger(1) ? 1 : (et.getIntOrFloatBitWidth() + 7) / 8;
  return uint64_t(t.getNumElements()) * width;
}

uint64_t trafficOf(Operation *op) {
  uint64_t bytes = 0;
  for (Value v : op->getOperands())
    bytes += bytesOf(v);
  for (Value v : op->getResults())
    bytes += bytesOf(v);
  return bytes;
}

// I64Attr accessors return uint64_t; axes are signed and normalised against the rank of the
// op's first operand, so the runtime sees non-negative axes only.
int64_t axisOf(Operation *op, uint64_t raw) {
  int64_t axis = static_cast<int64_t>(raw);
  int64_t rank = typeOf(op->getOperand(0)).getRank();
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> ints(ArrayRef<int64_t> v) { return std::vector<int64_t>(v.begin(), v.end()); }

std::vector<std::string> strings(ArrayAttr names) {
  std::vector<std::string> out;
  for (auto n : names.getAsValueRange<StringAttr>())
    out.push_back(n.str());
  return out;
}

LogicalResult lowered(StepDesc &step, StringRef kind) {
  step.kind = kind.str();
  return success();
}

// 2 M N K: two FLOPs per result element and step of the contraction (length `k`).
OpCost contraction(Operation *op, int64_t k) {
  uint64_t out = uint64_t(typeOf(op->getResult(0)).getNumElements());
  return {2 * out * uint64_t(k), trafficOf(op)};
}

} // namespace

void defaultLowerToStep(Operation *op, StepDesc &step) {
  auto formula = dyn_cast<sc::ElementwiseOpInterface>(op);
  if (formula && formula.hasUniformOperandTypes()) {
    step.kind = "formula";
    step.attrs.set("formula", formula.getFormula().str());
    return;
  }
  step.kind = op->getName().stripDialect().str();
}

LogicalResult lowerCollectiveToStep(Operation *op, StepDesc &step) {
  step.kind = op->getName().stripDialect().str();
  for (StringAttr name : op->getName().getAttributeNames()) {
    std::optional<Attribute> inherent = op->getInherentAttr(name);
    if (!inherent || !*inherent)
      continue;
    Attribute a = *inherent;
    if (auto names = dyn_cast<ArrayAttr>(a))
      step.attrs.set(name.str(), strings(names));
    else if (auto dim = dyn_cast<IntegerAttr>(a))
      step.attrs.set(name.str(), axisOf(op, dim.getValue().getZExtValue()));
    else if (auto reduce = dyn_cast<sc::ReduceKindAttr>(a))
      step.attrs.set(name.str(), sc::stringifyReduceKind(reduce.getValue()).str());
    else
      return op->emitOpError() << "collective attribute '" << name.getValue() << "' has no step form";
  }
  return success();
}

// Elementwise ops, normalisations and data movement are bound by memory: their cost is the
// bytes they move. Contractions and attention count their arithmetic (below).
OpCost defaultOpCost(Operation *op) { return OpCost{0, trafficOf(op)}; }

namespace sc {

// Contractions.
OpCost MatMulOp::getCost() { return contraction(*this, typeOf(getLhs()).getShape().back()); }
LogicalResult GemmOp::lowerToStep(StepDesc &step) {
  step.attrs.set("alpha", getAlpha().convertToDouble());
  step.attrs.set("beta", getBeta().convertToDouble());
  step.attrs.set("trans_a", getTransA());
  step.attrs.set("trans_b", getTransB());
  return lowered(step, "gemm");
}
OpCost GemmOp::getCost() {
  ArrayRef<int64_t> a = typeOf(getA()).getShape();
  return contraction(*this, getTransA() ? a[0] : a[1]);
}
LogicalResult LinearOp::lowerToStep(StepDesc &step) {
  step.attrs.set("transpose_w", getTransposeWeight());
  if (auto epilogue = getEpilogue())
    step.attrs.set("epilogue", stringifyLinearEpilogue(*epilogue).str());
  return lowered(step, "linear");
}
OpCost LinearOp::getCost() { return contraction(*this, typeOf(getInput()).getShape().back()); }

// A table split on the vocabulary: its first row is the third input (sc-partition computes
// it from sc.process_index), the whole table's rows an attribute.
LogicalResult EmbeddingOp::lowerToStep(StepDesc &step) {
  if (auto vocab = getVocabSize())
    step.attrs.set("vocab_size", static_cast<int64_t>(*vocab));
  return lowered(step, "embedding");
}

// Normalisations.
LogicalResult SoftmaxOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "softmax");
}
LogicalResult LogSoftmaxOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "log_softmax");
}
LogicalResult LayerNormOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("epsilon", getEpsilon().convertToDouble());
  return lowered(step, "layer_norm");
}
LogicalResult RmsNormOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("epsilon", getEpsilon().convertToDouble());
  return lowered(step, "rms_norm");
}

// Attention: 2 (D + Dv) FLOPs per query-key pair scored; a causal step scores the pairs on
// and below the upper-left diagonal (row i sees min(i + 1, T) keys), with a sliding window
// (`sc.window` = w, sc-raise-attention) only the w newest of them.
LogicalResult AttentionOp::lowerToStep(StepDesc &step) {
  step.attrs.set("scale", getScale().convertToDouble());
  step.attrs.set("causal", getCausal());
  if (auto w = (*this)->getAttrOfType<IntegerAttr>("sc.window"))
    step.attrs.set("window", w.getInt());
  return lowered(step, "attention");
}
OpCost AttentionOp::getCost() {
  ArrayRef<int64_t> q = typeOf(getOperand(0)).getShape(), k = typeOf(getOperand(1)).getShape(),
                    v = typeOf(getOperand(2)).getShape();
  OpCost c{0, trafficOf(*this)};
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return c;
  const int64_t S = q[2], T = k[2];
  uint64_t pairs = uint64_t(S) * uint64_t(T);
  if (auto w = (*this)->getAttrOfType<IntegerAttr>("sc.window"); w && getCausal()) {
    pairs = 0;
    for (int64_t i = 0; i < S; ++i)
      pairs += uint64_t(std::max<int64_t>(0, std::min<int64_t>(i + 1, T) - std::max<int64_t>(0, i + 1 - w.getInt())));
  } else if (getCausal()) {
    const int64_t full = std::min(S, T);
    pairs = uint64_t(full) * uint64_t(full + 1) / 2 + uint64_t(S - full) * uint64_t(T);
  }
  c.flops = 2 * uint64_t(q[0]) * uint64_t(q[1]) * pairs * uint64_t(q[3] + v[3]);
  return c;
}

// Attention's backward recomputes the scores (2 D per pair), then forms dv, dP, dq and dk
// (2 Dv, 2 Dv, 2 D, 2 D): 2.5 times the forward's FLOPs when D = Dv.
LogicalResult AttentionGradOp::lowerToStep(StepDesc &step) {
  step.attrs.set("scale", getScale().convertToDouble());
  step.attrs.set("causal", getCausal());
  return lowered(step, "attention_grad");
}
OpCost AttentionGradOp::getCost() {
  ArrayRef<int64_t> q = typeOf(getQuery()).getShape(), k = typeOf(getKey()).getShape(),
                    v = typeOf(getValue()).getShape();
  const int64_t S = q[2], T = k[2];
  uint64_t pairs = uint64_t(S) * uint64_t(T);
  if (getCausal()) {
    const int64_t full = std::min(S, T);
    pairs = uint64_t(full) * uint64_t(full + 1) / 2 + uint64_t(S - full) * uint64_t(T);
  }
  return {2 * uint64_t(q[0]) * uint64_t(q[1]) * pairs * uint64_t(3 * q[3] + 2 * v[3]), trafficOf(*this)};
}
LogicalResult EmbeddingGradOp::lowerToStep(StepDesc &step) {
  if (auto vocab = getVocabSize())
    step.attrs.set("vocab_size", static_cast<int64_t>(*vocab));
  if (auto pad = getPaddingIdx())
    step.attrs.set("padding_idx", static_cast<int64_t>(*pad));
  return lowered(step, "embedding_grad");
}
// Per logit the softmax (max, exponential, sum, division) and the scaling.
OpCost TokenLossGradOp::getCost() {
  uint64_t logits = uint64_t(typeOf(getLogits()).getNumElements());
  return {5 * logits, trafficOf(*this)};
}

// An assign is a copy into the state's buffer (the emitter writes that buffer as its output).
LogicalResult AssignOp::lowerToStep(StepDesc &step) { return lowered(step, "copy"); }

// Token loss: per logit a subtraction, an exponential and an addition (logsumexp), plus the
// max pass; the traffic is the logits read once more for the label.
OpCost TokenLossOp::getCost() {
  uint64_t logits = uint64_t(typeOf(getLogits()).getNumElements());
  return {4 * logits, trafficOf(*this)};
}

// The vocabulary-parallel loss: per logit an exponential and an addition (stats), an
// exponential and a multiply-add (its gradient); combine is per row. sc.stop_gradient is a copy.
OpCost TokenLossStatsOp::getCost() { return {3 * uint64_t(typeOf(getLogits()).getNumElements()), trafficOf(*this)}; }
OpCost TokenLossStatsGradOp::getCost() {
  return {4 * uint64_t(typeOf(getLogits()).getNumElements()), trafficOf(*this)};
}
OpCost TokenLossCombineOp::getCost() { return {4 * uint64_t(typeOf(getSumexp()).getNumElements()), trafficOf(*this)}; }
LogicalResult StopGradientOp::lowerToStep(StepDesc &step) { return lowered(step, "copy"); }

// Reductions.
template <typename R> static LogicalResult lowerReduce(R op, StepDesc &step, StringRef kind) {
  step.attrs.set("axes", ints(op.getAxes()));
  step.attrs.set("keepdims", op.getKeepdims());
  return lowered(step, kind);
}
LogicalResult ReduceMeanOp::lowerToStep(StepDesc &step) { return lowerReduce(*this, step, "reduce_mean"); }
LogicalResult ReduceSumOp::lowerToStep(StepDesc &step) { return lowerReduce(*this, step, "reduce_sum"); }
LogicalResult ReduceMaxOp::lowerToStep(StepDesc &step) { return lowerReduce(*this, step, "reduce_max"); }

// Data movement. Reshapes of row-major data are copies (the memory plan may alias them).
LogicalResult ReshapeOp::lowerToStep(StepDesc &step) { return lowered(step, "copy"); }
LogicalResult UnsqueezeOp::lowerToStep(StepDesc &step) { return lowered(step, "copy"); }
LogicalResult SqueezeOp::lowerToStep(StepDesc &step) { return lowered(step, "copy"); }
// A graph output's copy (sc-materialize-outputs) is not counted as work (ScOps.td).
OpCost CopyOp::getCost() { return OpCost{}; }
LogicalResult TransposeOp::lowerToStep(StepDesc &step) {
  step.attrs.set("perm", ints(getPerm()));
  return lowered(step, "transpose");
}
LogicalResult SliceOp::lowerToStep(StepDesc &step) {
  step.attrs.set("starts", ints(getStarts()));
  step.attrs.set("steps", ints(getSteps()));
  return lowered(step, "slice");
}
LogicalResult ConcatOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "concat");
}
LogicalResult SplitOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "split");
}
LogicalResult GatherOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "gather");
}
LogicalResult GatherElementsOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "gather_elements");
}
LogicalResult TopKOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("largest", getLargest());
  return lowered(step, "top_k");
}
LogicalResult GatherNdOp::lowerToStep(StepDesc &step) {
  step.attrs.set("batch_dims", static_cast<int64_t>(getBatchDims()));
  return lowered(step, "gather_nd");
}
LogicalResult MoeExpertsOp::lowerToStep(StepDesc &step) {
  step.attrs.set("activation", getActivation().str());
  return lowered(step, "moe_experts");
}
// Each of the T·k rows runs a [2I, H] and an [H, I] matrix-vector product.
OpCost MoeExpertsOp::getCost() {
  ArrayRef<int64_t> ids = typeOf(getIndices()).getShape(), dn = typeOf(getDown()).getShape();
  const uint64_t rows = uint64_t(ids[0] * ids[1]), H = uint64_t(dn[1]), I = uint64_t(dn[2]);
  return {2 * rows * 3 * H * I, trafficOf(*this)};
}
// Expert parallelism (sc-partition's expansion of sc.moe_experts over ep).
LogicalResult MoePermuteOp::lowerToStep(StepDesc &step) { return lowered(step, "moe_permute"); }
OpCost MoePermuteOp::getCost() { return {0, trafficOf(*this)}; }
LogicalResult MoeDispatchOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axes", strings(getAxes()));
  return lowered(step, "moe_dispatch");
}
OpCost MoeDispatchOp::getCost() { return {0, trafficOf(*this)}; }
// Each of the R rows (the worst case) runs a [2I, H] and an [H, I] product.
LogicalResult MoeGroupedGemmOp::lowerToStep(StepDesc &step) { return lowered(step, "moe_grouped_gemm"); }
OpCost MoeGroupedGemmOp::getCost() {
  ArrayRef<int64_t> dn = typeOf(getDown()).getShape();
  const uint64_t rows = uint64_t(typeOf(getRecv()).getDimSize(0)), H = uint64_t(dn[1]), I = uint64_t(dn[2]);
  return {2 * rows * 3 * H * I, trafficOf(*this)};
}
LogicalResult MoeCombineOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axes", strings(getAxes()));
  return lowered(step, "moe_combine");
}
OpCost MoeCombineOp::getCost() { return {0, trafficOf(*this)}; }
LogicalResult MoeUnpermuteOp::lowerToStep(StepDesc &step) { return lowered(step, "moe_unpermute"); }
OpCost MoeUnpermuteOp::getCost() {
  return {2 * uint64_t(typeOf(getRows()).getNumElements()), trafficOf(*this)};
}
LogicalResult DynamicSliceOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  return lowered(step, "dynamic_slice");
}
LogicalResult TriluOp::lowerToStep(StepDesc &step) {
  step.attrs.set("upper", getUpper());
  step.attrs.set("k", static_cast<int64_t>(getK()));
  return lowered(step, "trilu");
}

// ONNX scans and index ops.
LogicalResult CumSumOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("exclusive", getExclusive());
  step.attrs.set("reverse", getReverse());
  return lowered(step, "cumsum");
}
LogicalResult ArgMaxOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("keepdims", getKeepdims());
  step.attrs.set("select_last_index", getSelectLastIndex());
  return lowered(step, "arg_max");
}
LogicalResult ScatterNDOp::lowerToStep(StepDesc &step) {
  step.attrs.set("reduction", getReduction().str());
  return lowered(step, "scatter_nd");
}
LogicalResult ArgMinOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("keepdims", getKeepdims());
  step.attrs.set("select_last_index", getSelectLastIndex());
  return lowered(step, "arg_min");
}
LogicalResult ScatterElementsOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axis", axisOf(*this, getAxis()));
  step.attrs.set("reduction", getReduction().str());
  return lowered(step, "scatter_elements");
}
// The router: one step; its cost is a handful of operations per score (memory-bound).
LogicalResult MoeRouterOp::lowerToStep(StepDesc &step) {
  step.attrs.set("scoring", getScoring().str());
  step.attrs.set("n_group", static_cast<int64_t>(getNGroup()));
  step.attrs.set("topk_group", static_cast<int64_t>(getTopkGroup()));
  step.attrs.set("group_k", static_cast<int64_t>(getGroupK()));
  step.attrs.set("normalize", getNormalize());
  step.attrs.set("norm_epsilon", getNormEpsilon().convertToDouble());
  step.attrs.set("scale", getScale().convertToDouble());
  return lowered(step, "moe_router");
}
OpCost MoeRouterOp::getCost() { return {0, trafficOf(*this)}; }

// The rank's index in a group: the executor writes it (at load).
LogicalResult ProcessIndexOp::lowerToStep(StepDesc &step) {
  step.attrs.set("axes", strings(getAxes()));
  return lowered(step, "process_index");
}

} // namespace sc
} // namespace shardc
