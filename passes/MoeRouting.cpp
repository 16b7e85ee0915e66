// IR the MoE training passes build from a raised router (MoeRouting.h).
#include "MoeRouting.h"

#include <numeric>

using namespace mlir;

namespace shardc {

Value expertCounts(OpBuilder &b, Location loc, sc::MoeRouterOp r) {
  auto it = cast<RankedTensorType>(r.getIndices().getType());
  const int64_t T = it.getDimSize(0), k = it.getDimSize(1),
                E = cast<RankedTensorType>(r.getLogits().getType()).getDimSize(1);
  auto f32 = b.getF32Type();
  auto iotaT = RankedTensorType::get({E}, b.getI64Type());
  SmallVector<int64_t> iota(E);
  std::iota(iota.begin(), iota.end(), 0);
  Value experts = sc::ConstantOp::create(b, loc, iotaT, DenseIntElementsAttr::get(iotaT, ArrayRef<int64_t>(iota)));
  Value ids = sc::ReshapeOp::create(b, loc, RankedTensorType::get({T, k, 1}, b.getI64Type()), r.getIndices());
  Value hit = sc::EqualOp::create(b, loc, RankedTensorType::get({T, k, E}, b.getI1Type()), ids, experts);
  Value ones = sc::CastOp::create(b, loc, RankedTensorType::get({T, k, E}, f32), hit);
  return sc::ReduceSumOp::create(b, loc, RankedTensorType::get({E}, f32), ones, b.getDenseI64ArrayAttr({0, 1}), false);
}

} // namespace shardc
