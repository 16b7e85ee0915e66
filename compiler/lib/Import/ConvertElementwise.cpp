// Importer converters for elementwise ONNX ops: binary arithmetic and comparison, unary
// math, Where, Cast, Identity and Gelu.
#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScShapes.h"

namespace shardc::importer {

namespace {

using sc::broadcastShapes;

template <typename OpTy> Converter binary(bool boolResult = false) {
  return [boolResult](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 2)))
      return failure();
    SmallVector<int64_t> shape;
    if (!broadcastShapes(n.shape(0), n.shape(1), shape))
      return n.im.fail("shapes " + shapeStr(n.shape(0)) + " and " + shapeStr(n.shape(1)) + " do not broadcast");
    Value lhs = n.in(0), rhs = n.in(1);
    if (n.elem(0) != n.elem(1) && !std::is_same_v<OpTy, sc::PowOp>)
      return n.im.fail("operand element types differ");
    Type et = boolResult ? Type(n.im.builder.getI1Type()) : n.elem(0);
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(shape, et), lhs, rhs));
    return success();
  };
}

template <typename OpTy> Converter unary(bool boolResult = false) {
  return [boolResult](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 1)))
      return failure();
    Type et = boolResult ? Type(n.im.builder.getI1Type()) : n.elem(0);
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(n.shape(0), et), n.in(0)));
    return success();
  };
}

// Ops whose formula rows are float only (integer column `none`): an integer input is refused
// here, naming the op, rather than by the runtime kernel at run time.
Converter floatOnly(llvm::StringRef op, Converter inner) {
  return [op = op.str(), inner](NodeCtx &n) -> LogicalResult {
    for (unsigned i = 0; i < n.inputs.size(); ++i)
      if (n.inputs[i] && !isa<FloatType>(n.elem(i))) {
        std::string type;
        llvm::raw_string_ostream os(type);
        os << n.elem(i);
        return n.im.fail(op + " of " + type + " tensors is not supported (float only)");
      }
    return inner(n);
  };
}

// Abs: sc.abs on floats (its formula row is float only); on signed integers max(x, 0 - x),
// which the integer Max and Sub compute (T5's relative-position buckets, as the TorchScript
// exporter writes them); on unsigned integers the input itself.
LogicalResult convertAbs(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  Type et = n.elem(0);
  if (isa<FloatType>(et)) {
    n.results.push_back(n.im.build<sc::AbsOp>(n, n.type(0), n.in(0)));
    return success();
  }
  auto it = dyn_cast<IntegerType>(et);
  if (!it || it.getWidth() == 1)
    return n.im.fail("Abs of bool tensors is not supported");
  if (it.isUnsigned()) {
    n.results.push_back(n.in(0));
    return success();
  }
  auto scalar = RankedTensorType::get({}, et);
  Value zero = n.im.constant(DenseElementsAttr::get(scalar, APInt(it.getWidth(), 0)));
  Value neg = n.im.build<sc::SubOp>(n, n.type(0), zero, n.in(0));
  n.results.push_back(n.im.build<sc::MaxOp>(n, n.type(0), n.in(0), neg));
  return success();
}

// ONNX Min/Max are variadic: one input is itself, two are the sc op, more a chain of them
// (broadcasting as they go).
template <typename OpTy> Converter variadicPair(llvm::StringRef op) {
  return [op = op.str()](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, unsigned(n.inputs.size()))))
      return failure();
    Value acc = n.in(0);
    SmallVector<int64_t> shape(n.shape(0));
    for (unsigned i = 1; i < n.inputs.size(); ++i) {
      SmallVector<int64_t> next;
      if (!broadcastShapes(shape, n.shape(i), next))
        return n.im.fail(op + ": input shapes do not broadcast");
      acc = n.im.build<OpTy>(n, n.tensor(next, n.elem(0)), acc, n.in(i));
      shape = next;
    }
    n.results.push_back(acc);
    return success();
  };
}

LogicalResult convertWhere(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  SmallVector<int64_t> s1, s2;
  if (!broadcastShapes(n.shape(0), n.shape(1), s1) || !broadcastShapes(s1, n.shape(2), s2))
    return n.im.fail("Where operand shapes do not broadcast");
  if (!n.elem(0).isInteger(1))
    return n.im.fail("Where condition must be bool");
  n.results.push_back(n.im.build<sc::WhereOp>(n, n.tensor(s2, n.elem(1)), n.in(0), n.in(1), n.in(2)));
  return success();
}

LogicalResult convertCast(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  auto et = elementTypeOf(&n.im.ctx, n.intAttr("to", 0));
  if (!et)
    return n.im.fail("Cast to unsupported type " + llvm::Twine(n.intAttr("to", 0)));
  if (*et == n.elem(0)) {
    n.results.push_back(n.in(0));
    return success();
  }
  n.results.push_back(n.im.build<sc::CastOp>(n, n.tensor(n.shape(0), *et), n.in(0)));
  return success();
}

LogicalResult convertGelu(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  std::string approx = n.strAttr("approximate", "none");
  std::optional<sc::GeluApproximation> kind = sc::symbolizeGeluApproximation(approx);
  if (!kind)
    return n.im.fail("Gelu approximate='" + approx + "' is not supported");
  n.results.push_back(sc::GeluOp::create(n.im.builder, n.loc, n.type(0), n.in(0), *kind));
  return success();
}

// ONNX Attention (opset 23) in its 4-D form [B, H, S, D] without KV cache.
LogicalResult convertIdentity(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  n.results.push_back(n.in(0));
  return success();
}

} // namespace

void registerElementwiseConverters(ConverterRegistry &r) {
  // Since-versions are those whose semantics the converter implements: numpy-style
  // broadcasting (7), no consumed_inputs attribute (6), Cast's integer `to` (6).
  r.onOp("Add", 7, binary<sc::AddOp>());
  r.onOp("Sub", 7, binary<sc::SubOp>());
  r.onOp("Mul", 7, binary<sc::MulOp>());
  r.onOp("Div", 7, binary<sc::DivOp>());
  r.onOp("Pow", 7, binary<sc::PowOp>());
  r.onOp("Equal", 7, binary<sc::EqualOp>(true));
  r.onOp("Where", 9, convertWhere);
  r.onOp("Neg", 6, unary<sc::NegOp>());
  r.onOp("Sqrt", 6, unary<sc::SqrtOp>());
  r.onOp("Reciprocal", 6, unary<sc::ReciprocalOp>());
  r.onOp("Exp", 6, unary<sc::ExpOp>());
  r.onOp("Log", 6, unary<sc::LogOp>());
  r.onOp("Tanh", 6, unary<sc::TanhOp>());
  r.onOp("Sigmoid", 6, unary<sc::SigmoidOp>());
  r.onOp("Erf", 9, unary<sc::ErfOp>());
  r.onOp("Cos", 7, unary<sc::CosOp>());
  r.onOp("Sin", 7, unary<sc::SinOp>());
  r.onOp("Relu", 6, unary<sc::ReluOp>());
  r.onOp("Abs", 6, convertAbs);
  r.onOp("Floor", 6, floatOnly("Floor", unary<sc::FloorOp>()));
  r.onOp("Ceil", 6, floatOnly("Ceil", unary<sc::CeilOp>()));
  r.onOp("Round", 11, floatOnly("Round", unary<sc::RoundOp>()));
  r.onOp("Sign", 9, floatOnly("Sign", unary<sc::SignOp>()));
  r.onOp("Min", 8, variadicPair<sc::MinOp>("Min"));
  r.onOp("Max", 8, variadicPair<sc::MaxOp>("Max"));
  r.onOp("IsNaN", 9, unary<sc::IsNaNOp>(true));
  r.onOp("Gelu", 20, convertGelu);
  r.onOp("Cast", 6, convertCast);
  r.onOp("Identity", 1, convertIdentity);
}

} // namespace shardc::importer
