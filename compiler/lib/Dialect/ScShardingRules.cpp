// The sharding rules of the sc ops (ScShardingInterface.td), one builder per op family:
// elementwise broadcasting, contractions, normalisations, data movement with compound
// factors (reshape), attention. Every op of the dialect defines getShardingRule() here.
#include "shardc/Dialect/ScDialect.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;

namespace shardc {

namespace {

using Dims = SmallVector<SmallVector<int, 2>>;

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

Dims noFactors(int64_t rank) { return Dims(rank); }

// Result dims each get a factor; operands align to the right (numpy broadcasting) and take
// the result's factor where their dim is not a broadcast 1.
ShardingRule broadcastRule(Operation *op) {
  ShardingRule r;
  ArrayRef<int64_t> out = shapeOf(op->getResult(0));
  Dims res;
  for (int64_t d : out)
    res.push_back({r.addFactor(d)});
  for (Value v : op->getOperands()) {
    ArrayRef<int64_t> s = shapeOf(v);
    Dims dims(s.size());
    int64_t off = out.size() - s.size();
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] == out[i + off] && s[i] != 1)
        dims[i] = res[i + off];
    r.operands.push_back(dims);
  }
  for (unsigned i = 0; i < op->getNumResults(); ++i)
    r.results.push_back(res);
  return r;
}

// Reshape as compound factors: `in` and `out` are decomposed into a common factor sequence
// ([2,64,256] -> [2,64,8,32]: the 256 dim holds factors 8 and 32). nullopt when the shapes
// do not share a factorisation (then the op keeps everything replicated).
std::optional<ShardingRule> reshapeRule(ArrayRef<int64_t> in, ArrayRef<int64_t> out) {
  ShardingRule r;
  Dims inDims(in.size()), outDims(out.size());
  size_t i = 0, j = 0;
  int64_t remIn = 0, remOut = 0;
  while (true) {
    while (i < in.size() && remIn == 0) {
      if (in[i] == 1) { ++i; continue; }
      remIn = in[i];
    }
    while (j < out.size() && remOut == 0) {
      if (out[j] == 1) { ++j; continue; }
      remOut = out[j];
    }
    if (i >= in.size() || j >= out.size())
      break;
    int64_t f;
    if (remIn == remOut) f = remIn;
    else if (remOut % remIn == 0) f = remIn;
    else if (remIn % remOut == 0) f = remOut;
    else return std::nullopt;
    int id = r.addFactor(f);
    inDims[i].push_back(id);
    outDims[j].push_back(id);
    remIn /= f;
    remOut /= f;
    if (remIn == 1) { remIn = 0; ++i; }
    if (remOut == 1) { remOut = 0; ++j; }
  }
  if (i < in.size() || j < out.size())
    return std::nullopt;
  r.operands.push_back(inDims);
  r.results.push_back(outDims);
  r.partialFlow = ShardingRule::PartialFlow::Unary;
  return r;
}

// Same-shape ops whose dims from `firstFixed` on must stay whole (normalisations, softmax).
ShardingRule keepTailWhole(Operation *op, int64_t firstFixed) {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(op->getOperand(0));
  Dims xd;
  for (int64_t i = 0; i < (int64_t)x.size(); ++i)
    xd.push_back({r.addFactor(x[i], i < firstFixed)});
  r.operands.push_back(xd);
  // Other operands (scale, bias, cos/sin) align right with x.
  for (Value v : op->getOperands().drop_front()) {
    ArrayRef<int64_t> s = shapeOf(v);
    Dims dims(s.size());
    int64_t off = x.size() - s.size();
    for (size_t i = 0; i < s.size(); ++i)
      if (off + (int64_t)i >= 0 && s[i] == x[i + off] && s[i] != 1)
        dims[i] = xd[i + off];
    r.operands.push_back(dims);
  }
  r.results.push_back(xd);
  return r;
}

ShardingRule linearRule(sc::LinearOp op) {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(op.getInput()), w = shapeOf(op.getWeight());
  Dims xd, res;
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    int f = r.addFactor(x[i]);
    xd.push_back({f});
    res.push_back({f});
  }
  int k = r.addFactor(x.back(), true, true);
  int n = r.addFactor(op.getTransposeWeight() ? w[0] : w[1]);
  xd.push_back({k});
  res.push_back({n});
  r.operands.push_back(xd);
  r.operands.push_back(op.getTransposeWeight() ? Dims{{n}, {k}} : Dims{{k}, {n}});
  if (op.getBias())
    r.operands.push_back(Dims{{n}});
  // With a bias, partial sums would each add it: a contraction split must be reduced
  // first, so k stays whole (sc-apply-plan moves a rowwise bias after the reduction).
  if (op.getBias())
    r.factors[k].shardable = false;
  r.results.push_back(res);
  return r;
}

std::optional<ShardingRule> matmulRule(sc::MatMulOp op) {
  ArrayRef<int64_t> a = shapeOf(op.getLhs()), b = shapeOf(op.getRhs()), y = shapeOf(op.getResult());
  if (a.size() < 2 || b.size() < 2)
    return std::nullopt;
  ShardingRule r;
  Dims res;
  for (size_t i = 0; i + 2 < y.size(); ++i)
    res.push_back({r.addFactor(y[i])});
  int m = r.addFactor(a[a.size() - 2]), k = r.addFactor(a.back(), true, true), n = r.addFactor(b.back());
  auto batchOf = [&](ArrayRef<int64_t> s) {
    Dims d(s.size());
    int64_t off = (y.size() - 2) - (s.size() - 2);
    for (size_t i = 0; i + 2 < s.size(); ++i)
      if (s[i] == y[i + off] && s[i] != 1)
        d[i] = res[i + off];
    return d;
  };
  Dims ad = batchOf(a), bd = batchOf(b);
  ad[a.size() - 2] = {m};
  ad[a.size() - 1] = {k};
  bd[b.size() - 2] = {k};
  bd[b.size() - 1] = {n};
  res.push_back({m});
  res.push_back({n});
  r.operands = {ad, bd};
  r.results = {res};
  return r;
}

// The factors of attention and of its backward: batch, kv heads x group (sharding the
// kv-head factor keeps each query head with the kv head it reads, GQA), query sequence (split
// for context parallelism: the keys and values are gathered; in the backward dq stays split and
// dk, dv are sums over the query shards, Partial until reduce-scattered back over cp), head
// dims and key length (whole).
struct AttentionFactors {
  ShardingRule r;
  Dims q, k, v, out, rows, scores;
  AttentionFactors(Value query, Value key, Value value, bool backward) {
    ArrayRef<int64_t> qs = shapeOf(query), ks = shapeOf(key), vs = shapeOf(value);
    int b = r.addFactor(qs[0]), hkv = r.addFactor(ks[1]);
    SmallVector<int, 2> heads{hkv};
    if (qs[1] / ks[1] > 1)
      heads.push_back(r.addFactor(qs[1] / ks[1], false));
    int s = r.addFactor(qs[2], true, backward), d = r.addFactor(qs[3], false), t = r.addFactor(ks[2], false),
        dv = r.addFactor(vs[3], false);
    q = {{b}, heads, {s}, {d}};
    k = {{b}, {hkv}, {t}, {d}};
    v = {{b}, {hkv}, {t}, {dv}};
    out = {{b}, heads, {s}, {dv}};
    rows = {{b}, heads, {s}};
    scores = {{b}, heads, {s}, {t}};
  }
  // An additive or boolean mask broadcast to the scores: its full-size dims take their factors.
  Dims mask(Value m, ArrayRef<int64_t> scoreShape) const {
    ArrayRef<int64_t> ms = shapeOf(m);
    Dims md(ms.size());
    int64_t off = 4 - ms.size();
    for (size_t i = 0; i < ms.size(); ++i)
      if (ms[i] == scoreShape[i + off] && ms[i] != 1)
        md[i] = scores[i + off];
    return md;
  }
};

SmallVector<int64_t> scoreShape(Value query, Value key) {
  ArrayRef<int64_t> q = shapeOf(query), k = shapeOf(key);
  return {q[0], q[1], q[2], k[2]};
}

ShardingRule attentionRule(sc::AttentionOp op) {
  AttentionFactors f(op.getQuery(), op.getKey(), op.getValue(), /*backward=*/false);
  f.r.operands = {f.q, f.k, f.v};
  if (Value mask = op.getMask())
    f.r.operands.push_back(f.mask(mask, scoreShape(op.getQuery(), op.getKey())));
  f.r.results.push_back(f.out);
  if (op.getLse())
    f.r.results.push_back(f.rows);
  return f.r;
}

ShardingRule attentionGradRule(sc::AttentionGradOp op) {
  AttentionFactors f(op.getQuery(), op.getKey(), op.getValue(), /*backward=*/true);
  f.r.operands = {f.q, f.k, f.v, f.out, f.rows, f.out};
  if (Value mask = op.getMask())
    f.r.operands.push_back(f.mask(mask, scoreShape(op.getQuery(), op.getKey())));
  f.r.results = {f.q, f.k, f.v};
  return f.r;
}

ShardingRule transposeRule(sc::TransposeOp op) {
  ShardingRule r;
  ArrayRef<int64_t> in = shapeOf(op.getInput());
  Dims id;
  for (int64_t d : in)
    id.push_back({r.addFactor(d)});
  Dims od;
  for (int64_t p : op.getPerm())
    od.push_back(id[p]);
  r.operands.push_back(id);
  r.results.push_back(od);
  r.partialFlow = ShardingRule::PartialFlow::Unary;
  return r;
}

ShardingRule reduceRule(Operation *op, ArrayRef<int64_t> axes, bool keepdims, bool shardReduced, StringRef kind) {
  ShardingRule r;
  ArrayRef<int64_t> in = shapeOf(op->getOperand(0));
  Dims id, od;
  for (int64_t i = 0; i < (int64_t)in.size(); ++i) {
    bool reduced = llvm::is_contained(axes, i);
    int f = r.addFactor(in[i], !reduced || shardReduced, reduced);
    id.push_back({f});
    if (!reduced)
      od.push_back({f});
    else if (keepdims)
      od.push_back({});
  }
  r.operands.push_back(id);
  r.results.push_back(od);
  r.reductionKind = kind.str();
  return r;
}

// Ops that keep some dims whole and pass the others through (slice, concat, split).
ShardingRule passThroughExcept(Operation *op, llvm::function_ref<bool(int64_t dim)> whole) {
  ShardingRule r;
  ArrayRef<int64_t> out = shapeOf(op->getResult(0));
  int64_t rank = out.size();
  SmallVector<int> shared(rank, -1);
  for (int64_t i = 0; i < rank; ++i)
    if (!whole(i))
      shared[i] = r.addFactor(out[i]);
  auto dimsOf = [&](Value v) {
    Dims d;
    ArrayRef<int64_t> s = shapeOf(v);
    for (int64_t i = 0; i < rank; ++i)
      d.push_back({shared[i] >= 0 ? shared[i] : r.addFactor(s[i], false)});
    return d;
  };
  for (Value v : op->getOperands())
    r.operands.push_back(dimsOf(v));
  for (Value v : op->getResults())
    r.results.push_back(dimsOf(v));
  return r;
}

// Every dim of every result is its own factor: sources (parameters, constants) whose
// shardings come from the plan, not from operands.
ShardingRule sourceRule(Operation *op) {
  ShardingRule r;
  for (Value v : op->getResults()) {
    Dims d;
    for (int64_t s : shapeOf(v))
      d.push_back({r.addFactor(s)});
    r.results.push_back(d);
  }
  return r;
}

ShardingRule withFlow(ShardingRule r, ShardingRule::PartialFlow flow) {
  r.partialFlow = flow;
  return r;
}

int64_t normAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

} // namespace

using PF = ShardingRule::PartialFlow;
using Rule = std::optional<ShardingRule>;

ShardingRule elementwiseShardingRule(Operation *op, ShardingRule::PartialFlow flow) {
  return withFlow(broadcastRule(op), flow);
}

namespace sc {

// Sources.
Rule ParamOp::getShardingRule() { return sourceRule(*this); }
Rule ConstantOp::getShardingRule() { return sourceRule(*this); }

// Elementwise. Formula ops (Sc_FormulaOp: add, exp, silu...) take elementwiseShardingRule
// with the Partial flow their definition states. Partial may also flow through a cast (a
// change of type is linear), an expand and a copy.
Rule CastOp::getShardingRule() { return withFlow(broadcastRule(*this), PF::Unary); }
Rule ExpandOp::getShardingRule() { return withFlow(broadcastRule(*this), PF::Unary); }
Rule CopyOp::getShardingRule() { return withFlow(broadcastRule(*this), PF::Unary); }
Rule PowOp::getShardingRule() { return broadcastRule(*this); }
Rule EqualOp::getShardingRule() { return broadcastRule(*this); }
Rule WhereOp::getShardingRule() { return broadcastRule(*this); }
Rule IsNaNOp::getShardingRule() { return broadcastRule(*this); }
Rule GeluOp::getShardingRule() { return broadcastRule(*this); }

// Contractions.
Rule LinearOp::getShardingRule() { return linearRule(*this); }
Rule MatMulOp::getShardingRule() { return matmulRule(*this); }
Rule GemmOp::getShardingRule() {
  // alpha * op(A) op(B) + beta * C on 2-D operands.
  ShardingRule r;
  ArrayRef<int64_t> a = shapeOf(getA()), b = shapeOf(getB());
  int64_t m = getTransA() ? a[1] : a[0], k = getTransA() ? a[0] : a[1], n = getTransB() ? b[0] : b[1];
  int fm = r.addFactor(m), fk = r.addFactor(k, /*shardable=*/!getC(), /*reduction=*/true), fn = r.addFactor(n);
  r.operands.push_back(getTransA() ? Dims{{fk}, {fm}} : Dims{{fm}, {fk}});
  r.operands.push_back(getTransB() ? Dims{{fn}, {fk}} : Dims{{fk}, {fn}});
  if (Value c = getC()) {
    ArrayRef<int64_t> cs = shapeOf(c);
    Dims cd(cs.size());
    SmallVector<int64_t> out{m, n};
    SmallVector<int> outF{fm, fn};
    int64_t off = 2 - (int64_t)cs.size();
    for (size_t i = 0; i < cs.size(); ++i)
      if (cs[i] == out[i + off] && cs[i] != 1)
        cd[i] = {outF[i + off]};
    r.operands.push_back(cd);
  }
  r.results.push_back(Dims{{fm}, {fn}});
  return r;
}
Rule AttentionOp::getShardingRule() { return attentionRule(*this); }
Rule EmbeddingOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> t = shapeOf(getTable()), ids = shapeOf(getIds());
  // A vocabulary-split table (embedding_rowwise, or a tied colwise lm_head) gives each rank
  // the rows it holds and zeros elsewhere: a Partial(sum) result.
  int v = r.addFactor(t[0], true, true), h = r.addFactor(t[1]);
  Dims idd, res;
  for (int64_t d : ids) {
    int f = r.addFactor(d);
    idd.push_back({f});
    res.push_back({f});
  }
  res.push_back({h});
  r.operands = {Dims{{v}, {h}}, idd};
  if (getRowStart()) // the vocabulary split's first row (after sc-partition): a scalar
    r.operands.push_back(Dims{});
  r.results = {res};
  return r;
}

// Normalisations keep the normalised dims whole; softmax keeps its axis whole.
Rule RmsNormOp::getShardingRule() {
  return keepTailWhole(*this, normAxis(getAxis(), shapeOf(getInput()).size()));
}
Rule LayerNormOp::getShardingRule() {
  return keepTailWhole(*this, normAxis(getAxis(), shapeOf(getInput()).size()));
}
static ShardingRule softmaxRule(Operation *op, int64_t axis) {
  int64_t rank = shapeOf(op->getOperand(0)).size();
  ShardingRule r = keepTailWhole(op, rank);
  r.factors[r.operands[0][normAxis(axis, rank)][0]].shardable = false;
  return r;
}
// Token loss: batch and sequence are reductions of both scalar results (sharded, they make
// the sum and the count Partial); the vocabulary stays whole (no vocabulary-parallel loss).
Rule TokenLossOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(getLogits());
  int b = r.addFactor(x[0], true, true), s = r.addFactor(x[1], true, true), v = r.addFactor(x[2], false);
  r.operands.push_back({{b}, {s}, {v}});
  r.operands.push_back({{b}, {s}});
  r.results.push_back({});
  r.results.push_back({});
  r.reductionKind = "sum";
  return r;
}
// The vocabulary-parallel loss: the vocabulary is a reduction of the row statistics (split,
// both are Partial(sum): each rank's slice adds its exponentials and, where it holds the label,
// the label's logit); batch and sequence pass through, and are reductions of the combined sum
// and count like sc.token_loss's.
Rule StopGradientOp::getShardingRule() { return withFlow(broadcastRule(*this), PF::Unary); }
Rule TokenLossStatsOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(getLogits());
  int b = r.addFactor(x[0]), s = r.addFactor(x[1]), v = r.addFactor(x[2], true, true);
  r.operands = {Dims{{b}, {s}, {v}}, Dims{{b}, {s}}, Dims{{b}, {s}}};
  if (getVocabStart())
    r.operands.push_back(Dims{});
  r.results = {Dims{{b}, {s}}, Dims{{b}, {s}}};
  r.reductionKind = "sum";
  return r;
}
Rule TokenLossStatsGradOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(getLogits());
  int b = r.addFactor(x[0]), s = r.addFactor(x[1]), v = r.addFactor(x[2]);
  Dims row{{b}, {s}};
  r.operands = {Dims{{b}, {s}, {v}}, row, row, row, row};
  if (getVocabStart())
    r.operands.push_back(Dims{});
  r.results = {Dims{{b}, {s}, {v}}};
  return r;
}
Rule TokenLossCombineOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(getSumexp());
  int b = r.addFactor(x[0], true, true), s = r.addFactor(x[1], true, true);
  Dims row{{b}, {s}};
  r.operands = {row, row, row, row};
  r.results = {Dims{}, Dims{}};
  r.reductionKind = "sum";
  return r;
}
// Backward ops (sc-autodiff). The embedding's gradient sums over the ids: sharding their dims
// (the batch) leaves a Partial(sum) table gradient, which the reshard planner reduces (FSDP's
// gradient reduce-scatter). The vocabulary rows may be split (a vocabulary-split table,
// embedding_rowwise): each rank then computes only its rows from every id, skipping the ids
// outside them (sc-partition gives the op its row_start), with no communication.
Rule AttentionGradOp::getShardingRule() { return attentionGradRule(*this); }
Rule EmbeddingGradOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> t = shapeOf(getResult()), ids = shapeOf(getIds());
  int v = r.addFactor(t[0]), h = r.addFactor(t[1]);
  Dims idd, dy;
  for (int64_t d : ids) {
    int f = r.addFactor(d, true, true);
    idd.push_back({f});
    dy.push_back({f});
  }
  dy.push_back({h});
  r.operands = {idd, dy};
  if (getRowStart())
    r.operands.push_back(Dims{});
  r.results = {Dims{{v}, {h}}};
  r.reductionKind = "sum";
  return r;
}
// A state is a source: sc-add-optimizer seeds its layout (the parameter's compute layout, its
// stored one recorded apart, like a stored parameter's), and its init, read once at load in
// the stored layout, does not pull it there (the init's factors are its own). An assign keeps
// the state's layout: the value is resharded to it (FSDP's gradient reduce-scatter lands
// there).
Rule StateOp::getShardingRule() {
  ShardingRule r = sourceRule(*this);
  if (Value init = getInit()) {
    Dims d;
    for (int64_t n : shapeOf(init))
      d.push_back({r.addFactor(n)});
    r.operands.push_back(d);
  }
  return r;
}
Rule AssignOp::getShardingRule() {
  ShardingRule r;
  Dims d;
  for (int64_t n : shapeOf(getState()))
    d.push_back({r.addFactor(n)});
  r.operands = {d, d};
  return r;
}
Rule TokenLossGradOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> x = shapeOf(getLogits());
  int b = r.addFactor(x[0]), s = r.addFactor(x[1]), v = r.addFactor(x[2], false);
  r.operands = {Dims{{b}, {s}, {v}}, Dims{{b}, {s}}, Dims{}};
  r.results = {Dims{{b}, {s}, {v}}};
  return r;
}
Rule SoftmaxOp::getShardingRule() { return softmaxRule(*this, getAxis()); }
Rule LogSoftmaxOp::getShardingRule() { return softmaxRule(*this, getAxis()); }
Rule RotaryOp::getShardingRule() { return keepTailWhole(*this, shapeOf(getInput()).size() - 1); }

// Reductions: a sharded reduced dim leaves a Partial result (sum or max); a mean would need
// the global count, so its reduced dims stay whole.
Rule ReduceSumOp::getShardingRule() { return reduceRule(*this, getAxes(), getKeepdims(), true, "sum"); }
Rule ReduceMaxOp::getShardingRule() { return reduceRule(*this, getAxes(), getKeepdims(), true, "max"); }
Rule ReduceMeanOp::getShardingRule() { return reduceRule(*this, getAxes(), getKeepdims(), false, "sum"); }

// Data movement.
Rule ReshapeOp::getShardingRule() { return reshapeRule(shapeOf(getInput()), shapeOf(getResult())); }
Rule UnsqueezeOp::getShardingRule() { return reshapeRule(shapeOf(getInput()), shapeOf(getResult())); }
Rule SqueezeOp::getShardingRule() { return reshapeRule(shapeOf(getInput()), shapeOf(getResult())); }
Rule TransposeOp::getShardingRule() { return transposeRule(*this); }
Rule GatherOp::getShardingRule() {
  // Data dims other than the gathered axis pass through; the indices' dims map to the result
  // dims that replace it.
  ShardingRule r;
  ArrayRef<int64_t> data = shapeOf(getData()), idx = shapeOf(getIndices());
  int64_t rank = data.size(), axis = normAxis(getAxis(), rank);
  Dims dd, id, res;
  for (int64_t i = 0; i < rank; ++i)
    dd.push_back({r.addFactor(data[i], i != axis)});
  for (int64_t d : idx)
    id.push_back({r.addFactor(d)});
  for (int64_t i = 0; i < axis; ++i)
    res.push_back(dd[i]);
  res.append(id.begin(), id.end());
  for (int64_t i = axis + 1; i < rank; ++i)
    res.push_back(dd[i]);
  r.operands = {dd, id};
  r.results = {res};
  return r;
}
Rule SliceOp::getShardingRule() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult());
  return passThroughExcept(*this, [&](int64_t d) {
    return in[d] != out[d] || getStarts()[d] != 0 || getSteps()[d] != 1;
  });
}
Rule ConcatOp::getShardingRule() {
  int64_t axis = normAxis(getAxis(), shapeOf(getResult()).size());
  // expert_tp's gate and up halves (sc.expert_halves, docs/moe.md): the axis of the result
  // split over some axes means each half split over them, so the halves' splits pass through.
  if ((*this)->hasAttr("sc.expert_halves"))
    return passThroughExcept(*this, [](int64_t) { return false; });
  return passThroughExcept(*this, [&](int64_t d) { return d == axis; });
}
Rule SplitOp::getShardingRule() {
  int64_t axis = normAxis(getAxis(), shapeOf(getInput()).size());
  // The backward of expert_tp's halves concat: the axis split means each half split, and the
  // local split of [gate_r; up_r] gives each half's part.
  if ((*this)->hasAttr("sc.expert_halves"))
    return passThroughExcept(*this, [](int64_t) { return false; });
  return passThroughExcept(*this, [&](int64_t d) { return d == axis; });
}
Rule TriluOp::getShardingRule() {
  // The triangle is defined on the last two dims' global indices: they stay whole.
  int64_t rank = shapeOf(getInput()).size();
  return passThroughExcept(*this, [&](int64_t d) { return d >= rank - 2; });
}
// Element-wise index lookups along an axis read arbitrary positions of the data: whole.
Rule GatherElementsOp::getShardingRule() { return std::nullopt; }
// ONNX comparisons and index ops: comparisons broadcast; a scan keeps its axis whole, as
// does ArgMax (a sharded axis would need the shards' maxima and their offsets); ScatterND
// writes where its indices say: whole.
Rule LessOp::getShardingRule() { return broadcastRule(*this); }
Rule LessEqualOp::getShardingRule() { return broadcastRule(*this); }
Rule CumSumOp::getShardingRule() {
  int64_t axis = normAxis(static_cast<int64_t>(getAxis()), shapeOf(getInput()).size());
  return passThroughExcept(*this, [&](int64_t d) { return d == axis; });
}
Rule ArgMaxOp::getShardingRule() {
  int64_t axis = normAxis(static_cast<int64_t>(getAxis()), shapeOf(getInput()).size());
  return reduceRule(*this, {axis}, getKeepdims(), /*shardReduced=*/false, "max");
}
Rule ScatterNDOp::getShardingRule() { return std::nullopt; }
Rule ArgMinOp::getShardingRule() {
  int64_t axis = normAxis(static_cast<int64_t>(getAxis()), shapeOf(getInput()).size());
  return reduceRule(*this, {axis}, getKeepdims(), /*shardReduced=*/false, "min");
}
Rule ScatterElementsOp::getShardingRule() { return std::nullopt; }
// TopK: the lines along the axis are independent; the axis stays whole.
Rule TopKOp::getShardingRule() {
  int64_t axis = normAxis(getAxis(), shapeOf(getInput()).size());
  return passThroughExcept(*this, [&](int64_t d) { return d == axis; });
}
// GatherND reads arbitrary slices of its data: whole (the raised MoE ops replace it).
Rule GatherNdOp::getShardingRule() { return std::nullopt; }
// The router: each token's choice is its own (the tokens pass through); the experts and the
// k choices stay whole.
Rule MoeRouterOp::getShardingRule() {
  ShardingRule r;
  ArrayRef<int64_t> logits = shapeOf(getLogits()), ids = shapeOf(getIndices());
  const int tokens = r.addFactor(logits[0]);
  r.operands.push_back({{tokens}, {r.addFactor(logits[1], false)}});
  if (getBias())
    r.operands.push_back({{r.addFactor(logits[1], false)}});
  for (int i = 0; i < 2; ++i)
    r.results.push_back({{tokens}, {r.addFactor(ids[1], false)}});
  return r;
}
// The grouped experts: tokens are independent (x, indices, weights, the result and the
// workspace's rows split together). The expert dim of the weights may be split only over the
// `ep` sub-axis (sc-apply-plan seeds it, sc-partition then expands the op into dispatch, local
// experts and combine). The intermediate size I is split only under expert_tp, where gate_up
// is the concat of its gate and up halves (sc.expert_halves: a split of its 2I dim is a split
// of each half on I): then each rank computes its part of every expert's MLP and the result
// is Partial (I is a reduction factor). The other dims of the weights stay whole.
Rule MoeExpertsOp::getShardingRule() {
  ArrayRef<int64_t> ids = shapeOf(getIndices()), gu = shapeOf(getGateUp()), dn = shapeOf(getDown());
  auto halves = getGateUp().getDefiningOp<ConcatOp>();
  bool expertTp = halves && halves->hasAttr("sc.expert_halves");
  ShardingRule r;
  int t = r.addFactor(ids[0]), k = r.addFactor(ids[1], /*shardable=*/false);
  int h = r.addFactor(dn[1], false), e = r.addFactor(gu[0]);
  int i = r.addFactor(dn[2], /*shardable=*/expertTp, /*reduction=*/expertTp);
  int i2 = expertTp ? i : r.addFactor(gu[1], false);
  r.operands = {{{t}, {h}}, {{t}, {k}}, {{t}, {k}}, {{e}, {i2}, {h}}, {{e}, {h}, {i}}};
  r.results = {{{t}, {h}}, {{t, k}, {i}}};
  return r;
}
// Expert parallelism's steps exist on the partitioned program only.
Rule MoePermuteOp::getShardingRule() { return std::nullopt; }
Rule MoeDispatchOp::getShardingRule() { return std::nullopt; }
Rule MoeGroupedGemmOp::getShardingRule() { return std::nullopt; }
Rule MoeCombineOp::getShardingRule() { return std::nullopt; }
Rule MoeUnpermuteOp::getShardingRule() { return std::nullopt; }

// Shape computations produce small host-side vectors, always whole.
Rule ShapeOp::getShardingRule() { return std::nullopt; }
Rule ConstantOfShapeOp::getShardingRule() { return std::nullopt; }
Rule RangeOp::getShardingRule() { return std::nullopt; }

// sc-partition creates these on the per-rank program: nothing is left to shard.
Rule DynamicSliceOp::getShardingRule() { return std::nullopt; }
Rule ProcessIndexOp::getShardingRule() { return std::nullopt; }

// Fused kernels are formed on the partitioned, per-rank program: nothing is left to shard.
Rule FusedOp::getShardingRule() { return std::nullopt; }

} // namespace sc
} // namespace shardc
