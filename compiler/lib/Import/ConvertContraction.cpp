// Importer converters for Einsum and Conv, composed of existing sc ops so that they shard,
// fuse and run wherever matmul, transpose, reshape, reduce_sum and gather do.
//
// Einsum (one or two operands, explicit or implicit output, `...`): labels only one operand has
// and the output lacks are summed first (sc.reduce_sum); then the batch labels (both operands
// and the output), the kept labels and the contracted labels are put in matmul order
// (sc.transpose, sc.reshape), multiplied (sc.matmul, batch dims kept, so 'bhqd,bhkd->bhqk'
// is matmul(q, transpose(k)) as the exporter writes attention) and put in the output's order.
//
// Conv (1-, 2- or 3-D): a GEMM over patches. When each kernel dim equals its stride, with no
// padding or dilation (ViT's patch embedding), the patches are a reshape and a transpose of
// the input; otherwise they are gathered from the zero-padded, flattened input with a
// constant index table (im2col). Groups are a batch dim of the matmul.
#include "ComposeHelpers.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace shardc::importer {

namespace {

// ---- Einsum -----------------------------------------------------------------------------

// Splits "ab,bc->ac" into operand label strings and the output; expands "..." into labels of
// their own (digits from '0'), right-aligned across operands.
LogicalResult parseEinsum(NodeCtx &n, std::string eq, SmallVectorImpl<std::string> &ins, std::string &out) {
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  size_t arrow = eq.find("->");
  std::string lhs = arrow == std::string::npos ? eq : eq.substr(0, arrow);
  bool explicitOut = arrow != std::string::npos;
  out = explicitOut ? eq.substr(arrow + 2) : "";
  ins.clear();
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    ins.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  if (ins.size() != n.inputs.size())
    return n.im.fail("Einsum equation names " + llvm::Twine(ins.size()) + " operands, the node has " +
                     llvm::Twine(n.inputs.size()));
  // Ellipses: the longest covers `most` dims, labelled '0'..; shorter ones take the last.
  int64_t most = 0;
  SmallVector<int64_t> spans;
  for (size_t i = 0; i < ins.size(); ++i) {
    size_t dots = ins[i].find("...");
    int64_t named = int64_t(ins[i].size()) - (dots == std::string::npos ? 0 : 3);
    int64_t span = dots == std::string::npos ? 0 : int64_t(n.shape(i).size()) - named;
    if (span < 0 || (dots == std::string::npos && named != int64_t(n.shape(i).size())))
      return n.im.fail("Einsum term '" + ins[i] + "' does not match operand rank " + llvm::Twine(n.shape(i).size()));
    spans.push_back(span);
    most = std::max(most, span);
  }
  auto ellipsis = [&](int64_t span) {
    std::string s;
    for (int64_t k = most - span; k < most; ++k)
      s.push_back(char('0' + k));
    return s;
  };
  for (size_t i = 0; i < ins.size(); ++i)
    if (size_t dots = ins[i].find("..."); dots != std::string::npos)
      ins[i].replace(dots, 3, ellipsis(spans[i]));
  for (const std::string &t : ins)
    for (char c : t)
      if (!std::isalpha(static_cast<unsigned char>(c)) && !(c >= '0' && c < '0' + most))
        return n.im.fail("Einsum label '" + std::string(1, c) + "' is not a letter");
  if (explicitOut) {
    if (size_t dots = out.find("..."); dots != std::string::npos)
      out.replace(dots, 3, ellipsis(most));
  } else { // implicit: the ellipsis dims, then the labels used once, alphabetically
    std::map<char, int> count;
    for (const std::string &t : ins)
      for (char c : t)
        ++count[c];
    out = ellipsis(most);
    for (auto [c, k] : count)
      if (k == 1 && std::isalpha(static_cast<unsigned char>(c)))
        out.push_back(c);
  }
  for (const std::string &t : ins)
    for (size_t a = 0; a < t.size(); ++a)
      if (t.find(t[a], a + 1) != std::string::npos)
        return n.im.fail("Einsum with a repeated label in one operand (a diagonal) is not supported");
  for (char c : out)
    if (llvm::none_of(ins, [&](const std::string &t) { return t.find(c) != std::string::npos; }))
      return n.im.fail("Einsum output label '" + std::string(1, c) + "' is in no operand");
  return success();
}

// x's dims labelled `labels`, with the labels not in `keep` summed away.
Value sumAway(NodeCtx &n, Value x, std::string &labels, llvm::function_ref<bool(char)> keep) {
  SmallVector<int64_t> axes, shape;
  std::string left;
  for (size_t d = 0; d < labels.size(); ++d) {
    if (keep(labels[d])) {
      left.push_back(labels[d]);
      shape.push_back(shapeOfValue(x)[d]);
    } else {
      axes.push_back(int64_t(d));
    }
  }
  labels = left;
  if (axes.empty())
    return x;
  auto &b = n.im.builder;
  return n.im.build<sc::ReduceSumOp>(n, n.tensor(shape, typeOfValue(x).getElementType()), x,
                                     b.getDenseI64ArrayAttr(axes), b.getBoolAttr(false));
}

// x (dims labelled `from`) permuted into the label order `to`.
Value permuteLabels(NodeCtx &n, Value x, const std::string &from, const std::string &to) {
  SmallVector<int64_t> perm;
  for (char c : to)
    perm.push_back(int64_t(from.find(c)));
  return transposeBy(n, x, perm);
}

int64_t product(ArrayRef<int64_t> dims) {
  int64_t p = 1;
  for (int64_t d : dims)
    p *= d;
  return p;
}

LogicalResult convertEinsum(NodeCtx &n) {
  if (n.inputs.empty() || n.inputs.size() > 2)
    return n.im.fail("Einsum with " + llvm::Twine(n.inputs.size()) + " operands is not supported (1 or 2)");
  if (failed(needInputs(n, unsigned(n.inputs.size()))))
    return failure();
  SmallVector<std::string> terms;
  std::string out;
  if (failed(parseEinsum(n, n.strAttr("equation", ""), terms, out)))
    return failure();
  std::map<char, int64_t> size;
  for (size_t i = 0; i < terms.size(); ++i)
    for (size_t d = 0; d < terms[i].size(); ++d) {
      int64_t s = n.shape(i)[d];
      auto [it, fresh] = size.try_emplace(terms[i][d], s);
      if (!fresh && it->second != s) {
        if (it->second != 1 && s != 1)
          return n.im.fail("Einsum label '" + std::string(1, terms[i][d]) + "' has sizes " +
                           llvm::Twine(it->second) + " and " + llvm::Twine(s));
        it->second = std::max(it->second, s);
      }
    }
  auto inOut = [&](char c) { return out.find(c) != std::string::npos; };
  Type et = n.elem(0);
  if (terms.size() == 1) {
    std::string labels = terms[0];
    Value x = sumAway(n, n.in(0), labels, inOut);
    n.results.push_back(permuteLabels(n, x, labels, out));
    return success();
  }
  if (n.elem(1) != et)
    return n.im.fail("Einsum operand element types differ");
  std::string la = terms[0], lb = terms[1];
  auto in = [](const std::string &t, char c) { return t.find(c) != std::string::npos; };
  Value a = sumAway(n, n.in(0), la, [&](char c) { return inOut(c) || in(lb, c); });
  Value b = sumAway(n, n.in(1), lb, [&](char c) { return inOut(c) || in(la, c); });
  // Broadcast size-1 dims of shared labels to the other operand's size.
  auto widen = [&](Value v, const std::string &labels) {
    SmallVector<int64_t> shape;
    for (char c : labels)
      shape.push_back(size[c]);
    return expandTo(n, v, shape);
  };
  a = widen(a, la);
  b = widen(b, lb);
  std::string batch, keepA, keepB, contract;
  for (char c : out) {
    if (in(la, c) && in(lb, c))
      batch.push_back(c);
    else if (in(la, c))
      keepA.push_back(c);
    else
      keepB.push_back(c);
  }
  for (char c : la)
    if (in(lb, c) && !inOut(c))
      contract.push_back(c);
  auto dims = [&](const std::string &labels) {
    SmallVector<int64_t> d;
    for (char c : labels)
      d.push_back(size[c]);
    return d;
  };
  SmallVector<int64_t> bd = dims(batch), m = dims(keepA), nn = dims(keepB), k = dims(contract);
  a = permuteLabels(n, a, la, batch + keepA + contract);
  b = permuteLabels(n, b, lb, batch + contract + keepB);
  SmallVector<int64_t> as(bd), bs(bd), ys(bd), full(bd);
  as.append({product(m), product(k)});
  bs.append({product(k), product(nn)});
  ys.append({product(m), product(nn)});
  llvm::append_range(full, m);
  llvm::append_range(full, nn);
  a = reshapeTo(n, a, as);
  b = reshapeTo(n, b, bs);
  Value y = n.im.build<sc::MatMulOp>(n, n.tensor(ys, et), a, b);
  y = reshapeTo(n, y, full);
  n.results.push_back(permuteLabels(n, y, batch + keepA + keepB, out));
  return success();
}

// ---- Conv -------------------------------------------------------------------------------

struct ConvGeometry {
  int64_t k = 0;                                       // spatial dims
  SmallVector<int64_t> in, kernel, stride, dil, padB, padE, out;
};

FailureOr<ConvGeometry> convGeometry(NodeCtx &n) {
  ConvGeometry g;
  ArrayRef<int64_t> x = n.shape(0), w = n.shape(1);
  g.k = int64_t(x.size()) - 2;
  auto fail = [&](const llvm::Twine &msg) -> FailureOr<ConvGeometry> {
    (void)n.im.fail(msg);
    return failure();
  };
  if (g.k < 1 || g.k > 3 || w.size() != x.size())
    return fail("Conv needs X [N, C, D1..Dk] and W [M, C/group, k1..kk] with k of 1 to 3, got " + shapeStr(x) +
                " and " + shapeStr(w));
  g.in.assign(x.begin() + 2, x.end());
  g.kernel.assign(w.begin() + 2, w.end());
  if (auto ks = n.intsAttr("kernel_shape"); ks && ArrayRef<int64_t>(*ks) != ArrayRef<int64_t>(g.kernel))
    return fail("Conv kernel_shape differs from W's spatial dims");
  auto listOr = [&](const char *name, int64_t dflt, size_t count) {
    auto v = n.intsAttr(name);
    return v ? *v : SmallVector<int64_t>(count, dflt);
  };
  g.stride = listOr("strides", 1, g.k);
  g.dil = listOr("dilations", 1, g.k);
  SmallVector<int64_t> pads = listOr("pads", 0, 2 * g.k);
  if (int64_t(g.stride.size()) != g.k || int64_t(g.dil.size()) != g.k || int64_t(pads.size()) != 2 * g.k)
    return fail("Conv strides, dilations or pads do not match the spatial rank");
  std::string autoPad = n.strAttr("auto_pad", "NOTSET");
  for (int64_t d = 0; d < g.k; ++d) {
    int64_t span = (g.kernel[d] - 1) * g.dil[d] + 1, b = pads[d], e = pads[d + g.k];
    if (autoPad == "VALID") {
      b = e = 0;
    } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t outLen = (g.in[d] + g.stride[d] - 1) / g.stride[d];
      int64_t total = std::max<int64_t>(0, (outLen - 1) * g.stride[d] + span - g.in[d]);
      b = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      e = total - b;
    } else if (autoPad != "NOTSET") {
      return fail("Conv auto_pad '" + autoPad + "' is not supported");
    }
    if (g.stride[d] < 1 || g.dil[d] < 1 || b < 0 || e < 0)
      return fail("Conv strides and dilations must be positive and pads not negative");
    int64_t o = (g.in[d] + b + e - span) / g.stride[d] + 1;
    if (g.in[d] + b + e < span)
      return fail("Conv kernel is larger than the padded input");
    g.padB.push_back(b);
    g.padE.push_back(e);
    g.out.push_back(o);
  }
  return g;
}

LogicalResult convertConv(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  Type et = n.elem(0);
  if (!isa<FloatType>(et) || n.elem(1) != et || (n.in(2) && n.elem(2) != et))
    return n.im.fail("Conv takes float X, W and B of one element type");
  auto geo = convGeometry(n);
  if (failed(geo))
    return failure();
  const ConvGeometry &g = *geo;
  ArrayRef<int64_t> x = n.shape(0), w = n.shape(1);
  const int64_t N = x[0], C = x[1], M = w[0], G = n.intAttr("group", 1);
  if (G < 1 || C % G != 0 || M % G != 0 || w[1] != C / G)
    return n.im.fail("Conv group " + llvm::Twine(G) + " does not divide C = " + llvm::Twine(C) + " and M = " +
                     llvm::Twine(M) + " with W's " + llvm::Twine(w[1]) + " channels");
  const int64_t Cg = C / G, Mg = M / G, Kk = product(g.kernel), L = product(g.out);
  // Patches [N, G, L, Cg·Kk].
  Value patches;
  bool direct = true;
  for (int64_t d = 0; d < g.k; ++d)
    direct = direct && g.kernel[d] == g.stride[d] && g.dil[d] == 1 && g.padB[d] == 0 && g.padE[d] == 0;
  if (direct) {
    // Crop what the last patch does not cover, then [N, C, o1, k1, o2, k2, …] -> [N, o…, C, k…].
    Value v = n.in(0);
    for (int64_t d = 0; d < g.k; ++d)
      if (g.out[d] * g.kernel[d] != g.in[d])
        v = sliceAxis(n, v, 2 + d, 0, g.out[d] * g.kernel[d]);
    SmallVector<int64_t> split{N, C}, perm{0};
    for (int64_t d = 0; d < g.k; ++d)
      split.append({g.out[d], g.kernel[d]});
    for (int64_t d = 0; d < g.k; ++d)
      perm.push_back(2 + 2 * d);
    perm.push_back(1);
    for (int64_t d = 0; d < g.k; ++d)
      perm.push_back(3 + 2 * d);
    v = transposeBy(n, reshapeTo(n, v, split), perm);
    patches = reshapeTo(n, v, {N, L, G, Cg * Kk});
  } else {
    // Zero-pad, flatten the spatial dims, gather [N, C, L, Kk] with a constant index table.
    Value v = n.in(0);
    Value zero = n.im.floatConst(0.0, et);
    SmallVector<int64_t> padded;
    for (int64_t d = 0; d < g.k; ++d) {
      SmallVector<int64_t> before(shapeOfValue(v)), after(shapeOfValue(v));
      before[2 + d] = g.padB[d];
      after[2 + d] = g.padE[d];
      SmallVector<Value> parts;
      if (g.padB[d])
        parts.push_back(expandTo(n, zero, before));
      parts.push_back(v);
      if (g.padE[d])
        parts.push_back(expandTo(n, zero, after));
      v = concatAxis(n, parts, 2 + d);
      padded.push_back(g.in[d] + g.padB[d] + g.padE[d]);
    }
    const int64_t P = product(padded);
    v = reshapeTo(n, v, {N, C, P});
    std::vector<int64_t> table;
    table.reserve(size_t(L * Kk));
    SmallVector<int64_t> o(g.k, 0), q(g.k, 0);
    for (int64_t l = 0; l < L; ++l) {
      for (int64_t d = g.k - 1, r = l; d >= 0; --d) {
        o[d] = r % g.out[d];
        r /= g.out[d];
      }
      for (int64_t kk = 0; kk < Kk; ++kk) {
        for (int64_t d = g.k - 1, r = kk; d >= 0; --d) {
          q[d] = r % g.kernel[d];
          r /= g.kernel[d];
        }
        int64_t flat = 0;
        for (int64_t d = 0; d < g.k; ++d)
          flat = flat * padded[d] + o[d] * g.stride[d] + q[d] * g.dil[d];
        table.push_back(flat);
      }
    }
    Value idx = n.im.i64Const(table, {L, Kk});
    v = n.im.build<sc::GatherOp>(n, n.tensor({N, C, L, Kk}, et), v, idx, n.im.builder.getI64IntegerAttr(2));
    v = transposeBy(n, v, {0, 2, 1, 3}); // [N, L, C, Kk]
    patches = reshapeTo(n, v, {N, L, G, Cg * Kk});
  }
  patches = transposeBy(n, patches, {0, 2, 1, 3}); // [N, G, L, Cg·Kk]
  // W [M, Cg, k…] -> [G, Cg·Kk, Mg].
  Value wm = transposeBy(n, reshapeTo(n, n.in(1), {G, Mg, Cg * Kk}), {0, 2, 1});
  Value y = n.im.build<sc::MatMulOp>(n, n.tensor({N, G, L, Mg}, et), patches, wm);
  y = reshapeTo(n, transposeBy(n, y, {0, 1, 3, 2}), {N, M, L}); // [N, G, Mg, L]
  if (Value bias = n.in(2)) {
    if (n.shape(2) != ArrayRef<int64_t>{M})
      return n.im.fail("Conv B must be [M]");
    y = n.im.build<sc::AddOp>(n, n.tensor({N, M, L}, et), y, reshapeTo(n, bias, {M, 1}));
  }
  SmallVector<int64_t> outShape{N, M};
  llvm::append_range(outShape, g.out);
  n.results.push_back(reshapeTo(n, y, outShape));
  return success();
}

} // namespace

void registerContractionConverters(ConverterRegistry &r) {
  r.onOp("Einsum", 12, convertEinsum); // its introduction
  r.onOp("Conv", 11, convertConv);     // auto_pad, pads, strides, dilations, group as read here
}

} // namespace shardc::importer
