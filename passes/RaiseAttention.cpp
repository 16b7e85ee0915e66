// ScRaiseAttention: the exporter's decomposed scaled dot-product attention (scaled q and kᵀ,
// MatMul, mask Add, Softmax, an IsNaN or all-masked-row guard, MatMul with v) becomes
// sc.attention; kᵀ as
// the dynamo exporter spells it or as the TorchScript exporter does (one transpose of the
// [B, T, H, D] projection).
// GQA's repeat_kv is looked through so k and v keep their Hkv heads; a constant causal mask
// becomes `causal` and is dropped, and so is a constant all-zero mask. A constant sliding-window
// mask (the w newest keys up to the query) sets `causal` and `sc.window = w` and is kept: the
// mask stays exact for whatever ignores the window, and the kernels that read it skip the keys
// outside the band.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>
#include <cstring>

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCRAISEATTENTION
#include "shardc/Passes/Passes.h.inc"

namespace {

// Values at or below this are "masked out" in an additive mask (HF uses finfo.min).
constexpr double kMaskedOut = -1.0e4;

// v * c or c * v with c a scalar float constant: returns v and multiplies `scale` by c.
Value stripScalarMul(Value v, double &scale) {
  if (auto mul = v.getDefiningOp<sc::MulOp>()) {
    for (auto [x, c] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}}) {
      auto s = match::splatFloat(c);
      if (s && x.getType() == mul.getType() && match::tensorTypeOf(c).getNumElements() == 1) {
        scale *= *s;
        return x;
      }
    }
  }
  return v;
}

// GQA's repeat_kv: reshape(expand(unsqueeze(kv, axes = [2]))) from [B, Hkv, T, D] to
// [B, Hkv*n, T, D], or the expanded 5-D value itself. Returns kv, or `v` when not repeated.
Value stripRepeatKv5d(Value v) {
  auto expand = v.getDefiningOp<sc::ExpandOp>();
  if (!expand)
    return {};
  auto unsq = expand.getInput().getDefiningOp<sc::UnsqueezeOp>();
  if (!unsq || unsq.getAxes() != ArrayRef<int64_t>{2})
    return {};
  auto kv = match::tensorTypeOf(unsq.getInput());
  auto e = expand.getType();
  if (kv.getRank() != 4 || e.getRank() != 5 || e.getDimSize(0) != kv.getDimSize(0) ||
      e.getDimSize(1) != kv.getDimSize(1) || e.getDimSize(3) != kv.getDimSize(2) ||
      e.getDimSize(4) != kv.getDimSize(3))
    return {};
  return unsq.getInput();
}

Value stripRepeatKv(Value v) {
  auto reshape = v.getDefiningOp<sc::ReshapeOp>();
  if (!reshape)
    return v;
  auto out = reshape.getType();
  auto in = match::tensorTypeOf(reshape.getInput());
  if (out.getRank() != 4 || in.getRank() != 5)
    return v;
  Value kv = stripRepeatKv5d(reshape.getInput());
  if (!kv || out.getDimSize(0) != in.getDimSize(0) ||
      out.getDimSize(1) != in.getDimSize(1) * in.getDimSize(2) ||
      out.getDimSize(2) != in.getDimSize(3) || out.getDimSize(3) != in.getDimSize(4))
    return v;
  return kv;
}

// kᵀ as [B, H, D, T]: transpose(k, [0, 1, 3, 2]) or reshape(transpose(reshape(k) to
// [B*H, T, D], [0, 2, 1])) where k is [B, H, T, D] or repeat_kv's 5-D [B, Hkv, n, T, D].
// Returns k (repeat_kv stripped) or null.
// `kBthd` is set instead when kᵀ is transpose(k', [0, 2, 3, 1]) of k' laid out [B, T, H, D]
// straight from the projection (the TorchScript exporter's spelling); the caller makes k.
Value keyOfTransposed(Value kT, Value *kBthd = nullptr) {
  auto t = match::tensorTypeOf(kT);
  if (!t || t.getRank() != 4)
    return {};
  if (auto tr = kT.getDefiningOp<sc::TransposeOp>()) {
    if (kBthd && tr.getPerm() == ArrayRef<int64_t>{0, 2, 3, 1}) {
      *kBthd = tr.getInput();
      return {};
    }
    if (tr.getPerm() != ArrayRef<int64_t>{0, 1, 3, 2})
      return {};
    return stripRepeatKv(tr.getInput());
  }
  auto outer = kT.getDefiningOp<sc::ReshapeOp>();
  if (!outer)
    return {};
  auto tr = outer.getInput().getDefiningOp<sc::TransposeOp>();
  if (!tr || tr.getPerm() != ArrayRef<int64_t>{0, 2, 1})
    return {};
  auto inner = tr.getInput().getDefiningOp<sc::ReshapeOp>();
  if (!inner)
    return {};
  auto merged = inner.getType(); // [B*H, T, D]
  Value src = inner.getInput();
  auto st = match::tensorTypeOf(src);
  int64_t b = t.getDimSize(0), h = t.getDimSize(1), d = t.getDimSize(2), len = t.getDimSize(3);
  if (merged.getRank() != 3 || merged.getDimSize(0) != b * h || merged.getDimSize(1) != len ||
      merged.getDimSize(2) != d)
    return {};
  if (st.getRank() == 4) {
    if (st.getShape() != ArrayRef<int64_t>{b, h, len, d})
      return {};
    return stripRepeatKv(src);
  }
  if (st.getRank() == 5) {
    if (st.getDimSize(0) != b || st.getDimSize(1) * st.getDimSize(2) != h ||
        st.getDimSize(3) != len || st.getDimSize(4) != d)
      return {};
    return stripRepeatKv5d(src);
  }
  return {};
}

// The band of a mask `at(idx)` over [.., S, S]: w when it is 0 where i - w < j <= i (the w
// newest keys up to the query, the diagonal included) and masked out elsewhere, for every
// leading (batch, head) index; w = S is the causal triangle, w < S a sliding window. nullopt
// for any other mask.
template <typename At> std::optional<int64_t> causalBand(int64_t n, int64_t len, At at) {
  int64_t w = 0; // the open keys of the last query row
  for (int64_t j = 0; j < len; ++j)
    w += at((len - 1) * len + j) == 0.0;
  if (w == 0)
    return std::nullopt;
  for (int64_t idx = 0; idx < n; ++idx) {
    int64_t j = idx % len, i = (idx / len) % len;
    double v = at(idx);
    if (j <= i && i - j < w ? v != 0.0 : !(v <= kMaskedOut))
      return std::nullopt;
  }
  return w;
}

// The band of a constant additive causal or sliding-window mask: a folded constant, or (for
// long sequences, where the exporter's folded mask is larger than constants are kept) an f32
// parameter whose bytes are read from its file here, once.
std::optional<int64_t> maskBand(Value mask) {
  auto t = match::tensorTypeOf(mask);
  if (!t || t.getRank() < 2)
    return std::nullopt;
  int64_t s = t.getDimSize(t.getRank() - 2), len = t.getDimSize(t.getRank() - 1);
  if (s != len || s < 2)
    return std::nullopt;
  int64_t n = t.getNumElements();
  if (auto elems = match::constantElements(mask)) {
    if (!isa<FloatType>(elems.getElementType()) || elems.isSplat())
      return std::nullopt;
    auto values = elems.getValues<APFloat>();
    return causalBand(n, len, [&](int64_t idx) { return values[idx].convertToDouble(); });
  }
  auto param = mask.getDefiningOp<sc::ParamOp>();
  if (!param || !t.getElementType().isF32())
    return std::nullopt;
  auto bytes = llvm::MemoryBuffer::getFileSlice(param.getFile(), n * 4, param.getOffset(), /*IsVolatile=*/false);
  if (!bytes || (*bytes)->getBufferSize() != uint64_t(n) * 4)
    return std::nullopt;
  const char *data = (*bytes)->getBufferStart();
  return causalBand(n, len, [&](int64_t idx) {
    float v;
    std::memcpy(&v, data + idx * 4, 4);
    return double(v);
  });
}

// The q kᵀ matmul behind the scores, seen through a scalar multiply or divide of the
// scores (the eager spelling); multiplies `scale` accordingly.
sc::MatMulOp qkMatmulOf(Value scores, double &scale) {
  if (auto div = scores.getDefiningOp<sc::DivOp>()) {
    auto c = match::splatFloat(div.getRhs());
    if (!c || *c == 0.0 || div.getLhs().getType() != div.getType() ||
        match::tensorTypeOf(div.getRhs()).getNumElements() != 1)
      return {};
    scale /= *c;
    scores = div.getLhs();
  } else {
    scores = stripScalarMul(scores, scale);
  }
  auto mm = scores.getDefiningOp<sc::MatMulOp>();
  if (!mm || mm.getType().getRank() != 4)
    return {};
  return mm;
}

struct AttentionParts {
  Value q, k, v, mask;
  double scale = 1.0;
  bool causal = false;
  int64_t window = 0; // a sliding window's width (the mask kept beside it), 0 for none
};

// matmul(P, v) where P = [where(isnan(S), 0, S) | S], S = softmax(scores, last axis),
// scores = [add(mm, mask) | add(mask, mm) | mm] (optionally scaled), mm = matmul(q·s1, kᵀ·s2).
struct DecomposedSdpaToAttention : OpRewritePattern<sc::MatMulOp> {
  using OpRewritePattern::OpRewritePattern;

  static Value stripNanGuard(Value p) {
    auto where = p.getDefiningOp<sc::WhereOp>();
    if (!where)
      return p;
    if (isAllMaskedRowGuard(where))
      return where.getRhs();
    auto isnan = where.getCondition().getDefiningOp<sc::IsNaNOp>();
    if (!isnan || isnan.getInput() != where.getRhs() || !match::isSplatFloat(where.getLhs(), 0.0) ||
        where.getType() != where.getRhs().getType())
      return {};
    return where.getRhs();
  }

  static std::optional<bool> splatBool(Value v) {
    auto e = match::constantElements(v);
    if (!e || !e.isSplat() || !e.getElementType().isInteger(1))
      return std::nullopt;
    return e.getSplatValue<bool>();
  }

  // not(c) spelled where(c, false, true): returns c, or null.
  static Value notOf(Value v) {
    auto w = v ? v.getDefiningOp<sc::WhereOp>() : sc::WhereOp();
    if (!w)
      return {};
    auto t = splatBool(w.getLhs()), f = splatBool(w.getRhs());
    if (!t || !f || *t || !*f)
      return {};
    return w.getCondition();
  }

  // The decomposed SDPA's other guard (torch's newer decomposition):
  // where(not(any(not(S == -inf), last axis)), 0, softmax(S)), `any` spelled
  // cast(reduce_max(cast(x to an integer), last axis) to bool). Like the IsNaN guard it only
  // zeroes rows whose every score is masked out, which sc.attention leaves to its kernel.
  static bool isAllMaskedRowGuard(sc::WhereOp where) {
    auto softmax = where.getRhs().getDefiningOp<sc::SoftmaxOp>();
    if (!softmax || !match::isSplatFloat(where.getLhs(), 0.0) || where.getType() != where.getRhs().getType())
      return false;
    Value scores = softmax.getInput();
    auto toBool = notOf(where.getCondition()) ? notOf(where.getCondition()).getDefiningOp<sc::CastOp>() : sc::CastOp();
    auto rmax = toBool ? toBool.getInput().getDefiningOp<sc::ReduceMaxOp>() : sc::ReduceMaxOp();
    int64_t rank = match::tensorTypeOf(scores).getRank();
    if (!rmax || rmax.getAxes() != ArrayRef<int64_t>{rank - 1} || !rmax.getKeepdims())
      return false;
    auto toInt = rmax.getInput().getDefiningOp<sc::CastOp>();
    auto eq = toInt ? notOf(toInt.getInput()) : Value();
    auto equal = eq ? eq.getDefiningOp<sc::EqualOp>() : sc::EqualOp();
    if (!equal || equal.getLhs() != scores)
      return false;
    auto c = match::splatFloat(equal.getRhs());
    return c && std::isinf(*c) && *c < 0;
  }

  LogicalResult matchAndRewrite(sc::MatMulOp op, PatternRewriter &rewriter) const override {
    AttentionParts parts;
    auto fail = [&](const char *why) { return rewriter.notifyMatchFailure(op, why); };
    if (op.getType().getRank() != 4 || !match::hasFloatElements(op.getResult()))
      return fail("not a 4-D float matmul");
    Value probs = stripNanGuard(op.getLhs());
    if (!probs)
      return fail("where is not an isnan guard");
    auto softmax = probs.getDefiningOp<sc::SoftmaxOp>();
    if (!softmax || match::normalizedAxis(softmax.getAxis(), 4) != 3)
      return fail("no softmax over the last axis");
    Value scores = softmax.getInput();
    sc::MatMulOp qk = qkMatmulOf(scores, parts.scale);
    if (!qk) {
      auto add = scores.getDefiningOp<sc::AddOp>();
      if (!add)
        return fail("softmax input is neither q kᵀ nor q kᵀ + mask");
      for (auto [s, mask] : {std::pair{add.getLhs(), add.getRhs()}, std::pair{add.getRhs(), add.getLhs()}}) {
        if (s.getType() != add.getType())
          continue;
        parts.scale = 1.0;
        if ((qk = qkMatmulOf(s, parts.scale))) {
          parts.mask = mask;
          break;
        }
      }
    }
    if (!qk)
      return fail("no q kᵀ matmul");
    parts.q = stripScalarMul(qk.getLhs(), parts.scale);
    Value kT = stripScalarMul(qk.getRhs(), parts.scale);
    Value kBthd;
    parts.k = keyOfTransposed(kT, &kBthd);
    parts.v = stripRepeatKv(op.getRhs());
    if (!parts.k && !kBthd)
      return fail("kᵀ is not a transpose of k");

    RankedTensorType kt;
    if (kBthd) {
      // k = transpose(k', [0, 2, 1, 3]): [B, T, H, D] -> [B, H, T, D], made only on a match.
      auto kp = match::tensorTypeOf(kBthd);
      if (!kp || kp.getRank() != 4)
        return fail("kᵀ's source is not 4-D");
      kt = RankedTensorType::get({kp.getDimSize(0), kp.getDimSize(2), kp.getDimSize(1), kp.getDimSize(3)},
                                 kp.getElementType());
    } else {
      kt = match::tensorTypeOf(parts.k);
    }
    auto qt = match::tensorTypeOf(parts.q), vt = match::tensorTypeOf(parts.v);
    if (qt.getRank() != 4 || kt.getRank() != 4 || vt.getRank() != 4)
      return fail("q, k, v are not 4-D");
    if (qt.getElementType() != kt.getElementType() || kt.getElementType() != vt.getElementType() ||
        qt.getElementType() != op.getType().getElementType())
      return fail("element types differ");
    if (qt.getDimSize(0) != kt.getDimSize(0) || kt.getDimSize(0) != vt.getDimSize(0) ||
        kt.getDimSize(1) != vt.getDimSize(1) || kt.getDimSize(2) != vt.getDimSize(2) ||
        qt.getDimSize(3) != kt.getDimSize(3) || kt.getDimSize(1) == 0 ||
        qt.getDimSize(1) % kt.getDimSize(1) != 0)
      return fail("q, k, v shapes do not form an attention");
    SmallVector<int64_t> want{qt.getDimSize(0), qt.getDimSize(1), qt.getDimSize(2), vt.getDimSize(3)};
    if (op.getType().getShape() != ArrayRef<int64_t>(want))
      return fail("result shape differs from the attention's");
    if (parts.mask) {
      auto mt = match::tensorTypeOf(parts.mask);
      if (mt.getElementType() != qt.getElementType())
        return fail("mask element type differs");
      if (auto band = maskBand(parts.mask)) {
        parts.causal = true;
        if (*band >= mt.getDimSize(mt.getRank() - 1))
          parts.mask = Value(); // the causal triangle
        else
          parts.window = *band; // a sliding window: the mask stays exact, `sc.window` a hint
      } else if (match::isSplatFloat(parts.mask, 0.0)) {
        parts.mask = Value(); // an all-zero mask (ViT's, without attention_mask) masks nothing
      }
    }
    if (kBthd)
      parts.k = sc::TransposeOp::create(rewriter, qk.getLoc(), kt, kBthd, rewriter.getDenseI64ArrayAttr({0, 2, 1, 3}));
    auto att = rewriter.replaceOpWithNewOp<sc::AttentionOp>(
        op, op.getType(), parts.q, parts.k, parts.v, parts.mask,
        rewriter.getF32FloatAttr(static_cast<float>(parts.scale)), rewriter.getBoolAttr(parts.causal));
    if (parts.window)
      att->setAttr("sc.window", rewriter.getI64IntegerAttr(parts.window));
    return success();
  }
};

struct ScRaiseAttentionPass : impl::ScRaiseAttentionBase<ScRaiseAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<DecomposedSdpaToAttention>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
