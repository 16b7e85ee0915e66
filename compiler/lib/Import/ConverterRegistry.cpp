// The importer's converter registry: ONNX op type and since-version -> converter, filled
// once by the op-family files; plus the small helpers converters share.
#include "ImporterImpl.h"

#include "llvm/Support/ErrorHandling.h"

namespace shardc::importer {

void ConverterRegistry::onOp(llvm::StringRef op, int64_t sinceVersion, Converter fn) {
  auto &entries = byOp[op.str()];
  for (const Entry &e : entries)
    if (e.sinceVersion == sinceVersion)
      llvm::report_fatal_error(llvm::Twine("importer: ") + op + " is registered twice for opset " +
                               llvm::Twine(sinceVersion));
  auto at = llvm::find_if(entries, [&](const Entry &e) { return e.sinceVersion > sinceVersion; });
  entries.insert(at, Entry{sinceVersion, std::move(fn)});
}

const ConverterRegistry::Entry *ConverterRegistry::lookup(llvm::StringRef op, int64_t opset) const {
  auto it = byOp.find(op.str());
  if (it == byOp.end())
    return nullptr;
  const Entry *best = nullptr;
  for (const Entry &e : it->second) // sorted by since-version
    if (e.sinceVersion <= opset)
      best = &e;
  return best;
}

std::optional<int64_t> ConverterRegistry::earliestSince(llvm::StringRef op) const {
  auto it = byOp.find(op.str());
  if (it == byOp.end() || it->second.empty())
    return std::nullopt;
  return it->second.front().sinceVersion;
}

const ConverterRegistry &converterRegistry() {
  static const ConverterRegistry registry = [] {
    ConverterRegistry r;
    registerElementwiseConverters(r);
    registerShapeConverters(r);
    registerConstantConverters(r);
    registerNNConverters(r);
    registerLogicConverters(r);
    registerIndexConverters(r);
    registerContractionConverters(r);
    registerAttentionConverters(r);
    registerMoeConverters(r);
    return r;
  }();
  return registry;
}

LogicalResult needInputs(NodeCtx &n, unsigned count) {
  if (n.inputs.size() < count)
    return n.im.fail("expects " + llvm::Twine(count) + " inputs, got " + llvm::Twine(n.inputs.size()));
  for (unsigned i = 0; i < count; ++i)
    if (!n.inputs[i])
      return n.im.fail("input " + llvm::Twine(i) + " is required");
  return success();
}

FailureOr<SmallVector<int64_t>> constOperand(NodeCtx &n, unsigned i, llvm::StringRef what) {
  auto v = n.im.constInts(n.in(i));
  if (!v) {
    (void)n.im.fail(what + " must be a constant (shapes are static in shardc)");
    return failure();
  }
  return *v;
}

} // namespace shardc::importer

namespace shardc {

std::vector<SupportedOnnxOp> supportedOnnxOps() {
  std::vector<SupportedOnnxOp> ops;
  for (const auto &[name, entries] : importer::converterRegistry().ops()) {
    SupportedOnnxOp op{name, {}};
    for (const auto &e : entries)
      op.sinceVersions.push_back(e.sinceVersion);
    ops.push_back(std::move(op));
  }
  return ops;
}

std::string SupportedOnnxOp::str() const {
  std::string s = op + " (";
  for (size_t i = 0; i < sinceVersions.size(); ++i)
    s += (i ? ", " : "") + std::to_string(sinceVersions[i]) + "+";
  return s + ")";
}

} // namespace shardc
