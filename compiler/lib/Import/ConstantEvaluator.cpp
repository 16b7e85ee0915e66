// Host tensors for the importer's constant operands, and constant folding of sc ops through
// their steps and the runtime's CPU kernels (the shape and mask subgraphs that exporters
// leave in graphs with static shapes fold to single constants).
#include "shardc/Import/ConstantEvaluator.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/runtime/Kernel.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;

namespace shardc {


static int64_t saturatingInt(double v);

std::optional<HostTensor> HostTensor::fromAttr(ElementsAttr attr) {
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  auto type = dyn_cast<RankedTensorType>(attr.getType());
  if (!dense || !type)
    return std::nullopt;
  HostTensor t{type, {}};
  Type et = type.getElementType();
  t.values.reserve(type.getNumElements());
  if (isa<FloatType>(et)) {
    for (APFloat v : dense.getValues<APFloat>())
      t.values.push_back(v.convertToDouble());
  } else if (auto it = dyn_cast<IntegerType>(et)) {
    for (APInt v : dense.getValues<APInt>())
      t.values.push_back(it.getWidth() == 1 || it.isUnsigned() ? (double)v.getZExtValue()
                                                               : (double)v.getSExtValue());
  } else {
    return std::nullopt;
  }
  return t;
}

DenseElementsAttr HostTensor::toAttr() const {
  Type et = type.getElementType();
  if (auto ft = dyn_cast<FloatType>(et)) {
    SmallVector<APFloat> vals;
    for (double v : values) {
      bool lost;
      APFloat f(v);
      f.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
      vals.push_back(f);
    }
    return DenseElementsAttr::get(type, vals);
  }
  auto it = cast<IntegerType>(et);
  SmallVector<APInt> vals;
  for (double v : values)
    vals.push_back(APInt(it.getWidth(), (uint64_t)saturatingInt(v), /*isSigned=*/!it.isUnsigned(), /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, vals);
}

// Doubles hold int64 exactly up to 2^53; the INT64_MAX/MIN sentinels ONNX uses for
// "to the end" in Slice round to ±2^63 and must saturate instead of overflowing.
static int64_t saturatingInt(double v) {
  if (v >= 9.2e18)
    return INT64_MAX;
  if (v <= -9.2e18)
    return INT64_MIN;
  return (int64_t)v;
}

std::vector<int64_t> HostTensor::asInts() const {
  std::vector<int64_t> r;
  for (double v : values)
    r.push_back(saturatingInt(v));
  return r;
}

// Folding runs the op's own step (StepOpInterface) with the runtime's CPU kernel, on the
// constants' bytes in their own element type: the values a run would compute, from the one
// definition of the op's arithmetic (no evaluator of its own).
namespace {

std::optional<rt::DType> runtimeDType(Type t) {
  if (t.isF32()) return rt::DType::F32;
  if (t.isF16()) return rt::DType::F16;
  if (t.isBF16()) return rt::DType::BF16;
  if (t.isF64()) return rt::DType::F64;
  if (t.isInteger(1)) return rt::DType::Bool;
  if (auto it = dyn_cast<IntegerType>(t)) {
    if (it.getWidth() == 64) return rt::DType::I64;
    if (it.getWidth() == 32) return rt::DType::I32;
    if (it.getWidth() == 8) return it.isUnsigned() ? rt::DType::U8 : rt::DType::I8;
  }
  return std::nullopt;
}

// The attribute's elements in the runtime's layout (bools one byte each).
std::vector<char> bytesOf(DenseElementsAttr attr, size_t elementBytes) {
  int64_t n = attr.getNumElements();
  std::vector<char> out;
  if (attr.getElementType().isInteger(1)) {
    for (bool b : attr.getValues<bool>())
      out.push_back(b ? 1 : 0);
    return out;
  }
  ArrayRef<char> raw = attr.getRawData();
  if (attr.isSplat()) {
    for (int64_t i = 0; i < n; ++i)
      out.insert(out.end(), raw.begin(), raw.begin() + elementBytes);
  } else {
    out.assign(raw.begin(), raw.end());
  }
  return out;
}

} // namespace

std::optional<SmallVector<DenseElementsAttr>> evaluateOnHost(Operation *op, ArrayRef<DenseElementsAttr> operands) {
  auto lowering = dyn_cast<sc::StepOpInterface>(op);
  StepDesc step;
  if (!lowering || failed(lowering.lowerToStep(step)))
    return std::nullopt;
  rt::KernelFn kernel = rt::lookupCpuKernel(step.kind);
  if (!kernel)
    return std::nullopt;
  std::vector<std::vector<char>> storage;
  rt::KernelArgs args;
  args.attrs = &step.attrs;
  auto view = [&](RankedTensorType t, std::vector<char> bytes) -> std::optional<rt::TensorView> {
    auto dt = runtimeDType(t.getElementType());
    if (!dt)
      return std::nullopt;
    bytes.resize(size_t(t.getNumElements()) * rt::dtypeSize(*dt) + 1); // never empty
    storage.push_back(std::move(bytes));
    return rt::TensorView{storage.back().data(), *dt, std::vector<int64_t>(t.getShape().begin(), t.getShape().end())};
  };
  storage.reserve(operands.size() + op->getNumResults());
  for (DenseElementsAttr a : operands) {
    auto t = cast<RankedTensorType>(a.getType());
    auto dt = runtimeDType(t.getElementType());
    if (!dt)
      return std::nullopt;
    auto v = view(t, bytesOf(a, rt::dtypeSize(*dt)));
    args.in.push_back(*v);
  }
  for (Type rt : op->getResultTypes()) {
    auto v = view(cast<RankedTensorType>(rt), {});
    if (!v)
      return std::nullopt;
    args.out.push_back(*v);
  }
  if (!kernel(args).empty())
    return std::nullopt; // the op stays and reports at run time (or never runs)
  SmallVector<DenseElementsAttr> results;
  for (auto [t, v] : llvm::zip(op->getResultTypes(), args.out)) {
    auto type = cast<RankedTensorType>(t);
    const char *data = static_cast<const char *>(v.data);
    if (type.getElementType().isInteger(1)) {
      SmallVector<bool> bits(data, data + type.getNumElements());
      results.push_back(DenseElementsAttr::get(type, ArrayRef<bool>(bits)));
    } else {
      results.push_back(DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(data, v.bytes())));
    }
  }
  return results;
}

} // namespace shardc
