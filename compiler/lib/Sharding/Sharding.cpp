// Sharding values: construction, attribute round trip, local shapes and DTensor printing.
// Stored as #sc.sharding attributes so any stage of the pipeline reparses from .mlir.
#include "shardc/Sharding/Sharding.h"

#include "shardc/Dialect/ScDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;

namespace shardc {

int64_t MeshShape::size(llvm::StringRef axis) const {
  if (ep > 1 && axis == "ep")
    return ep;
  if (ep > 1 && axis == "ep_shard")
    return size("dp_shard") * size("cp") / ep;
  for (auto &[name, n] : axes)
    if (name == axis)
      return n;
  return 1;
}

int64_t MeshShape::product(llvm::ArrayRef<std::string> names) const {
  int64_t p = 1;
  for (const std::string &a : names)
    p *= size(a);
  return p;
}

int64_t MeshShape::worldSize() const {
  int64_t p = 1;
  for (auto &[name, n] : axes)
    p *= n;
  return p;
}

ArrayAttr MeshShape::toAttr(MLIRContext *ctx) const {
  Builder b(ctx);
  SmallVector<Attribute> entries;
  for (auto &[name, n] : axes)
    entries.push_back(b.getArrayAttr({b.getStringAttr(name), b.getI64IntegerAttr(n)}));
  if (ep > 1)
    for (StringRef sub : {"ep_shard", "ep"})
      entries.push_back(
          b.getArrayAttr({b.getStringAttr(sub), b.getI64IntegerAttr(size(sub)), b.getStringAttr("sub")}));
  return b.getArrayAttr(entries);
}

std::optional<MeshShape> MeshShape::fromModule(Operation *module) {
  auto attr = module->getAttrOfType<ArrayAttr>("sc.mesh");
  if (!attr)
    return std::nullopt;
  MeshShape mesh;
  for (Attribute a : attr) {
    auto pair = dyn_cast<ArrayAttr>(a);
    if (!pair || pair.size() < 2 || pair.size() > 3)
      return std::nullopt;
    auto name = dyn_cast<StringAttr>(pair[0]);
    auto size = dyn_cast<IntegerAttr>(pair[1]);
    if (!name || !size || size.getInt() < 1)
      return std::nullopt;
    if (pair.size() == 3) { // a sub-axis of dp_shard x cp (expert parallelism)
      auto tag = dyn_cast<StringAttr>(pair[2]);
      if (!tag || tag.getValue() != "sub" || (name.getValue() != "ep" && name.getValue() != "ep_shard"))
        return std::nullopt;
      if (name.getValue() == "ep")
        mesh.ep = size.getInt();
      continue;
    }
    mesh.axes.push_back({name.str(), size.getInt()});
  }
  return mesh;
}

Sharding Sharding::replicated(int64_t rank) {
  Sharding s;
  s.dims.resize(rank);
  return s;
}

bool Sharding::isReplicated() const {
  return partial.empty() && llvm::all_of(dims, [](auto &d) { return d.empty(); });
}

SmallVector<std::string> Sharding::usedAxes() const {
  SmallVector<std::string> out;
  for (auto &d : dims)
    out.append(d.begin(), d.end());
  out.append(partial.begin(), partial.end());
  return out;
}

std::optional<SmallVector<int64_t>> Sharding::localShape(ArrayRef<int64_t> global, const MeshShape &mesh) const {
  if (global.size() != dims.size())
    return std::nullopt;
  SmallVector<int64_t> local(global);
  for (auto [i, axes] : llvm::enumerate(dims)) {
    int64_t parts = mesh.product(axes);
    if (parts == 0 || local[i] % parts != 0)
      return std::nullopt;
    local[i] /= parts;
  }
  return local;
}

// The attribute boundary: #sc.sharding <-> the pure-data struct, converted once per read or
// write (passes that iterate, like sc-propagate-sharding, keep the structs meanwhile).
sc::ShardingAttr Sharding::toAttr(MLIRContext *ctx) const {
  Builder b(ctx);
  SmallVector<ArrayAttr> dimAttrs;
  for (auto &d : dims) {
    SmallVector<StringRef> names(d.begin(), d.end());
    dimAttrs.push_back(b.getStrArrayAttr(names));
  }
  SmallVector<StringAttr> partialAxes;
  for (const std::string &a : partial)
    partialAxes.push_back(b.getStringAttr(a));
  sc::ReduceKind kind = sc::symbolizeReduceKind(reduce).value_or(sc::ReduceKind::Sum);
  SmallVector<sc::ReduceKind> kinds(partial.size(), kind);
  return sc::ShardingAttr::get(ctx, dimAttrs, partialAxes, kinds);
}

std::optional<Sharding> Sharding::fromAttr(Attribute attr) {
  auto sharding = dyn_cast_if_present<sc::ShardingAttr>(attr);
  if (!sharding)
    return std::nullopt;
  Sharding s;
  for (ArrayAttr axes : sharding.getDims()) {
    auto names = axes.getAsValueRange<StringAttr>();
    s.dims.emplace_back(names.begin(), names.end());
  }
  for (StringAttr a : sharding.getPartialAxes())
    s.partial.push_back(a.str());
  // One kind for all partial axes (the dialect's attribute verifier rejects mixed kinds).
  if (!sharding.getPartialKinds().empty())
    s.reduce = sc::stringifyReduceKind(sharding.getPartialKinds().front()).str();
  return s;
}

std::string Sharding::toDTensorString(const MeshShape &mesh) const {
  std::string out = "[";
  bool first = true;
  for (auto &[axis, size] : mesh.axes) {
    if (size == 1)
      continue;
    std::string placement = "Replicate";
    for (auto [d, axes] : llvm::enumerate(dims))
      if (llvm::is_contained(axes, axis))
        placement = "Shard(" + std::to_string(d) + ")";
    if (llvm::is_contained(partial, axis))
      placement = "Partial(" + reduce + ")";
    out += (first ? "" : ", ") + axis + ": " + placement;
    first = false;
  }
  return out + "]";
}

std::optional<Sharding> getSharding(Value v) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (auto func = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp()))
      return Sharding::fromAttr(func.getArgAttr(arg.getArgNumber(), kShardingAttr));
    return std::nullopt;
  }
  Operation *op = v.getDefiningOp();
  auto arr = op->getAttrOfType<ArrayAttr>(kShardingAttr);
  unsigned idx = cast<OpResult>(v).getResultNumber();
  if (!arr || idx >= arr.size())
    return std::nullopt;
  return Sharding::fromAttr(arr[idx]);
}

void setSharding(Value v, const Sharding &s) {
  MLIRContext *ctx = v.getContext();
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (auto func = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp()))
      func.setArgAttr(arg.getArgNumber(), kShardingAttr, s.toAttr(ctx));
    return;
  }
  Operation *op = v.getDefiningOp();
  SmallVector<Attribute> entries;
  if (auto arr = op->getAttrOfType<ArrayAttr>(kShardingAttr))
    entries.assign(arr.begin(), arr.end());
  while (entries.size() < op->getNumResults())
    entries.push_back(Sharding::replicated(cast<RankedTensorType>(op->getResult(entries.size()).getType()).getRank()).toAttr(ctx));
  entries[cast<OpResult>(v).getResultNumber()] = s.toAttr(ctx);
  op->setAttr(kShardingAttr, ArrayAttr::get(ctx, entries));
}

Sharding applyConstraint(const Sharding &in, llvm::ArrayRef<std::string> axes, const Sharding &placement) {
  auto constrained = [&](const std::string &a) { return llvm::is_contained(axes, a); };
  Sharding out = in;
  for (auto [d, dimAxes] : llvm::enumerate(out.dims)) {
    llvm::erase_if(dimAxes, constrained);
    if (d < placement.dims.size())
      dimAxes.append(placement.dims[d].begin(), placement.dims[d].end());
  }
  llvm::erase_if(out.partial, constrained);
  if (out.partial.empty())
    out.reduce = "sum";
  return out;
}

} // namespace shardc
