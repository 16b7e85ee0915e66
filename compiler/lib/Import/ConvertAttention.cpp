// The importer's converter for ONNX Attention (opset 23), every form the reference defines:
// 4-D [B, H, S, D] or 3-D [B, S, H·D] inputs (q_num_heads, kv_num_heads), a bool or additive
// attn_mask (padded with "masked" up to the keys' length), a KV cache (past_key/past_value,
// concatenated before the new keys; present_key/present_value outputs), is_causal (upper-left
// aligned without a cache: sc.attention's flag; shifted by the cache's length with one: a
// constant -inf triangle in the bias), nonpad_kv_seqlen, softcap
// and the qk_matmul_output output.
//
// The plain forms become one sc.attention (GQA by head ratio, the mask additive). Softcap and the
// qk_matmul_output output need the scores themselves: that form is composed of matmul, softmax
// and elementwise ops as the ONNX reference computes it (q and k each scaled by √scale).
#include "ComposeHelpers.h"

#include "shardc/Dialect/ScShapes.h"

#include <cmath>
#include <limits>

namespace shardc::importer {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// [B, S, H·D] -> [B, H, S, D].
Value headsFirst(NodeCtx &n, Value x, int64_t heads) {
  ArrayRef<int64_t> s = shapeOfValue(x);
  return transposeBy(n, reshapeTo(n, x, {s[0], s[1], heads, s[2] / heads}), {0, 2, 1, 3});
}

Value addBroadcast(NodeCtx &n, Value a, Value b) {
  SmallVector<int64_t> shape;
  (void)sc::broadcastShapes(shapeOfValue(a), shapeOfValue(b), shape);
  return n.im.build<sc::AddOp>(n, n.tensor(shape, typeOfValue(a).getElementType()), a, b);
}

// k or v [B, Hkv, T, D] with each head repeated to [B, Hq, T, D] (GQA), as the reference does.
Value repeatHeads(NodeCtx &n, Value x, int64_t hq) {
  ArrayRef<int64_t> s = shapeOfValue(x);
  if (s[1] == hq)
    return x;
  Value u = n.im.build<sc::UnsqueezeOp>(n, n.tensor({s[0], s[1], 1, s[2], s[3]}, typeOfValue(x).getElementType()), x,
                                        n.im.builder.getDenseI64ArrayAttr({2}));
  return reshapeTo(n, expandTo(n, u, {s[0], s[1], hq / s[1], s[2], s[3]}), {s[0], hq, s[2], s[3]});
}

LogicalResult convertAttention(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  Type et = n.elem(0);
  if (!isa<FloatType>(et) || n.elem(1) != et || n.elem(2) != et)
    return n.im.fail("Attention takes float q, k and v of one element type");
  const size_t rank = n.shape(0).size();
  if (rank != n.shape(1).size() || rank != n.shape(2).size() || (rank != 3 && rank != 4))
    return n.im.fail("Attention takes 3-D or 4-D q, k and v of one rank");
  Value q = n.in(0), k = n.in(1), v = n.in(2);
  if (rank == 3) {
    int64_t hq = n.intAttr("q_num_heads", 0), hkv = n.intAttr("kv_num_heads", 0);
    if (hq <= 0 || hkv <= 0 || n.shape(0)[2] % hq || n.shape(1)[2] % hkv || n.shape(2)[2] % hkv)
      return n.im.fail("Attention with 3-D inputs needs q_num_heads and kv_num_heads dividing the hidden sizes");
    q = headsFirst(n, q, hq);
    k = headsFirst(n, k, hkv);
    v = headsFirst(n, v, hkv);
  }
  int64_t past = 0;
  if (n.in(4) || n.in(5)) {
    if (!n.in(4) || !n.in(5))
      return n.im.fail("Attention needs both past_key and past_value, or neither");
    if (n.elem(4) != et || n.elem(5) != et || n.shape(4).size() != 4 || n.shape(5).size() != 4)
      return n.im.fail("Attention past_key/past_value must be 4-D of q's element type");
    past = n.shape(4)[2];
    k = concatAxis(n, {n.in(4), k}, 2);
    v = concatAxis(n, {n.in(5), v}, 2);
  }
  ArrayRef<int64_t> qs = shapeOfValue(q), ks = shapeOfValue(k), vs = shapeOfValue(v);
  const int64_t B = qs[0], Hq = qs[1], S = qs[2], T = ks[2];
  if (ks[1] == 0 || Hq % ks[1] != 0 || ks[1] != vs[1] || ks[3] != qs[3] || vs[2] != T)
    return n.im.fail("Attention q, k, v shapes " + shapeStr(qs) + ", " + shapeStr(ks) + ", " + shapeStr(vs) +
                     " do not fit (GQA needs q heads a multiple of kv heads)");
  const float scale = n.attr("scale") ? n.floatAttr("scale", 1.0f) : 1.0f / std::sqrt(float(qs[3]));
  const float softcap = n.floatAttr("softcap", 0.0f);
  const int64_t mode = n.intAttr("qk_matmul_output_mode", 0);
  const bool wantQk = n.node.output_size() > 3 && !n.node.output(3).empty();
  const bool composed = softcap != 0.0f || wantQk;
  bool causal = n.intAttr("is_causal", 0) != 0;

  // The additive bias: the mask (bool as 0 / -inf, padded to T keys), the causal triangle when it
  // cannot be sc.attention's flag, the non-padding lengths.
  Value bias;
  if (Value mask = n.in(3)) {
    bool isBool = n.elem(3).isInteger(1);
    if (!isBool && n.elem(3) != et)
      return n.im.fail("Attention attn_mask must be bool or q's element type");
    ArrayRef<int64_t> ms = n.shape(3);
    if (ms.empty() || ms.back() > T)
      return n.im.fail("Attention attn_mask " + shapeStr(ms) + " is longer than the keys");
    if (ms.back() < T) {
      SmallVector<int64_t> pad(ms);
      pad.back() = T - ms.back();
      Value fill = isBool ? n.im.constant(DenseElementsAttr::get(RankedTensorType::get({}, n.elem(3)), false))
                          : n.im.floatConst(-kInf, et);
      mask = concatAxis(n, {mask, expandTo(n, fill, pad)}, int64_t(ms.size()) - 1);
    }
    if (isBool)
      mask = n.im.build<sc::WhereOp>(n, n.tensor(shapeOfValue(mask), et), mask, n.im.floatConst(0.0, et),
                                     n.im.floatConst(-kInf, et));
    bias = mask;
  }
  // Without a cache sc.attention's causal flag is the reference's triangle (upper-left
  // aligned), mask or not; a cache shifts the triangle, and the composed form needs it as data.
  if (causal && (past > 0 || composed)) {
    std::vector<double> tri(size_t(S * T), 0.0);
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = i + past + 1; j < T; ++j)
        tri[size_t(i * T + j)] = -kInf;
    HostTensor h{RankedTensorType::get({S, T}, et), tri};
    Value triangle = n.im.constant(h.toAttr());
    bias = bias ? addBroadcast(n, bias, triangle) : triangle;
    causal = false;
  }
  if (Value lens = n.in(6)) {
    if (!n.elem(6).isInteger(64) || n.shape(6) != ArrayRef<int64_t>{B})
      return n.im.fail("Attention nonpad_kv_seqlen must be i64 [batch]");
    std::vector<int64_t> positions(static_cast<size_t>(T));
    for (int64_t j = 0; j < T; ++j)
      positions[size_t(j)] = j;
    Value valid = n.im.build<sc::LessOp>(n, n.tensor({B, T}, n.im.builder.getI1Type()), n.im.i64Const(positions, {T}),
                                         reshapeTo(n, lens, {B, 1}));
    Value pad = n.im.build<sc::WhereOp>(n, n.tensor({B, T}, et), valid, n.im.floatConst(0.0, et),
                                        n.im.floatConst(-kInf, et));
    pad = reshapeTo(n, pad, {B, 1, 1, T});
    bias = bias ? addBroadcast(n, bias, pad) : pad;
  }

  auto &b = n.im.builder;
  Value y, qk;
  if (!composed) {
    y = sc::AttentionOp::create(b, n.loc, n.tensor({B, Hq, S, vs[3]}, et), q, k, v, bias, b.getF32FloatAttr(scale),
                                b.getBoolAttr(causal))
            .getResult();
  } else {
    Value root = n.im.floatConst(std::sqrt(double(scale)), et);
    Value kr = repeatHeads(n, k, Hq), vr = repeatHeads(n, v, Hq);
    Value qScaled = n.im.build<sc::MulOp>(n, typeOfValue(q), q, root);
    Value kScaled = transposeBy(n, n.im.build<sc::MulOp>(n, typeOfValue(kr), kr, root), {0, 1, 3, 2});
    auto scoresType = n.tensor({B, Hq, S, T}, et);
    Value scores = n.im.build<sc::MatMulOp>(n, scoresType, qScaled, kScaled);
    Value withBias = bias ? n.im.build<sc::AddOp>(n, scoresType, scores, bias) : scores;
    Value capped = withBias;
    if (softcap > 0.0f) {
      Value c = n.im.floatConst(softcap, et);
      capped = n.im.build<sc::MulOp>(
          n, scoresType, n.im.build<sc::TanhOp>(n, scoresType, n.im.build<sc::DivOp>(n, scoresType, withBias, c)), c);
    }
    Value probs = n.im.build<sc::SoftmaxOp>(n, scoresType, capped, b.getI64IntegerAttr(-1));
    y = n.im.build<sc::MatMulOp>(n, n.tensor({B, Hq, S, vs[3]}, et), probs, vr);
    qk = mode == 0 ? scores : mode == 1 ? withBias : mode == 2 ? capped : probs;
    if (mode < 0 || mode > 3)
      return n.im.fail("Attention qk_matmul_output_mode " + llvm::Twine(mode) + " is not 0 to 3");
  }
  if (rank == 3)
    y = reshapeTo(n, transposeBy(n, y, {0, 2, 1, 3}), {B, S, Hq * vs[3]});
  n.results.push_back(y);
  n.results.push_back(k);
  n.results.push_back(v);
  if (wantQk)
    n.results.push_back(qk);
  return success();
}

} // namespace

void registerAttentionConverters(ConverterRegistry &r) {
  r.onOp("Attention", 23, convertAttention); // its introduction; nonpad_kv_seqlen is opset 24's input
}

} // namespace shardc::importer
