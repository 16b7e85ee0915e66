// Packs ONNX node name + module path + file into nested NameLocs and unpacks them.
// The nesting keeps `--mlir-print-debuginfo` output readable and FileCheck-able.
#include "shardc/Dialect/ScLocation.h"

#include "llvm/ADT/StringExtras.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/MLIRContext.h"

using namespace mlir;

namespace shardc {

Location makeOnnxLoc(MLIRContext *ctx, const OnnxLocInfo &info, unsigned nodeIndex) {
  Location inner = FileLineColLoc::get(ctx, info.file.empty() ? "<onnx>" : info.file, nodeIndex, 0);
  if (!info.modulePath.empty())
    inner = NameLoc::get(StringAttr::get(ctx, info.modulePath), inner);
  return NameLoc::get(StringAttr::get(ctx, info.nodeName.empty() ? "<unnamed>" : info.nodeName), inner);
}

OnnxLocInfo readOnnxLoc(Location loc) {
  OnnxLocInfo info;
  if (auto fused = dyn_cast<FusedLoc>(loc))
    if (!fused.getLocations().empty())
      loc = fused.getLocations().front();
  if (auto name = dyn_cast<NameLoc>(loc)) {
    info.nodeName = name.getName().str();
    Location child = name.getChildLoc();
    if (auto path = dyn_cast<NameLoc>(child)) {
      info.modulePath = path.getName().str();
      child = path.getChildLoc();
    }
    if (auto file = dyn_cast<FileLineColLoc>(child))
      info.file = file.getFilename().str();
  } else if (auto file = dyn_cast<FileLineColLoc>(loc)) {
    info.file = file.getFilename().str();
  }
  return info;
}

std::string describeLoc(Location loc) {
  OnnxLocInfo info = readOnnxLoc(loc);
  std::string s;
  if (!info.nodeName.empty())
    s = "node '" + info.nodeName + "'";
  if (!info.modulePath.empty())
    s += (s.empty() ? "" : " ") + std::string("(") + info.modulePath + ")";
  return s.empty() ? "<unknown location>" : s;
}

std::string modulePathOf(Location loc) { return readOnnxLoc(loc).modulePath; }

int64_t microbatchOf(Location loc) {
  std::string path = modulePathOf(loc);
  llvm::StringRef head = llvm::StringRef(path).split('.').first;
  int64_t j;
  if (!head.consume_front("mb") || head.getAsInteger(10, j))
    return -1;
  return j;
}

Location makeBackwardLoc(Location forward) {
  if (isBackwardLoc(forward))
    return forward;
  MLIRContext *ctx = forward.getContext();
  return FusedLoc::get(ctx, {forward}, StringAttr::get(ctx, "backward"));
}

bool isBackwardLoc(Location loc) {
  auto fused = dyn_cast<FusedLoc>(loc);
  auto tag = fused ? dyn_cast_or_null<StringAttr>(fused.getMetadata()) : StringAttr();
  return tag && tag.getValue() == "backward";
}

namespace {
// The position of the layer index in `parts`, or 0 when the path is outside the layers.
size_t layerIndexPart(llvm::ArrayRef<llvm::StringRef> parts) {
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] != "layers" && parts[i] != "h" && parts[i] != "layer" && parts[i] != "blocks")
      continue;
    unsigned n;
    if (!parts[i + 1].getAsInteger(10, n))
      return i + 1;
  }
  return 0;
}
} // namespace

std::string layerPathOf(llvm::StringRef modulePath) {
  llvm::SmallVector<llvm::StringRef> parts;
  modulePath.split(parts, '.');
  size_t at = layerIndexPart(parts);
  return at ? llvm::join(llvm::ArrayRef<llvm::StringRef>(parts).take_front(at + 1), ".") : std::string();
}

int64_t layerIndexOf(llvm::StringRef modulePath) {
  llvm::SmallVector<llvm::StringRef> parts;
  modulePath.split(parts, '.');
  size_t at = layerIndexPart(parts);
  int64_t n = -1;
  if (at)
    parts[at].getAsInteger(10, n);
  return n;
}

} // namespace shardc
