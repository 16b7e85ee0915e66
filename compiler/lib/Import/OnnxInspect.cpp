// `shardc inspect`: a summary of an ONNX file that works on models the importer cannot
// convert; its list of unsupported ops comes from the importer's converter registry.
#include "ImporterImpl.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <google/protobuf/io/coded_stream.h>

#include <cstdio>

namespace shardc {

using namespace importer;

llvm::Expected<std::string> summarizeOnnxFile(llvm::StringRef path) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, false, false);
  if (!bufOr)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: cannot open: %s", path.str().c_str(),
                                   bufOr.getError().message().c_str());
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream cis(reinterpret_cast<const uint8_t *>((*bufOr)->getBufferStart()),
                                             (int)std::min<size_t>((*bufOr)->getBufferSize(), INT32_MAX));
  cis.SetTotalBytesLimit(INT32_MAX);
  if (!model.ParseFromCodedStream(&cis) || !model.has_graph())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: not a valid ONNX model", path.str().c_str());
  std::string out;
  llvm::raw_string_ostream os(out);
  const auto &g = model.graph();
  os << "model: " << path << "\n  ir_version " << model.ir_version() << ", producer " << model.producer_name() << " "
     << model.producer_version() << "\n  opsets:";
  for (const auto &o : model.opset_import())
    os << " " << (o.domain().empty() ? "ai.onnx" : o.domain()) << "=" << o.version();
  llvm::StringSet<> inits;
  int64_t initBytes = 0;
  for (const auto &t : g.initializer()) {
    inits.insert(t.name());
    initBytes += t.raw_data().size();
  }
  MLIRContext typeCtx;
  auto printValue = [&](const onnx::ValueInfoProto &vi) {
    os << "  " << vi.name() << ": ";
    const auto &tt = vi.type().tensor_type();
    std::string dt = "?";
    if (auto et = elementTypeOf(&typeCtx, tt.elem_type())) {
      llvm::raw_string_ostream ds(dt);
      dt.clear();
      ds << *et;
    }
    os << dt << " [";
    for (auto [i, d] : llvm::enumerate(tt.shape().dim()))
      os << (i ? ", " : "") << (d.has_dim_value() ? std::to_string(d.dim_value()) : (d.dim_param().empty() ? "?" : d.dim_param()));
    os << "]\n";
  };
  os << "\ninputs:\n";
  for (const auto &vi : g.input())
    if (!inits.contains(vi.name()))
      printValue(vi);
  os << "outputs:\n";
  for (const auto &vi : g.output())
    printValue(vi);
  os << "initializers: " << g.initializer_size() << " (" << initBytes << " bytes inline)\n";
  {
    // What `mode: train` trains by default (docs/training.md); plan globs may override it.
    TrainableInfo ti = classifyTrainable(g);
    int64_t elems = 0;
    for (const auto &t : g.initializer())
      if (ti.trainable.contains(t.name())) {
        int64_t n = 1;
        for (int64_t d : t.dims())
          n *= d;
        elems += n;
      }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f M", elems / 1e6);
    os << "trainable: " << ti.trainable.size() << " parameters, " << buf << " elements; frozen: "
       << ti.frozenInitializers;
    for (auto [i, b] : llvm::enumerate(ti.frozenBuffers))
      os << (i ? " " : " (buffers ") << b;
    os << (ti.frozenBuffers.empty() ? "" : ")") << "\n";
  }
  std::map<std::string, int> opCounts, pathCounts;
  std::map<std::string, std::string> unsupported;
  // The converters in force at the model's default-domain opset, as the importer picks them.
  int64_t opset = 0;
  for (const auto &o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      opset = o.version();
  const ConverterRegistry &registry = converterRegistry();
  const unsigned scopeDrop = torchScriptScopeDrop(g);
  for (const auto &n : g.node()) {
    opCounts[n.op_type()]++;
    ModuleInfo mi = moduleOf(n, scopeDrop);
    if (!mi.path.empty())
      pathCounts[mi.path]++;
    bool defaultDomain = n.domain().empty() || n.domain() == "ai.onnx";
    if (defaultDomain && registry.lookup(n.op_type(), opset))
      continue;
    std::string where = "'" + n.name() + "'" + (mi.path.empty() ? "" : " (" + mi.path + ")");
    if (auto since = registry.earliestSince(n.op_type()); defaultDomain && since)
      where += "; supported from opset " + std::to_string(*since) + ", the model has " + std::to_string(opset);
    unsupported.emplace(n.op_type(), where);
  }
  os << "ops (" << g.node_size() << " nodes):";
  for (auto &[op, c] : opCounts)
    os << " " << op << "=" << c;
  os << "\nmodule paths (" << pathCounts.size() << "):\n";
  for (auto &[p, c] : pathCounts)
    os << "  " << p << "  (" << c << " nodes)\n";
  os << "unsupported ops: " << (unsupported.empty() ? "none" : "") << "\n";
  for (auto &[op, where] : unsupported)
    os << "  " << op << "  first at node " << where << "\n";
  return out;
}

} // namespace shardc
