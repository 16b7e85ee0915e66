// Importer converters for ONNX comparisons (Less, LessOrEqual, Greater, GreaterOrEqual), the
// logical ops (And, Or, Xor, Not), Clip, LeakyRelu, Mod, CastLike and Dropout (inference).
// Greater and GreaterOrEqual are sc.less / sc.less_equal with swapped operands; the logical
// ops are sc.where over bools, Clip is sc.max then sc.min: ops that already have kernels,
// sharding rules and folding everywhere.
#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScShapes.h"

namespace shardc::importer {

namespace {

using sc::broadcastShapes;

std::string typeStr(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

Value boolConst(NodeCtx &n, bool v) {
  auto t = RankedTensorType::get({}, n.im.builder.getI1Type());
  return n.im.constant(DenseElementsAttr::get(t, llvm::ArrayRef<bool>{v}));
}

// lhs <op> rhs with a bool result; `swap` compares rhs with lhs (Greater is Less swapped).
template <typename OpTy> Converter compare(const char *op, bool swap) {
  return [op, swap](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 2)))
      return failure();
    if (n.elem(0) != n.elem(1))
      return n.im.fail(std::string(op) + " operand element types differ");
    SmallVector<int64_t> shape;
    if (!broadcastShapes(n.shape(0), n.shape(1), shape))
      return n.im.fail("shapes " + shapeStr(n.shape(0)) + " and " + shapeStr(n.shape(1)) + " do not broadcast");
    Value a = n.in(0), b = n.in(1);
    if (swap)
      std::swap(a, b);
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(shape, n.im.builder.getI1Type()), a, b));
    return success();
  };
}

LogicalResult needBools(NodeCtx &n, const char *op, unsigned count) {
  if (failed(needInputs(n, count)))
    return failure();
  for (unsigned i = 0; i < count; ++i)
    if (!n.elem(i).isInteger(1))
      return n.im.fail(std::string(op) + " takes bool tensors, not " + typeStr(n.elem(i)));
  return success();
}

Value notOf(NodeCtx &n, Value x) {
  auto t = cast<RankedTensorType>(x.getType());
  return n.im.build<sc::WhereOp>(n, t, x, boolConst(n, false), boolConst(n, true));
}

enum class Logic { And, Or, Xor };
Converter logical(Logic kind, const char *op) {
  return [kind, op](NodeCtx &n) -> LogicalResult {
    if (failed(needBools(n, op, 2)))
      return failure();
    SmallVector<int64_t> shape;
    if (!broadcastShapes(n.shape(0), n.shape(1), shape))
      return n.im.fail("shapes " + shapeStr(n.shape(0)) + " and " + shapeStr(n.shape(1)) + " do not broadcast");
    auto t = n.tensor(shape, n.im.builder.getI1Type());
    Value a = n.in(0), b = n.in(1);
    // a and b = a ? b : false; a or b = a ? true : b; a xor b = a ? not b : b.
    Value onTrue = kind == Logic::And ? b : kind == Logic::Or ? boolConst(n, true) : notOf(n, b);
    Value onFalse = kind == Logic::And ? boolConst(n, false) : b;
    n.results.push_back(n.im.build<sc::WhereOp>(n, t, a, onTrue, onFalse));
    return success();
  };
}

LogicalResult convertNot(NodeCtx &n) {
  if (failed(needBools(n, "Not", 1)))
    return failure();
  n.results.push_back(notOf(n, n.in(0)));
  return success();
}

// Clip(x, min, max) = min(max(x, lo), hi), either bound optional (then no bound on that side).
// Bounds above each other give hi everywhere, as ONNX says. A NaN in x stays NaN.
LogicalResult convertClip(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  Value y = n.in(0);
  auto t = n.type(0);
  if (t.getElementType().isInteger(1))
    return n.im.fail("Clip of bool tensors is not supported");
  for (unsigned i = 1; i < 3; ++i) {
    Value bound = n.in(i);
    if (!bound)
      continue;
    if (n.elem(i) != t.getElementType())
      return n.im.fail("Clip bound element type differs from the input's");
    if (n.type(i).getNumElements() != 1)
      return n.im.fail("Clip bounds must be scalars, got " + shapeStr(n.shape(i)));
    if (n.type(i).getRank() != 0)
      bound = n.im.build<sc::ReshapeOp>(n, n.tensor({}, t.getElementType()), bound);
    y = i == 1 ? n.im.build<sc::MaxOp>(n, t, y, bound) : n.im.build<sc::MinOp>(n, t, y, bound);
  }
  n.results.push_back(y);
  return success();
}

LogicalResult convertLeakyRelu(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  if (!isa<FloatType>(n.elem(0)))
    return n.im.fail("LeakyRelu of " + typeStr(n.elem(0)) + " tensors is not supported (float only)");
  Value alpha = n.im.floatConst(n.floatAttr("alpha", 0.01f), n.elem(0));
  n.results.push_back(n.im.build<sc::LeakyReluOp>(n, n.type(0), n.in(0), alpha));
  return success();
}

LogicalResult convertMod(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  if (n.elem(0) != n.elem(1))
    return n.im.fail("Mod operand element types differ");
  SmallVector<int64_t> shape;
  if (!broadcastShapes(n.shape(0), n.shape(1), shape))
    return n.im.fail("shapes " + shapeStr(n.shape(0)) + " and " + shapeStr(n.shape(1)) + " do not broadcast");
  const bool fmod = n.intAttr("fmod", 0) != 0;
  if (n.elem(0).isInteger(1))
    return n.im.fail("Mod of bool tensors is not supported");
  if (isa<FloatType>(n.elem(0)) && !fmod)
    return n.im.fail("Mod of float tensors needs fmod = 1 (ONNX)");
  auto t = n.tensor(shape, n.elem(0));
  n.results.push_back(fmod ? n.im.build<sc::FmodOp>(n, t, n.in(0), n.in(1))
                           : n.im.build<sc::ModOp>(n, t, n.in(0), n.in(1)));
  return success();
}

LogicalResult convertCastLike(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  if (n.elem(0) == n.elem(1)) {
    n.results.push_back(n.in(0));
    return success();
  }
  n.results.push_back(n.im.build<sc::CastOp>(n, n.tensor(n.shape(0), n.elem(1)), n.in(0)));
  return success();
}

// Dropout in inference: the identity, and an all-true mask when the node asks for it. In
// training mode (a constant true `training_mode`) with a ratio above 0 the mask is random:
// refused.
LogicalResult convertDropout(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  if (Value training = n.in(2)) {
    auto mode = n.im.constInts(training);
    if (!mode)
      return n.im.fail("Dropout training_mode must be a constant");
    if (!mode->empty() && (*mode)[0] != 0) {
      double ratio = 0.5;
      if (Value r = n.in(1)) {
        auto host = n.im.constTensor(r);
        if (!host || host->values.empty())
          return n.im.fail("Dropout ratio must be a constant in training mode");
        ratio = host->values[0];
      }
      if (ratio != 0.0)
        return n.im.fail("Dropout in training mode (random masks) is not supported");
    }
  }
  n.results.push_back(n.in(0));
  if (n.node.output_size() > 1 && !n.node.output(1).empty()) {
    auto t = n.tensor(n.shape(0), n.im.builder.getI1Type());
    n.results.push_back(n.im.constant(DenseElementsAttr::get(t, true)));
  }
  return success();
}

} // namespace

void registerLogicConverters(ConverterRegistry &r) {
  // Since-versions: numpy broadcasting (7), LessOrEqual/GreaterOrEqual's introduction (12),
  // CastLike's (15), Dropout's ratio and training_mode inputs (12), Clip's bounds as inputs (11).
  r.onOp("Less", 7, compare<sc::LessOp>("Less", false));
  r.onOp("Greater", 7, compare<sc::LessOp>("Greater", true));
  r.onOp("LessOrEqual", 12, compare<sc::LessEqualOp>("LessOrEqual", false));
  r.onOp("GreaterOrEqual", 12, compare<sc::LessEqualOp>("GreaterOrEqual", true));
  r.onOp("And", 7, logical(Logic::And, "And"));
  r.onOp("Or", 7, logical(Logic::Or, "Or"));
  r.onOp("Xor", 7, logical(Logic::Xor, "Xor"));
  r.onOp("Not", 1, convertNot);
  r.onOp("Clip", 11, convertClip);
  r.onOp("LeakyRelu", 6, convertLeakyRelu);
  r.onOp("Mod", 10, convertMod);
  r.onOp("CastLike", 15, convertCastLike);
  r.onOp("Dropout", 12, convertDropout);
}

} // namespace shardc::importer
