// tp_plan: auto, derived from the structure of the raised program (docs/plan.md): each
// sc.attention's q/k/v producers colwise and its output projection rowwise, each MLP's first
// linear(s) colwise and its last rowwise, norms replicated or sequence-parallel; the result
// written as globs over module paths with `*` for the layer index where all layers agree.
#include "shardc/Plan/Plan.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <set>

using namespace mlir;
using llvm::StringRef;

namespace shardc {
namespace {

// A linear reached by walking back from an anchor, and the ops between its result and the
// anchor (nearest the linear first).
struct Reached {
  sc::LinearOp lin;
  SmallVector<Operation *, 8> chain;
};

bool isConstantLike(Value v) {
  Operation *d = v.getDefiningOp();
  return d && isa<sc::ConstantOp, sc::ParamOp>(d);
}

int64_t lastDim(Value v) { return cast<RankedTensorType>(v.getType()).getShape().back(); }
ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

// Walks back from `v` through the ops `through` accepts, collecting the sc.linear ops where
// the walk stops. Returns false when the walk meets an op it may not cross (or grows past a
// bound): the anchor then does not come from linears alone.
template <typename Through>
bool walkBack(Value v, Through through, SmallVectorImpl<Reached> &out, bool argsAreLeaves = false) {
  SmallVector<Operation *, 8> chain;
  llvm::SmallPtrSet<Operation *, 32> seen;
  int budget = 256;
  std::function<bool(Value)> rec = [&](Value x) -> bool {
    if (isConstantLike(x) || (argsAreLeaves && isa<BlockArgument>(x)))
      return true;
    Operation *d = x.getDefiningOp();
    if (!d || --budget < 0)
      return false;
    if (auto lin = dyn_cast<sc::LinearOp>(d)) {
      Reached r{lin, {}};
      r.chain.assign(chain.rbegin(), chain.rend());
      if (!llvm::any_of(out, [&](const Reached &o) { return o.lin == lin; }))
        out.push_back(r);
      return true;
    }
    SmallVector<Value, 4> next;
    if (!through(d, next))
      return false;
    if (!seen.insert(d).second)
      return true;
    chain.push_back(d);
    for (Value n : next)
      if (!rec(n))
        return false;
    chain.pop_back();
    return true;
  };
  return rec(v);
}

bool isNorm(Operation *op) { return isa<sc::RmsNormOp, sc::LayerNormOp>(op); }

// What may lie between a q/k/v projection and the attention: head split and merge, rotary,
// per-head or whole-projection norms, scaling, casts, the exporter's repeat_kv, partial
// rotary's slices and concatenation, and a fused projection's split.
bool throughToAttention(Operation *op, SmallVectorImpl<Value> &next) {
  if (isa<sc::ReshapeOp, sc::TransposeOp, sc::UnsqueezeOp, sc::SqueezeOp, sc::ExpandOp, sc::CopyOp, sc::CastOp,
          sc::SplitOp, sc::SliceOp, sc::GatherOp, sc::RotaryOp>(op) ||
      isNorm(op)) {
    next.push_back(op->getOperand(0));
    return true;
  }
  if (isa<sc::ConcatOp>(op) || isa<sc::ElementwiseOpInterface>(op)) {
    for (Value v : op->getOperands())
      if (!isConstantLike(v))
        next.push_back(v);
    return true;
  }
  return false;
}

// What may lie between an MLP's first linear(s) and its last: activations, the gating
// product, biases, casts, reshapes, a fused gate_up projection's split.
bool throughMlp(Operation *op, SmallVectorImpl<Value> &next) {
  if (isa<sc::ReshapeOp, sc::CastOp, sc::CopyOp, sc::SplitOp, sc::SliceOp, sc::GeluOp>(op)) {
    next.push_back(op->getOperand(0));
    return true;
  }
  if (isa<sc::ElementwiseOpInterface>(op)) {
    for (Value v : op->getOperands())
      if (!isConstantLike(v))
        next.push_back(v);
    return true;
  }
  return false;
}

bool isActivation(Operation *op) {
  if (isa<sc::SiluOp, sc::GeluOp, sc::ReluOp, sc::TanhOp, sc::SigmoidOp, sc::ErfOp>(op))
    return true;
  return isa<sc::MulOp>(op) && !isConstantLike(op->getOperand(0)) && !isConstantLike(op->getOperand(1));
}

bool allDigits(StringRef s) { return !s.empty() && llvm::all_of(s, [](char c) { return c >= '0' && c <= '9'; }); }

// The machine a head's decision assumes (one node of current accelerators): a collective's
// fixed latency, its bus bandwidth, and dense GEMM throughput.
constexpr double kCollectiveLatencyUs = 10, kBusBytesPerUs = 100e3, kGemmFlopsPerUs = 100e6;

std::string typeString(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(t.getShape()))
    s += (i ? ", " : "") + std::to_string(d);
  llvm::raw_string_ostream os(s);
  os << "] " << t.getElementType();
  return os.str();
}

struct Deriver {
  ModuleOp module;
  bool sp;
  int64_t tp;
  TpDerivation &out;
  llvm::DenseMap<Operation *, std::pair<std::optional<TpStyle>, std::string>> linears, norms;

  void assign(sc::LinearOp lin, std::optional<TpStyle> style, const std::string &reason) {
    linears[lin] = {style, reason};
  }
  bool assigned(sc::LinearOp lin) const { return linears.count(lin); }

  // The layout of a fused projection's output: how it is cut into q, k and v.
  // Returns the style and a reason, or nullopt with why it cannot be sharded.
  std::pair<std::optional<TpStyle>, std::string> fusedLayout(sc::LinearOp lin, int64_t heads, int64_t kvHeads,
                                                             int64_t headDim, int64_t parts) {
    int64_t n = lastDim(lin.getResult());
    Value x = lin.getResult();
    // Reshapes (flattening the tokens, or [.., n] -> [.., heads, parts·head_dim]) and
    // transposes that keep the features last, up to the ops that cut q, k and v.
    bool perHead = false;
    while (x.hasOneUse() && isa<sc::ReshapeOp, sc::TransposeOp>(*x.getUsers().begin())) {
      Operation *u = *x.getUsers().begin();
      if (auto t = dyn_cast<sc::TransposeOp>(u); t && t.getPerm().back() != (int64_t)t.getPerm().size() - 1)
        break;
      ArrayRef<int64_t> r = shapeOf(u->getResult(0));
      if (isa<sc::ReshapeOp>(u) && lastDim(x) == n && r.size() >= 2 && r.back() == parts * headDim &&
          r[r.size() - 2] == heads && heads * parts * headDim == n)
        perHead = true;
      x = u->getResult(0);
    }
    ArrayRef<int64_t> shape = shapeOf(x);
    int64_t rank = shape.size();
    // The axis along which the users cut x (a split, or slices/gathers on one axis).
    std::optional<int64_t> axis;
    bool evenSplit = false;
    for (Operation *user : x.getUsers()) {
      int64_t a;
      if (auto s = dyn_cast<sc::SplitOp>(user)) {
        a = s.getAxis();
        evenSplit = x.hasOneUse() && llvm::all_equal(llvm::map_range(
                                         s.getResults(), [](Value r) { return lastDim(r); }));
      } else if (auto s = dyn_cast<sc::SliceOp>(user)) {
        auto in = shapeOf(s.getInput()), res = shapeOf(s.getResult());
        a = -1;
        for (int64_t d = 0; d < rank; ++d)
          if (in[d] != res[d])
            a = d;
        if (a < 0)
          continue;
      } else if (auto g = dyn_cast<sc::GatherOp>(user)) {
        a = g.getAxis();
      } else {
        return {std::nullopt, "its output is used whole, not cut into q, k and v"};
      }
      a = a < 0 ? a + rank : a;
      if (axis && *axis != a)
        return {std::nullopt, "its output is cut along two different axes"};
      axis = a;
    }
    if (!axis)
      return {std::nullopt, "its output is not cut into q, k and v"};
    // The q part splits over tp by heads; a kv part of fewer heads than tp (tp a multiple of
    // them) is repeated in its weight once unpacked, so each rank holds the kv head its q heads
    // read (sc-apply-plan's kv-head replication).
    auto kvNote = [&]() -> std::string {
      if (kvHeads % tp == 0)
        return "";
      return llvm::formatv("; its {0} kv head(s) < tp {1}: each repeated {2} times in its part of the weight",
                           kvHeads, tp, tp / kvHeads);
    };
    bool divides = heads % tp == 0 && (kvHeads % tp == 0 || tp % kvHeads == 0);
    if (*axis == rank - 1 && shape.back() == n && !perHead) {
      if (!divides)
        return {std::nullopt, llvm::formatv("its [q; k; v] parts hold {0} and {1} heads, which do not divide over "
                                            "tp {2} (nor the kv heads tp)", heads, kvHeads, tp)};
      return {TpStyle::PackedColwise,
              llvm::formatv("cut into contiguous parts ([q; k; v], {0} {1}): each part split over tp{2}",
                            heads * headDim,
                            evenSplit ? "features each" : "+ 2 x " + std::to_string(kvHeads * headDim) + " features",
                            kvNote())};
    }
    if (*axis == rank - 1 && perHead && shape.back() == parts * headDim)
      return {TpStyle::Colwise, llvm::formatv("q, k and v interleaved per head ([{0} heads, {1}·head_dim]): a "
                                              "plain column split keeps whole heads with their q, k and v",
                                              heads, parts)};
    if (*axis == rank - 2 && shape.back() == headDim && shape[rank - 2] == heads + 2 * kvHeads &&
        shape[rank - 2] * headDim == n) {
      if (!divides)
        return {std::nullopt, llvm::formatv("its heads are stacked as [{0} q heads; {1} k; {1} v], which do not "
                                            "divide over tp {2} (nor the kv heads tp)", heads, kvHeads, tp)};
      return {TpStyle::PackedColwise,
              llvm::formatv("its heads are stacked as [{0} q heads; {1} k; {1} v] (multi-query): cut along the heads "
                            "into its parts, each split over tp{2}", heads, kvHeads, kvNote())};
    }
    return {std::nullopt, "its q, k and v parts have a layout shardc does not recognise"};
  }

  void attention(sc::AttentionOp att) {
    std::string at = modulePathOf(att->getLoc());
    if (at.empty())
      at = "(no module path)";
    int64_t heads = shapeOf(att.getQuery())[1], kvHeads = shapeOf(att.getKey())[1];
    int64_t headDim = shapeOf(att.getQuery())[3];
    const char *names[3] = {"q", "k", "v"};
    Value operands[3] = {att.getQuery(), att.getKey(), att.getValue()};
    SmallVector<Reached> found[3];
    for (int i = 0; i < 3; ++i)
      if (!walkBack(operands[i], throughToAttention, found[i]) || found[i].size() != 1) {
        out.notes.push_back(llvm::formatv("attention at {0}: its {1} does not come from one linear through head "
                                          "split, rotary and norms; its projections are left to the other patterns",
                                          at, names[i]));
        return;
      }
    sc::LinearOp lin[3] = {found[0][0].lin, found[1][0].lin, found[2][0].lin};
    // Norms met on the way (q/k norms), per head or over the whole projection.
    for (int i = 0; i < 2; ++i)
      for (Operation *op : found[i][0].chain)
        if (isNorm(op)) {
          bool perHead = lastDim(op->getOperand(0)) == headDim;
          norms[op] = {std::nullopt,
                       perHead ? llvm::formatv("per-head {0} norm of attention at {1}: each rank normalises its own "
                                               "heads; weight replicated", names[i], at).str()
                               : llvm::formatv("{0} norm over the whole projection of attention at {1}: replicated "
                                               "(its input is all-gathered over tp before it, the result sliced "
                                               "again); an all-reduce of its statistics would move less, but "
                                               "shardc's norms keep their normalised dim whole", names[i], at).str()};
        }
    bool fused = lin[0] == lin[1] || lin[1] == lin[2] || lin[0] == lin[2];
    bool sharded = true;
    if (!fused) {
      for (int i = 0; i < 3; ++i) {
        std::string why = llvm::formatv("{0} projection of attention at {1}", names[i], at);
        if (i > 0 && kvHeads < tp && tp % kvHeads == 0)
          why += llvm::formatv(" ({0} kv head(s) < tp {1}: sc-apply-plan keeps its weight whole and repeats the heads)",
                               kvHeads, tp);
        assign(lin[i], TpStyle::Colwise, why);
      }
    } else if (lin[0] == lin[1] && lin[1] == lin[2]) {
      auto [style, why] = fusedLayout(lin[0], heads, kvHeads, headDim, 3);
      std::string what = llvm::formatv("fused q/k/v projection of attention at {0}: ", at);
      assign(lin[0], style, what + (style ? why : "replicated because " + why));
      sharded = style.has_value();
    } else {
      for (int i = 0; i < 3; ++i)
        assign(lin[i], std::nullopt,
               llvm::formatv("projection of attention at {0} fusing two of q, k and v: replicated (only the "
                             "[q; k; v] and per-head layouts are recognised)", at));
      sharded = false;
    }
    // Forward from the attention through the head merge to the output projection.
    Value y = att.getResult();
    while (y.hasOneUse() && isa<sc::TransposeOp, sc::ReshapeOp, sc::CastOp, sc::CopyOp>(*y.getUsers().begin()))
      y = y.getUsers().begin()->getResult(0);
    auto o = y.hasOneUse() ? dyn_cast<sc::LinearOp>(*y.getUsers().begin()) : sc::LinearOp();
    if (!o || o.getInput() != y || assigned(o)) {
      out.notes.push_back(llvm::formatv("attention at {0}: its merged heads do not feed one linear; no output "
                                        "projection", at));
      return;
    }
    if (sharded)
      assign(o, TpStyle::Rowwise, llvm::formatv("output projection of attention at {0}: consumes the merged heads", at));
    else
      assign(o, std::nullopt,
             llvm::formatv("output projection of attention at {0}: replicated, as its q/k/v projection is", at));
    ++out.attentionBlocks;
  }

  // Attention the raising did not recognise (no sc.attention): `o` reads merged heads
  // ([.., S, H, D] -> [.., S, H·D]) of `matmul(probabilities, v)`, the probabilities a softmax
  // of `matmul(q, kᵀ)` plus any bias or mask (a T5 encoder's is unscaled and carries a bias).
  void unraisedAttention(sc::LinearOp o) {
    Value x = o.getInput();
    int64_t heads = 0, headDim = 0;
    while (Operation *d = x.getDefiningOp()) {
      if (auto r = dyn_cast<sc::ReshapeOp>(d)) {
        ArrayRef<int64_t> in = shapeOf(r.getInput()), res = shapeOf(r.getResult());
        if (!heads && in.size() >= 4 && res.size() + 1 == in.size() && res.back() == in[in.size() - 2] * in.back()) {
          heads = in[in.size() - 2];
          headDim = in.back();
        }
      } else if (!isa<sc::TransposeOp, sc::CastOp, sc::CopyOp>(d)) {
        break;
      }
      x = d->getOperand(0);
    }
    auto pv = x.getDefiningOp<sc::MatMulOp>();
    if (!pv || !heads)
      return;
    bool softmax = false;
    auto through = [&](Operation *op, SmallVectorImpl<Value> &next) {
      if (isa<sc::MatMulOp>(op)) {
        next.append({op->getOperand(0), op->getOperand(1)});
        return true;
      }
      if (isa<sc::SoftmaxOp>(op)) {
        softmax = true;
        next.push_back(op->getOperand(0));
        return true;
      }
      return throughToAttention(op, next);
    };
    SmallVector<Reached> qk, v;
    if (!walkBack(pv.getLhs(), through, qk, /*argsAreLeaves=*/true) || !softmax ||
        !walkBack(pv.getRhs(), throughToAttention, v) || v.size() != 1 || qk.empty() || qk.size() > 2)
      return;
    SmallVector<sc::LinearOp, 3> lins;
    for (Reached &r : llvm::concat<Reached>(qk, v))
      if (!llvm::is_contained(lins, r.lin))
        lins.push_back(r.lin);
    if (llvm::any_of(lins, [&](sc::LinearOp l) { return l == o || assigned(l); }))
      return;
    std::string at = modulePathOf(pv->getLoc());
    std::string what = llvm::formatv("of the attention at {0} (not raised: softmax(q·kᵀ)·v matched as dataflow)",
                                     at.empty() ? "(no module path)" : at);
    bool sharded = true;
    if (lins.size() == 3) {
      for (Reached &r : qk)
        assign(r.lin, TpStyle::Colwise, "q/k projection " + what);
      assign(v.front().lin, TpStyle::Colwise, "v projection " + what);
    } else if (lins.size() == 1) {
      auto [style, why] = fusedLayout(lins.front(), heads, heads, headDim, 3);
      assign(lins.front(), style, "fused q/k/v projection " + what + ": " + (style ? why : "replicated because " + why));
      sharded = style.has_value();
    } else {
      for (sc::LinearOp l : lins)
        assign(l, std::nullopt, "projection " + what + " fusing two of q, k and v: replicated");
      sharded = false;
    }
    assign(o, sharded ? std::optional<TpStyle>(TpStyle::Rowwise) : std::nullopt,
           "output projection " + what + (sharded ? ": consumes the merged heads" : ": replicated, as its q/k/v are"));
    ++out.attentionBlocks;
  }

  // An MLP outside the repeated layers (BERT's pooler and classifier on the pooled [batch,
  // hidden] vector) is sharded only where that pays: tp saves (1 - 1/tp) of its GEMM FLOPs
  // (StepOpInterface::getCost) and costs one all-reduce of its output. Returns whether to
  // shard, and the figures; nothing for an MLP inside the layers (always sharded, as the
  // hand-written plans do).
  std::optional<std::pair<bool, std::string>> headByCost(ArrayRef<Reached> firsts, sc::LinearOp down) {
    std::string path = modulePathOf(down->getLoc());
    llvm::SmallVector<StringRef> comps;
    StringRef(path).split(comps, '.');
    if (tp <= 1 || llvm::any_of(comps, allDigits))
      return std::nullopt;
    uint64_t flops = down.getCost().flops;
    for (const Reached &r : firsts)
      flops += sc::LinearOp(r.lin).getCost().flops;
    auto out = cast<RankedTensorType>(down.getType());
    double bytes = double(out.getNumElements()) * out.getElementType().getIntOrFloatBitWidth() / 8;
    double saved = double(flops) * (1.0 - 1.0 / double(tp)) / kGemmFlopsPerUs;
    double paid = kCollectiveLatencyUs + bytes * 2.0 * double(tp - 1) / double(tp) / kBusBytesPerUs;
    bool shard = saved > paid;
    return std::make_pair(
        shard, llvm::formatv("head outside the layers, {0} by cost: tp {1} saves ~{2:f3} us of its {3} GEMM FLOPs "
                             "(at 100 TFLOP/s) {4} the ~{5:f3} us all-reduce of its {6} output (10 us + "
                             "2(tp-1)/tp x {7} bytes at 100 GB/s)",
                             shard ? "sharded" : "replicated", tp, saved, flops, shard ? "over" : "under", paid,
                             typeString(down.getResult()), (uint64_t)bytes)
                   .str());
  }

  // `down` is an MLP's last linear when its input comes, through activations and the gating
  // product only, from linears that read one value (gate and up, or one fused gate_up).
  void mlp(sc::LinearOp down) {
    SmallVector<Reached> firsts;
    if (!walkBack(down.getInput(), throughMlp, firsts) || firsts.empty())
      return;
    bool activated = false;
    Value in = firsts.front().lin.getInput();
    for (Reached &r : firsts) {
      if (r.lin == down || assigned(r.lin) || r.lin.getInput() != in)
        return;
      activated |= llvm::any_of(r.chain, isActivation);
    }
    if (!activated)
      return;
    std::string at = modulePathOf(down->getLoc());
    auto head = headByCost(firsts, down);
    if (head && !head->first) {
      for (Reached &r : firsts)
        assign(r.lin, std::nullopt, llvm::formatv("first linear of the MLP ending at {0}: {1}", at, head->second));
      assign(down, std::nullopt, "second MLP linear: " + head->second);
      ++out.mlpBlocks;
      return;
    }
    std::optional<TpStyle> downStyle = TpStyle::Rowwise;
    bool gated = firsts.size() > 1;
    for (Reached &r : firsts) {
      bool split = llvm::any_of(r.chain, [](Operation *op) { return isa<sc::SplitOp, sc::SliceOp>(op); });
      if (!split) {
        bool gate = gated && llvm::any_of(r.chain, [](Operation *op) { return !isa<sc::MulOp>(op) && isActivation(op); });
        std::string role = !gated ? "feeds the activation" : gate ? "gate: goes through the activation"
                                                                  : "up: multiplies the activated gate";
        assign(r.lin, TpStyle::Colwise, llvm::formatv("first MLP linear ({0}) of the MLP ending at {1}", role, at));
        continue;
      }
      gated = true;
      auto s = r.chain.size() > 0 ? dyn_cast<sc::SplitOp>(r.chain.front()) : sc::SplitOp();
      if (!s) // a reshape between: look one further
        for (Operation *op : r.chain)
          if ((s = dyn_cast<sc::SplitOp>(op)))
            break;
      bool even = s && s.getNumResults() == 2 && lastDim(s.getInput()) == lastDim(r.lin.getResult()) &&
                  (s.getAxis() == -1 || s.getAxis() == (int64_t)shapeOf(s.getInput()).size() - 1) &&
                  lastDim(s.getResult(0)) == lastDim(s.getResult(1));
      if (even) {
        assign(r.lin, TpStyle::PackedColwise,
               llvm::formatv("fused gate/up projection of the MLP ending at {0}, split into 2 equal parts: each "
                             "part split over tp", at));
      } else {
        assign(r.lin, std::nullopt,
               llvm::formatv("fused first MLP linear of the MLP ending at {0}: replicated, its output is not cut "
                             "into two equal halves along the features", at));
        downStyle = std::nullopt;
      }
    }
    assign(down, downStyle,
           downStyle ? llvm::formatv("second MLP linear: consumes the {0}", gated ? "gated product" : "activation").str()
                     : std::string("second MLP linear: replicated, as its first linear is"));
    if (head && downStyle)
      for (sc::LinearOp lin : llvm::concat<sc::LinearOp>(llvm::map_range(firsts, [](Reached &r) { return r.lin; }),
                                                         llvm::ArrayRef<sc::LinearOp>(down)))
        linears[lin].second += " (" + head->second + ")";
    ++out.mlpBlocks;
  }

  // Whether `v` comes (through reshapes and elementwise ops) from a colwise-sharded linear.
  bool fromShardedRegion(Value v) {
    SmallVector<Reached> src;
    if (!walkBack(v, throughMlp, src))
      return false;
    return llvm::any_of(src, [&](Reached &r) {
      auto it = linears.find(r.lin);
      return it != linears.end() && it->second.first &&
             (*it->second.first == TpStyle::Colwise || *it->second.first == TpStyle::PackedColwise);
    });
  }

  static unsigned normsReading(Value v) {
    return unsigned(llvm::count_if(v.getUsers(), [](Operation *u) { return isNorm(u); }));
  }

  void run() {
    SmallVector<sc::LinearOp> all;
    SmallVector<Operation *> allNorms;
    module.walk([&](Operation *op) {
      if (auto lin = dyn_cast<sc::LinearOp>(op))
        all.push_back(lin);
      else if (isNorm(op))
        allNorms.push_back(op);
      else if (auto att = dyn_cast<sc::AttentionOp>(op))
        attention(att);
    });
    for (sc::LinearOp lin : all)
      if (!assigned(lin))
        unraisedAttention(lin);
    for (sc::LinearOp lin : all)
      if (!assigned(lin))
        mlp(lin);
    for (Operation *n : allNorms) {
      if (norms.count(n))
        continue;
      if (fromShardedRegion(n->getOperand(0)))
        norms[n] = {std::nullopt, "norm inside a tensor-parallel region: replicated"};
      else if (sp && normsReading(n->getOperand(0)) > 1)
        norms[n] = {TpStyle::SequenceParallel, "norm on the residual stream beside another norm of it (a "
                                               "parallel-residual block): the residual is gathered once for both"};
      else if (sp)
        norms[n] = {TpStyle::SequenceParallel, "norm on the residual stream: sequence-parallel"};
      else
        norms[n] = {std::nullopt, "norm on the residual stream: replicated (sequence_parallel: false)"};
    }
    auto isOutput = [](sc::LinearOp lin) {
      return llvm::any_of(lin->getUsers(), [](Operation *u) { return isa<func::ReturnOp>(u); });
    };
    for (sc::LinearOp lin : all) {
      std::string path = modulePathOf(lin->getLoc());
      auto it = linears.find(lin);
      if (it != linears.end())
        out.linears.push_back({path, it->second.first, it->second.second});
      else
        out.linears.push_back({path, std::nullopt,
                               isOutput(lin) ? "writes a model output (lm_head): replicated, as Hugging Face's plan"
                                             : "in no attention or MLP pattern: replicated"});
    }
    for (Operation *n : allNorms)
      out.norms.push_back({modulePathOf(n->getLoc()), norms[n].first, norms[n].second});
  }
};

std::string join(ArrayRef<StringRef> comps, size_t from, std::optional<size_t> star = std::nullopt) {
  std::string s;
  for (size_t i = from; i < comps.size(); ++i)
    s += (i > from ? "." : "") + (star && i == *star ? std::string("*") : comps[i].str());
  return s;
}

} // namespace

std::vector<std::pair<std::string, TpStyle>> globsFor(const std::vector<std::pair<std::string, TpStyle>> &styled,
                                                      llvm::ArrayRef<std::string> modulePaths) {
  std::map<std::string, TpStyle> want(styled.begin(), styled.end());
  // A glob is good when the paths it matches are exactly paths wanting its style.
  auto good = [&](const std::string &glob, TpStyle style) {
    bool any = false;
    for (const std::string &p : modulePaths) {
      if (!globMatches(glob, p))
        continue;
      auto it = want.find(p);
      if (it == want.end() || it->second != style)
        return false;
      any = true;
    }
    return any;
  };
  std::vector<std::pair<std::string, TpStyle>> rules;
  std::set<std::string> covered;
  for (const auto &[path, style] : styled) {
    if (covered.count(path))
      continue;
    llvm::SmallVector<StringRef> comps;
    StringRef(path).split(comps, '.');
    std::string glob;
    auto idx = llvm::find_if(comps, allDigits) - comps.begin();
    // The layer index as `*`, from its container on. Of several numeric components (a
    // sentence-transformers export's `model.0.auto_model.encoder.layer.3...`: the Sequential's
    // index, then the layer's) the one whose glob covers the most paths; the first on a tie.
    size_t bestCover = 0;
    for (size_t star = idx; star < comps.size(); ++star) {
      if (star == 0 || !allDigits(comps[star]))
        continue;
      for (size_t from = star - 1; from + 1 > 0; --from)
        if (std::string g = join(comps, from, star); good(g, style)) {
          size_t cover = llvm::count_if(styled, [&](const auto &ps) { return globMatches(g, ps.first); });
          if (cover > bestCover) {
            bestCover = cover;
            glob = g;
          }
          break;
        }
    }
    // The shortest suffix naming it alone, of two components at least (`model.norm`), from
    // the layer container on (`layers.0.mlp.down_proj`).
    size_t longest = comps.size() - std::min<size_t>(comps.size(), 1);
    if (idx > 0 && idx < (long)comps.size())
      longest = std::min<size_t>(longest, idx);
    for (size_t from = longest; from-- > 0 && glob.empty();)
      if (std::string g = join(comps, from); good(g, style) &&
                                             llvm::count_if(modulePaths, [&](const std::string &p) {
                                               return globMatches(g, p);
                                             }) == 1)
        glob = g;
    if (glob.empty())
      glob = path;
    for (const auto &[p, s] : styled)
      if (globMatches(glob, p))
        covered.insert(p);
    rules.emplace_back(glob, style);
  }
  return rules;
}

TpDerivation deriveTpPlan(ModuleOp raised, llvm::ArrayRef<std::string> modulePaths, bool sequenceParallel,
                          int64_t tp) {
  TpDerivation d;
  Deriver{raised, sequenceParallel, std::max<int64_t>(tp, 1), d, {}, {}}.run();
  // Module path -> style in program order, linears first, then norms; a path whose ops
  // were given different styles (two linears of one module in different roles) stays out.
  std::vector<std::string> order;
  std::map<std::string, std::set<std::optional<TpStyle>>> stylesOf;
  for (const auto *list : {&d.linears, &d.norms})
    for (const TpDerivation::Entry &e : *list)
      if (!e.path.empty()) {
        if (!stylesOf.count(e.path))
          order.push_back(e.path);
        stylesOf[e.path].insert(e.style);
      }
  std::vector<std::pair<std::string, TpStyle>> styled;
  for (const std::string &path : order) {
    const auto &set = stylesOf[path];
    if (set.size() > 1)
      d.notes.push_back("module " + path + " holds ops of different styles; it stays unsharded");
    else if (*set.begin())
      styled.emplace_back(path, **set.begin());
  }
  d.rules = globsFor(styled, modulePaths);
  return d;
}

std::string printTpDerivation(const TpDerivation &d) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "# tp_plan: auto, derived from the raised graph: " << d.attentionBlocks << " attention block(s), "
     << d.mlpBlocks << " MLP(s)\n# rules:\n";
  for (const auto &[glob, style] : d.rules)
    os << "#   \"" << glob << "\": " << stringifyTpStyle(style) << "\n";
  auto list = [&](const char *what, const std::vector<TpDerivation::Entry> &es) {
    os << "# " << what << ":\n";
    for (const TpDerivation::Entry &e : es)
      os << "#   " << (e.path.empty() ? "(no module path)" : e.path) << ": "
         << (e.style ? stringifyTpStyle(*e.style) : StringRef("not sharded")) << ": " << e.reason << "\n";
  };
  list("linears", d.linears);
  list("norms", d.norms);
  for (const std::string &n : d.notes)
    os << "# note: " << n << "\n";
  return os.str();
}

} // namespace shardc
