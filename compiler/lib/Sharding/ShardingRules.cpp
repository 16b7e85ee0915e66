// Sharding rules of the sc ops, one small builder per op family: elementwise broadcasting,
// contractions, normalisations, data movement with compound factors (reshape), attention.
#include "shardc/Sharding/ShardingRules.h"

#include "shardc/Dialect/ScDialect.h"

#include "llvm/ADT/TypeSwitch.h"

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

ShardingRule attentionRule(sc::AttentionOp op) {
  ShardingRule r;
  ArrayRef<int64_t> q = shapeOf(op.getQuery()), k = shapeOf(op.getKey()), v = shapeOf(op.getValue());
  int b = r.addFactor(q[0]);
  // Query heads = kv heads x group: sharding the kv-head factor keeps each query head with
  // the kv head it reads (GQA).
  int hkv = r.addFactor(k[1]);
  int64_t group = q[1] / k[1];
  SmallVector<int, 2> qHeads{hkv};
  if (group > 1)
    qHeads.push_back(r.addFactor(group, false));
  // Queries may be split on the sequence (context parallel); keys and values stay whole.
  int s = r.addFactor(q[2], true), d = r.addFactor(q[3], false), t = r.addFactor(k[2], false),
      dv = r.addFactor(v[3], false);
  r.operands.push_back(Dims{{b}, qHeads, {s}, {d}});
  r.operands.push_back(Dims{{b}, {hkv}, {t}, {d}});
  r.operands.push_back(Dims{{b}, {hkv}, {t}, {dv}});
  if (Value mask = op.getMask()) {
    ArrayRef<int64_t> m = shapeOf(mask);
    Dims full{{b}, qHeads, {s}, {t}};
    SmallVector<int64_t> scores{q[0], q[1], q[2], k[2]};
    Dims md(m.size());
    int64_t off = 4 - m.size();
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i] == scores[i + off] && m[i] != 1)
        md[i] = full[i + off];
    r.operands.push_back(md);
  }
  r.results.push_back(Dims{{b}, qHeads, {s}, {dv}});
  return r;
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

} // namespace

std::optional<ShardingRule> getShardingRule(Operation *op) {
  using PF = ShardingRule::PartialFlow;
  auto withFlow = [](ShardingRule r, PF flow) {
    r.partialFlow = flow;
    return std::optional<ShardingRule>(r);
  };
  return llvm::TypeSwitch<Operation *, std::optional<ShardingRule>>(op)
      .Case<sc::AddOp, sc::SubOp>([&](Operation *o) { return withFlow(broadcastRule(o), PF::AllOperands); })
      .Case<sc::MulOp>([&](Operation *o) { return withFlow(broadcastRule(o), PF::OneOperand); })
      .Case<sc::DivOp>([&](Operation *o) { return withFlow(broadcastRule(o), PF::FirstOperand); })
      .Case<sc::NegOp, sc::CastOp>([&](Operation *o) { return withFlow(broadcastRule(o), PF::Unary); })
      .Case<sc::PowOp, sc::EqualOp, sc::WhereOp, sc::SqrtOp, sc::ReciprocalOp, sc::ExpOp, sc::LogOp,
            sc::TanhOp, sc::SigmoidOp, sc::ErfOp, sc::CosOp, sc::SinOp, sc::IsNaNOp, sc::SiluOp, sc::GeluOp>(
          [&](Operation *o) { return std::optional<ShardingRule>(broadcastRule(o)); })
      .Case<sc::ExpandOp>([&](Operation *o) { return withFlow(broadcastRule(o), PF::Unary); })
      .Case<sc::ReshapeOp, sc::UnsqueezeOp, sc::SqueezeOp>(
          [&](Operation *o) { return reshapeRule(shapeOf(o->getOperand(0)), shapeOf(o->getResult(0))); })
      .Case<sc::TransposeOp>([&](sc::TransposeOp t) { return std::optional<ShardingRule>(transposeRule(t)); })
      .Case<sc::LinearOp>([&](sc::LinearOp l) { return std::optional<ShardingRule>(linearRule(l)); })
      .Case<sc::MatMulOp>([&](sc::MatMulOp m) { return matmulRule(m); })
      .Case<sc::AttentionOp>([&](sc::AttentionOp a) { return std::optional<ShardingRule>(attentionRule(a)); })
      .Case<sc::RmsNormOp>([&](sc::RmsNormOp n) {
        int64_t rank = shapeOf(n.getInput()).size();
        return std::optional<ShardingRule>(keepTailWhole(n, (int64_t)n.getAxis() < 0 ? (int64_t)n.getAxis() + rank : (int64_t)n.getAxis()));
      })
      .Case<sc::LayerNormOp>([&](sc::LayerNormOp n) {
        int64_t rank = shapeOf(n.getInput()).size();
        return std::optional<ShardingRule>(keepTailWhole(n, (int64_t)n.getAxis() < 0 ? (int64_t)n.getAxis() + rank : (int64_t)n.getAxis()));
      })
      .Case<sc::SoftmaxOp, sc::LogSoftmaxOp>([&](Operation *o) {
        int64_t rank = shapeOf(o->getOperand(0)).size();
        int64_t axis = (int64_t)cast<IntegerAttr>(o->getAttr("axis")).getInt();
        axis = axis < 0 ? axis + rank : axis;
        ShardingRule r = keepTailWhole(o, rank);
        r.factors[r.operands[0][axis][0]].shardable = false;
        return std::optional<ShardingRule>(r);
      })
      .Case<sc::RotaryOp>([&](sc::RotaryOp o) {
        return std::optional<ShardingRule>(keepTailWhole(o, shapeOf(o.getInput()).size() - 1));
      })
      .Case<sc::EmbeddingOp>([&](sc::EmbeddingOp e) {
        ShardingRule r;
        ArrayRef<int64_t> t = shapeOf(e.getTable()), ids = shapeOf(e.getIds());
        // A vocabulary-split table (embedding_rowwise, or a tied colwise lm_head) gives each
        // rank the rows it holds and zeros elsewhere: a Partial(sum) result.
        int v = r.addFactor(t[0], true, true), h = r.addFactor(t[1]);
        Dims idd, res;
        for (int64_t d : ids) {
          int f = r.addFactor(d);
          idd.push_back({f});
          res.push_back({f});
        }
        res.push_back({h});
        r.operands = {Dims{{v}, {h}}, idd};
        r.results = {res};
        return std::optional<ShardingRule>(r);
      })
      .Case<sc::ReduceSumOp>([&](sc::ReduceSumOp o) {
        return std::optional<ShardingRule>(reduceRule(o, o.getAxes(), o.getKeepdims(), true, "sum"));
      })
      .Case<sc::ReduceMaxOp>([&](sc::ReduceMaxOp o) {
        return std::optional<ShardingRule>(reduceRule(o, o.getAxes(), o.getKeepdims(), true, "max"));
      })
      .Case<sc::ReduceMeanOp>([&](sc::ReduceMeanOp o) {
        return std::optional<ShardingRule>(reduceRule(o, o.getAxes(), o.getKeepdims(), false, "sum"));
      })
      .Case<sc::GatherOp>([&](sc::GatherOp g) {
        // Data dims other than the gathered axis pass through; the indices' dims map to the
        // result dims that replace it.
        ShardingRule r;
        ArrayRef<int64_t> data = shapeOf(g.getData()), idx = shapeOf(g.getIndices());
        int64_t rank = data.size(), axis = (int64_t)g.getAxis() < 0 ? (int64_t)g.getAxis() + rank : (int64_t)g.getAxis();
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
        return std::optional<ShardingRule>(r);
      })
      .Case<sc::SliceOp>([&](sc::SliceOp s) {
        ArrayRef<int64_t> in = shapeOf(s.getInput()), out = shapeOf(s.getResult());
        return std::optional<ShardingRule>(passThroughExcept(s, [&](int64_t d) {
          return in[d] != out[d] || s.getStarts()[d] != 0 || s.getSteps()[d] != 1;
        }));
      })
      .Case<sc::ConcatOp>([&](sc::ConcatOp c) {
        int64_t rank = shapeOf(c.getResult()).size();
        int64_t axis = (int64_t)c.getAxis() < 0 ? (int64_t)c.getAxis() + rank : (int64_t)c.getAxis();
        return std::optional<ShardingRule>(passThroughExcept(c, [&](int64_t d) { return d == axis; }));
      })
      .Case<sc::SplitOp>([&](sc::SplitOp s) {
        int64_t rank = shapeOf(s.getInput()).size();
        int64_t axis = (int64_t)s.getAxis() < 0 ? (int64_t)s.getAxis() + rank : (int64_t)s.getAxis();
        return std::optional<ShardingRule>(passThroughExcept(s, [&](int64_t d) { return d == axis; }));
      })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace shardc
