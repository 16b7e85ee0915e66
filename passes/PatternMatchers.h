// Small structural matchers shared by the raising passes: constants read as scalars,
// parameters seen through, products flattened, commutative operand pairs.
// Every matcher answers "no" on anything it does not fully understand.
#pragma once

#include "shardc/Dialect/ScDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/SmallVector.h"

#include <cmath>
#include <optional>

namespace shardc::match {

inline mlir::RankedTensorType tensorTypeOf(mlir::Value v) {
  return mlir::dyn_cast<mlir::RankedTensorType>(v.getType());
}

inline bool hasFloatElements(mlir::Value v) {
  auto t = tensorTypeOf(v);
  return t && mlir::isa<mlir::FloatType>(t.getElementType());
}

// The elements of an sc.constant (DenseElementsAttr only; resources are not read).
inline mlir::DenseElementsAttr constantElements(mlir::Value v) {
  auto c = v.getDefiningOp<sc::ConstantOp>();
  if (!c)
    return {};
  return mlir::dyn_cast<mlir::DenseElementsAttr>(c.getValue());
}

// A float constant with one value everywhere (a splat or a one-element tensor).
inline std::optional<double> splatFloat(mlir::Value v) {
  auto e = constantElements(v);
  if (!e || !mlir::isa<mlir::FloatType>(e.getElementType()))
    return std::nullopt;
  if (e.isSplat())
    return e.getSplatValue<llvm::APFloat>().convertToDouble();
  return std::nullopt;
}

inline bool isSplatFloat(mlir::Value v, double want, double relTol = 1e-6) {
  auto got = splatFloat(v);
  return got && std::fabs(*got - want) <= relTol * std::max(1.0, std::fabs(want));
}

// The parameter behind a value, or null.
inline sc::ParamOp paramOf(mlir::Value v) { return v.getDefiningOp<sc::ParamOp>(); }

// For a commutative binary op, binds (a, b) so that `pred(a)` holds; tries both orders.
template <typename Pred>
bool commutedPair(mlir::Value lhs, mlir::Value rhs, Pred pred, mlir::Value &first,
                  mlir::Value &second) {
  if (pred(lhs)) {
    first = lhs;
    second = rhs;
    return true;
  }
  if (pred(rhs)) {
    first = rhs;
    second = lhs;
    return true;
  }
  return false;
}

// The factors of a tree of sc.mul rooted at `v` (the root itself is expanded; inner muls
// only up to `depth` levels). Scalar float constants are folded into `coefficient`.
struct Product {
  double coefficient = 1.0;
  llvm::SmallVector<mlir::Value, 4> factors;
};

inline void collectFactors(mlir::Value v, Product &p, int depth) {
  if (auto c = splatFloat(v)) {
    p.coefficient *= *c;
    return;
  }
  if (depth > 0)
    if (auto mul = v.getDefiningOp<sc::MulOp>()) {
      collectFactors(mul.getLhs(), p, depth - 1);
      collectFactors(mul.getRhs(), p, depth - 1);
      return;
    }
  p.factors.push_back(v);
}

inline Product flattenProduct(mlir::Value v, int depth = 3) {
  Product p;
  collectFactors(v, p, depth);
  return p;
}

inline bool closeTo(double got, double want, double relTol = 1e-5) {
  return std::fabs(got - want) <= relTol * std::max(1.0, std::fabs(want));
}

// Normalises a possibly negative axis; -1 when out of range.
inline int64_t normalizedAxis(int64_t axis, int64_t rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  return (a < 0 || a >= rank) ? -1 : a;
}

} // namespace shardc::match
