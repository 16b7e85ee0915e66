// Protobuf-level helpers of the ONNX importer: where each initializer's raw_data lies in the
// file, ONNX element types as MLIR types, and the module path and class of a node.
#include "ImporterImpl.h"

#include "llvm/ADT/StringExtras.h"

#include <set>

namespace shardc::importer {

namespace {

//===----------------------------------------------------------------------===//
// Wire-level scan: where each initializer's raw_data lies in the model file, so weights can
// be referenced by offset instead of copied (the generated classes do not expose offsets).
//===----------------------------------------------------------------------===//

struct WireReader {
  const uint8_t *p, *end;
  bool ok = true;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80))
        return v;
    }
    ok = false;
    return 0;
  }
  // Skips a field of wire type `wt`; returns false on malformed input.
  bool skip(unsigned wt) {
    switch (wt) {
    case 0: varint(); return ok;
    case 1: if (end - p < 8) return ok = false; p += 8; return true;
    case 5: if (end - p < 4) return ok = false; p += 4; return true;
    case 2: {
      uint64_t n = varint();
      if (!ok || n > uint64_t(end - p)) return ok = false;
      p += n;
      return true;
    }
    default: return ok = false;
    }
  }
};

} // namespace

void locateRawData(const uint8_t *base, size_t size, llvm::StringMap<std::pair<uint64_t, uint64_t>> &out) {
  WireReader model{base, base + size};
  while (model.ok && model.p < model.end) {
    uint64_t tag = model.varint();
    if (!model.ok) return;
    if (tag == ((7u << 3) | 2)) { // graph
      uint64_t n = model.varint();
      if (!model.ok || n > uint64_t(model.end - model.p)) return;
      WireReader graph{model.p, model.p + n};
      while (graph.ok && graph.p < graph.end) {
        uint64_t gtag = graph.varint();
        if (!graph.ok) return;
        if (gtag == ((5u << 3) | 2)) { // initializer
          uint64_t tn = graph.varint();
          if (!graph.ok || tn > uint64_t(graph.end - graph.p)) return;
          WireReader t{graph.p, graph.p + tn};
          std::string name;
          std::pair<uint64_t, uint64_t> raw{0, 0};
          bool hasRaw = false;
          while (t.ok && t.p < t.end) {
            uint64_t ttag = t.varint();
            if (!t.ok) break;
            unsigned field = ttag >> 3, wt = ttag & 7;
            if ((field == 8 || field == 9) && wt == 2) {
              uint64_t len = t.varint();
              if (!t.ok || len > uint64_t(t.end - t.p)) break;
              if (field == 8)
                name.assign(reinterpret_cast<const char *>(t.p), len);
              else {
                raw = {uint64_t(t.p - base), len};
                hasRaw = true;
              }
              t.p += len;
            } else if (!t.skip(wt)) {
              break;
            }
          }
          if (hasRaw && !name.empty())
            out[name] = raw;
          graph.p += tn;
        } else if (!graph.skip(gtag & 7)) {
          return;
        }
      }
      model.p += n;
    } else if (!model.skip(tag & 7)) {
      return;
    }
  }
}

std::optional<Type> elementTypeOf(MLIRContext *ctx, int32_t dt) {
  switch (dt) {
  case onnx::TensorProto::FLOAT: return Float32Type::get(ctx);
  case onnx::TensorProto::DOUBLE: return Float64Type::get(ctx);
  case onnx::TensorProto::FLOAT16: return Float16Type::get(ctx);
  case onnx::TensorProto::BFLOAT16: return BFloat16Type::get(ctx);
  case onnx::TensorProto::INT64: return IntegerType::get(ctx, 64);
  case onnx::TensorProto::INT32: return IntegerType::get(ctx, 32);
  case onnx::TensorProto::INT8: return IntegerType::get(ctx, 8);
  case onnx::TensorProto::UINT8: return IntegerType::get(ctx, 8, IntegerType::Unsigned);
  case onnx::TensorProto::BOOL: return IntegerType::get(ctx, 1);
  default: return std::nullopt;
  }
}

int64_t byteWidth(Type t) { return t.isInteger(1) ? 1 : (t.getIntOrFloatBitWidth() + 7) / 8; }

std::string shapeStr(ArrayRef<int64_t> s) {
  std::string r;
  for (auto [i, d] : llvm::enumerate(s))
    r += (i ? "x" : "") + std::to_string(d);
  return r.empty() ? "scalar" : r;
}

static std::vector<std::string> parsePyList(llvm::StringRef s) {
  std::vector<std::string> items;
  s = s.trim();
  if (!s.consume_front("[") || !s.consume_back("]"))
    return items;
  while (!s.empty()) {
    s = s.ltrim(" ,");
    if (s.empty())
      break;
    char q = s.front();
    if (q != '\'' && q != '"')
      break;
    size_t close = s.find(q, 1);
    if (close == StringRef::npos)
      break;
    items.push_back(s.substr(1, close - 1).str());
    s = s.drop_front(close + 1);
  }
  return items;
}


std::optional<int64_t> embeddingPaddingIdx(const onnx::NodeProto &node) {
  for (const auto &kv : node.metadata_props()) {
    if (kv.key() != "pkg.torch.onnx.fx_node")
      continue;
    // `... aten.embedding.default](args = (%weight, %ids, 0), kwargs = {})`: a third argument
    // is the padding index (-1: none).
    llvm::StringRef s(kv.value());
    size_t at = s.find("aten.embedding.default](args = (");
    if (at == llvm::StringRef::npos)
      return std::nullopt;
    s = s.drop_front(at + llvm::StringRef("aten.embedding.default](args = (").size());
    s = s.take_until([](char c) { return c == ')'; });
    llvm::SmallVector<llvm::StringRef> args;
    s.split(args, ',');
    int64_t padding;
    if (args.size() >= 3 && !args[2].trim().getAsInteger(10, padding) && padding >= 0)
      return padding;
    return std::nullopt;
  }
  return std::nullopt;
}

ModuleInfo moduleOf(const onnx::NodeProto &node, unsigned scopeDrop) {
  ModuleInfo info;
  for (const auto &kv : node.metadata_props()) {
    if (kv.key() == "pkg.torch.onnx.name_scopes") {
      auto scopes = parsePyList(kv.value());
      // The last entry names the op itself; the one before is its deepest module.
      if (scopes.size() >= 2)
        info.path = scopes[scopes.size() - 2];
    } else if (kv.key() == "pkg.torch.onnx.class_hierarchy") {
      auto classes = parsePyList(kv.value());
      if (classes.size() >= 2)
        info.cls = classes[classes.size() - 2];
    }
  }
  if (info.path.empty() && llvm::StringRef(node.name()).starts_with("/")) {
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(node.name()).drop_front().split(parts, '/');
    if (parts.size() >= 2) {
      parts.pop_back();
      if (parts.size() > scopeDrop)
        parts.erase(parts.begin(), parts.begin() + scopeDrop);
      info.path = llvm::join(parts, ".");
    }
  }
  return info;
}

unsigned torchScriptScopeDrop(const onnx::GraphProto &graph) {
  // Every module path that owns an initializer, at any depth (`a.b.c.weight`: a, a.b, a.b.c).
  std::set<std::string> owners;
  for (const auto &t : graph.initializer()) {
    if (!looksLikeModuleParam(t.name()))
      continue;
    llvm::StringRef name(t.name());
    for (size_t dot = name.find('.'); dot != llvm::StringRef::npos; dot = name.find('.', dot + 1))
      owners.insert(name.take_front(dot).str());
  }
  if (owners.empty())
    return 0;
  unsigned best = 0;
  size_t bestCount = 0;
  for (unsigned drop = 0; drop <= 3; ++drop) {
    size_t count = 0;
    for (const auto &node : graph.node()) {
      llvm::StringRef name(node.name());
      if (!name.starts_with("/") || node.metadata_props_size() > 0)
        continue;
      llvm::SmallVector<llvm::StringRef> parts;
      name.drop_front().split(parts, '/');
      if (parts.size() < drop + 2)
        continue;
      parts.pop_back();
      count += owners.count(llvm::join(llvm::ArrayRef(parts).drop_front(drop), "."));
    }
    if (count > bestCount) {
      best = drop;
      bestCount = count;
    }
  }
  return best;
}

bool looksLikeModuleParam(llvm::StringRef name) {
  return name.contains('.') && !name.starts_with("onnx::") && !name.starts_with("val_") &&
         !name.starts_with("/");
}

// The exporter names a folded aten op's output after the op (`add_4`, `view_3`): those of the
// ops that only lay out or select the parameter's elements (GPT-2's learned positions,
// `embedding_1` = wpe[arange(S)], read constant indices but hold wpe's own rows).
static bool isLayoutFoldName(llvm::StringRef name) {
  llvm::StringRef op = name.rtrim("0123456789");
  op.consume_back("_");
  return llvm::is_contained({"view", "reshape", "_reshape_alias", "_unsafe_view", "unsqueeze", "squeeze", "flatten",
                             "permute", "transpose", "t", "_to_copy", "clone", "contiguous", "alias", "detach",
                             "embedding", "slice", "select", "index", "narrow", "expand"},
                            op);
}

TrainableInfo classifyTrainable(const onnx::GraphProto &graph) {
  constexpr llvm::StringLiteral kKind = "pkg.torch.export.graph_signature.InputSpec.kind";
  constexpr llvm::StringLiteral kFolded = "pkg.onnxscript.optimizer.folded_from";
  constexpr llvm::StringLiteral kSignature = "pkg.torch.export.ExportedProgram.graph_signature";
  // Parameter/buffer name -> kind: the graph signature's lines
  // `p_m_lm_head_weight: PARAMETER target='m.lm_head.weight'`, then the value_infos' own kinds.
  llvm::StringMap<std::string> kindOf, foldedFrom;
  for (const auto &kv : graph.metadata_props()) {
    if (kv.key() != kSignature)
      continue;
    llvm::SmallVector<llvm::StringRef> lines;
    llvm::StringRef(kv.value()).split(lines, '\n');
    for (llvm::StringRef line : lines) {
      auto [head, rest] = line.split("target='");
      if (rest.empty())
        continue;
      auto [name, kind] = head.split(':');
      (void)name;
      llvm::StringRef target = rest.take_until([](char c) { return c == '\''; });
      kindOf[target] = kind.trim().split(' ').first.str();
    }
  }
  for (const auto &vi : graph.value_info())
    for (const auto &kv : vi.metadata_props()) {
      if (kv.key() == kKind)
        kindOf[vi.name()] = kv.value();
      else if (kv.key() == kFolded)
        foldedFrom[vi.name()] = kv.value();
    }
  TrainableInfo info;
  llvm::StringSet<> buffers;
  auto noteBuffer = [&](llvm::StringRef name) {
    if (buffers.insert(name).second)
      info.frozenBuffers.push_back(name.str());
  };
  for (const auto &t : graph.initializer()) {
    auto k = kindOf.find(t.name());
    if (k != kindOf.end()) {
      if (k->second == "PARAMETER")
        info.trainable.insert(t.name());
      else if (k->second == "BUFFER") {
        noteBuffer(t.name());
        ++info.frozenInitializers;
      }
      continue;
    }
    auto f = foldedFrom.find(t.name());
    if (f == foldedFrom.end())
      continue;
    bool param = false, buffer = false, other = false;
    std::string paramName;
    for (const std::string &src : parsePyList(f->second)) {
      auto sk = kindOf.find(src);
      if (sk == kindOf.end()) {
        other = true;
        continue;
      }
      if (sk->second == "PARAMETER" && !param)
        paramName = src;
      param |= sk->second == "PARAMETER";
      if (sk->second == "BUFFER") {
        buffer = true;
        noteBuffer(src);
      }
    }
    if (param && !buffer) {
      info.trainable.insert(t.name());
      // A transpose or cast folds the parameter alone (its permutation or dtype is an
      // attribute); a reshape reads a shape constant too, but its output is named after the
      // aten view/reshape. Any other fold that read more than parameters mixed in constants.
      if (other && !isLayoutFoldName(t.name()))
        info.foldedWithConstants[t.name()] = paramName;
    }
    info.frozenInitializers += buffer;
  }
  return info;
}

} // namespace shardc::importer
