// Code generation of fused elementwise kernels (see FusedKernels.h and FusedPrelude.h).
#include "shardc/Codegen/FusedKernels.h"
#include "shardc/Codegen/IndexExpr.h"
#include "shardc/kernels/KernelTarget.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <cstdio>

using namespace mlir;

namespace shardc {

namespace {

#include "FusedPreludeText.inc" // kFusedPreludeText

llvm::Error failAt(Operation *op, const llvm::Twine &msg) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << op->getLoc() << ": " << msg;
  return llvm::createStringError(llvm::inconvertibleErrorCode(), text);
}

// Storage type of an element type in the kernel's signature.
std::optional<StringRef> storageType(Type t) {
  if (t.isF32())
    return StringRef("float");
  if (t.isBF16() || t.isF16())
    return StringRef("unsigned short");
  return std::nullopt;
}

std::string loadExpr(Type t, const std::string &ptr, const std::string &idx) {
  if (t.isBF16())
    return "sc_from_bf16(" + ptr + "[" + idx + "])";
  if (t.isF16())
    return "sc_from_f16(" + ptr + "[" + idx + "])";
  return ptr + "[" + idx + "]";
}

std::string storeExpr(Type t, const std::string &v) {
  if (t.isBF16())
    return "sc_to_bf16(" + v + ")";
  if (t.isF16())
    return "sc_to_f16(" + v + ")";
  return v;
}

// The prelude's name for a storage type: sc_load4_<suffix>, sc_store4_<suffix>.
std::string typeSuffix(Type t) { return t.isBF16() ? "bf16" : t.isF16() ? "f16" : "f32"; }

// A float literal that both compilers read exactly (C++17 hexadecimal floats).
std::string floatLiteral(float f) {
  if (std::isnan(f))
    return "sc_bits_to_f32(0x7fc00000u)";
  if (std::isinf(f))
    return f > 0 ? "sc_bits_to_f32(0x7f800000u)" : "sc_bits_to_f32(0xff800000u)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%af", f);
  return buf;
}

} // namespace

StringRef fusedKernelPrelude() { return kFusedPreludeText; }

StringRef cpuKernelTarget() { return kernels::hostKernelTarget(); }

namespace {

// Emits the kernel's per-element code. Values of the region are of two kinds:
//  - views: a block argument, or a data-movement op (transpose, reshape, slice, expand) of a
//    view; they are never materialised, but loaded at whatever coordinates a reader needs
//    (the index arithmetic composes through the chain);
//  - computed values: every other op, evaluated at the current element and rounded to its
//    result type.
// One instance per pass over the elements (a row kernel runs its prologue again in the final
// pass rather than keeping a row in registers).
class ElementEmitter {
public:
  // `narrow`: index arithmetic in 32 bits (`unsigned iu`, declared by the caller), when every
  // offset the kernel computes fits.
  // `lanes` > 1: the code computes lane `lane` of `lanes` consecutive elements (vectorised
  // element kernels); an input read contiguously across the lanes is loaded once for all of
  // them before the lane loop (vectorLoads()), read as v<N>[lane] inside it.
  ElementEmitter(Block &body, ArrayRef<int64_t> outShape, llvm::raw_ostream &os, std::string indent, bool narrow,
                 int64_t lanes = 1)
      : body_(body), outShape_(outShape), os_(os), indent_(std::move(indent)), narrow_(narrow), lanes_(lanes) {
    // The current element's coordinates in the output, from its linear index i.
    int64_t stride = 1;
    coords_.resize(outShape.size());
    for (int64_t d = (int64_t)outShape.size() - 1; d >= 0; --d) {
      coords_[d] = codegen::IndexExpr::digit(stride, d == 0 ? 0 : outShape[d]);
      stride *= outShape[d];
    }
    numel_ = stride;
  }

  bool vectorFailed() const { return vectorFailed_; }
  const std::vector<std::string> &vectorLoads() const { return vectorLoads_; }

  static bool isView(Value v) {
    if (isa<BlockArgument>(v))
      return true;
    Operation *d = v.getDefiningOp();
    return isa_and_present<sc::TransposeOp, sc::ReshapeOp, sc::SqueezeOp, sc::UnsqueezeOp, sc::SliceOp,
                           sc::ExpandOp, sc::ConcatOp>(d);
  }

  // `rowExpr` gives the expression of the row op (with the row's statistics in scope).
  llvm::Error emit(llvm::function_ref<bool(Operation *)> include,
                   llvm::function_ref<std::string(Operation *)> rowExpr = {}) {
    for (Operation &inner : body_.without_terminator()) {
      if (!include(&inner) || isView(inner.getResult(0)))
        continue;
      std::string expr;
      if (rowExpr && isa<sc::RmsNormOp, sc::LayerNormOp, sc::SoftmaxOp, sc::LogSoftmaxOp>(inner)) {
        expr = rowExpr(&inner);
      } else if (auto rot = dyn_cast<sc::RotaryOp>(inner)) {
        expr = rotaryExpr(rot);
      } else if (auto e = elementExpr(&inner)) {
        expr = *e;
      } else {
        return failAt(&inner, "op '" + inner.getName().getStringRef() + "' cannot be fused");
      }
      Type elt = cast<RankedTensorType>(inner.getResult(0).getType()).getElementType();
      if (elt.isBF16())
        expr = "sc_round_bf16(" + expr + ")";
      else if (elt.isF16())
        expr = "sc_round_f16(" + expr + ")";
      std::string v = "t" + std::to_string(counter_++);
      os_ << indent_ << "float " << v << " = " << expr << ";\n";
      names_[inner.getResult(0)] = v;
    }
    return llvm::Error::success();
  }

  // `v` at the current element: a computed value's name, or a view loaded at the output
  // coordinates (right-aligned, broadcast dims at 0).
  std::string name(Value v) {
    if (!isView(v))
      return names_.lookup(v);
    return loadAt(v, aligned(cast<RankedTensorType>(v.getType()).getShape()));
  }

private:
  using Index = codegen::IndexExpr;
  using Coords = SmallVector<Index>;

  std::string text(const Index &e) const { return e.str(numel_, narrow_); }
  std::string lit(int64_t v) const { return std::to_string(v) + (narrow_ ? "u" : "LL"); }

  Coords aligned(ArrayRef<int64_t> shape) const {
    Coords c(shape.size());
    int64_t off = (int64_t)outShape_.size() - (int64_t)shape.size();
    for (size_t k = 0; k < shape.size(); ++k)
      if (shape[k] != 1 && off + (int64_t)k >= 0)
        c[k] = coords_[off + k];
    return c;
  }

  static SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
    SmallVector<int64_t> st(shape.size(), 1);
    for (int64_t d = (int64_t)shape.size() - 2; d >= 0; --d)
      st[d] = st[d + 1] * shape[d + 1];
    return st;
  }

  // Input `arg` at element `at`, loaded once per distinct offset expression.
  std::string loadOffset(BlockArgument arg, const Index &at) {
    const std::string offset = text(at);
    Type elt = cast<RankedTensorType>(arg.getType()).getElementType();
    std::string expr = loadExpr(elt, "in" + std::to_string(arg.getArgNumber()), "(" + offset + ")");
    if (lanes_ > 1 && !inline_) {
      Index::Lanes kind = at.lanes(numel_, lanes_);
      if (kind == Index::Lanes::Other) {
        vectorFailed_ = true;
      } else if (kind == Index::Lanes::Contiguous) {
        std::string key = "v" + std::to_string(arg.getArgNumber()) + "@" + offset;
        auto it = loads_.find(key);
        if (it == loads_.end()) {
          std::string v = "v" + std::to_string(vectorLoads_.size());
          vectorLoads_.push_back("float " + v + "[4]; sc_load4_" + typeSuffix(elt) + "(in" +
                                 std::to_string(arg.getArgNumber()) + " + (" + offset + "), " + v + ");");
          it = loads_.emplace(key, v + "[lane]").first;
        }
        expr = it->second;
      }
    }
    if (inline_) // a branch of a concat: loaded only when selected
      return expr;
    std::string key = std::to_string(arg.getArgNumber()) + "@" + offset;
    auto it = loads_.find(key);
    if (it != loads_.end())
      return it->second;
    std::string name = "x" + std::to_string(loads_.size());
    os_ << indent_ << "float " << name << " = " << expr << ";\n";
    loads_[key] = name;
    return name;
  }

  // The linear index of coordinates `c` in a dense tensor of `shape`.
  static Index linearOf(const Coords &c, ArrayRef<int64_t> shape) {
    SmallVector<int64_t> st = stridesOf(shape);
    Index l;
    for (size_t k = 0; k < shape.size(); ++k)
      if (shape[k] != 1)
        l += c[k] * st[k];
    return l;
  }

  // The view `v` at coordinates `c` (one expression per dim of v), as a float.
  std::string loadAt(Value v, Coords c) {
    auto type = cast<RankedTensorType>(v.getType());
    ArrayRef<int64_t> shape = type.getShape();
    if (auto arg = dyn_cast<BlockArgument>(v))
      return loadOffset(arg, linearOf(c, shape));
    Operation *d = v.getDefiningOp();
    if (auto cat = dyn_cast<sc::ConcatOp>(d))
      return concatAt(cat, c);
    if (isa<sc::ConstantOp>(d)) // a splat cloned into the kernel (a concat's padding): its literal
      return names_.lookup(v);
    Value src = d->getOperand(0);
    ArrayRef<int64_t> srcShape = cast<RankedTensorType>(src.getType()).getShape();
    Coords u(srcShape.size());
    if (auto t = dyn_cast<sc::TransposeOp>(d)) {
      for (auto [k, p] : llvm::enumerate(t.getPerm()))
        u[p] = c[k];
    } else if (auto sl = dyn_cast<sc::SliceOp>(d)) {
      for (size_t k = 0; k < srcShape.size(); ++k)
        u[k] = c[k] * sl.getSteps()[k] + Index::constant(sl.getStarts()[k]);
    } else if (isa<sc::ExpandOp>(d)) {
      int64_t off = (int64_t)shape.size() - (int64_t)srcShape.size();
      for (size_t k = 0; k < srcShape.size(); ++k)
        if (srcShape[k] != 1)
          u[k] = c[off + k];
    } else { // reshape, squeeze, unsqueeze: the same elements in the same order
      Index linear = linearOf(c, shape);
      if (auto arg = dyn_cast<BlockArgument>(src)) // contiguous: the linear index is the offset
        return loadOffset(arg, linear);
      SmallVector<int64_t> su = stridesOf(srcShape);
      for (size_t k = 0; k < srcShape.size(); ++k)
        if (srcShape[k] != 1)
          u[k] = linear.cut(su[k], srcShape[k], numel_);
    }
    return loadAt(src, u);
  }

  // A concat at `c`: the part whose range along the axis holds c[axis], each part's load
  // inline in its branch of the selection, so only the selected one reads memory.
  std::string concatAt(sc::ConcatOp cat, const Coords &c) {
    int64_t rank = c.size(), axis = (int64_t)cat.getAxis() < 0 ? (int64_t)cat.getAxis() + rank : (int64_t)cat.getAxis();
    bool wasInline = inline_;
    inline_ = true;
    std::string expr;
    int64_t offset = 0;
    SmallVector<std::string> closes;
    for (auto [k, part] : llvm::enumerate(cat.getInputs())) {
      int64_t size = cast<RankedTensorType>(part.getType()).getDimSize(axis);
      Coords u = c;
      u[axis] = c[axis] + Index::constant(-offset);
      std::string load = loadAt(part, u);
      offset += size;
      if (k + 1 == cat.getInputs().size()) {
        expr += load;
      } else {
        expr += "(" + text(c[axis]) + " < " + lit(offset) + " ? " + load + " : ";
        closes.push_back(")");
      }
    }
    for (auto &cl : closes)
      expr += cl;
    inline_ = wasInline;
    if (inline_)
      return expr;
    std::string name = "x" + std::to_string(loads_.size());
    os_ << indent_ << "float " << name << " = " << expr << ";\n";
    loads_["concat:" + name] = name;
    return name;
  }

  // Rotate-half rotary: y[d] = x[d] c[d] - x[d + h] s[d] in the first half, x[d] c[d] +
  // x[d - h] s[d] in the second, as the library kernel computes it.
  std::string rotaryExpr(sc::RotaryOp rot) {
    ArrayRef<int64_t> xs = cast<RankedTensorType>(rot.getInput().getType()).getShape();
    int64_t half = xs.back() / 2;
    Coords here = aligned(xs), other = here;
    std::string d = text(here.back());
    // The partner moves with the lanes when d does and the half is a whole number of lanes
    // (four lanes never straddle it).
    Index::Lanes partnerLanes = Index::Lanes::Other;
    if (lanes_ > 1 && half % lanes_ == 0 && here.back().lanes(numel_, lanes_) == Index::Lanes::Contiguous)
      partnerLanes = Index::Lanes::Contiguous;
    other.back() = Index::opaque("(" + d + " < " + lit(half) + " ? " + d + " + " + lit(half) + " : " + d + " - " +
                                     lit(half) + ")",
                                 partnerLanes, lanes_);
    std::string x = loadAt(rot.getInput(), here), partner = loadAt(rot.getInput(), other);
    std::string c = name(rot.getCos()), sn = name(rot.getSin());
    return "(" + d + " < " + lit(half) + " ? " + x + " * " + c + " - " + partner + " * " + sn + " : " +
           x + " * " + c + " + " + partner + " * " + sn + ")";
  }

  std::optional<std::string> elementExpr(Operation *inner) {
    auto arg = [&](unsigned i) { return name(inner->getOperand(i)); };
    return llvm::TypeSwitch<Operation *, std::optional<std::string>>(inner)
        .Case<sc::ConstantOp>([&](sc::ConstantOp c) -> std::optional<std::string> {
          auto dense = cast<DenseElementsAttr>(c.getValue());
          return floatLiteral(dense.getSplatValue<APFloat>().convertToFloat());
        })
        // A formula op calls its row of SC_ELEMENTWISE_FORMULAS (the prelude defines sc_op_<row>).
        .Case<sc::ElementwiseOpInterface>([&](sc::ElementwiseOpInterface e) -> std::optional<std::string> {
          std::string call = "sc_op_" + e.getFormula().str() + "(";
          for (unsigned i = 0; i < inner->getNumOperands(); ++i)
            call += (i ? ", " : "") + arg(i);
          return call + ")";
        })
        // The conversion is the load and store around it.
        .Case<sc::CastOp>([&](auto) { return arg(0); })
        .Default([](Operation *) { return std::nullopt; });
  }

  Block &body_;
  ArrayRef<int64_t> outShape_;
  llvm::raw_ostream &os_;
  std::string indent_;
  SmallVector<codegen::IndexExpr> coords_;
  int64_t numel_ = 1;
  bool narrow_ = false;
  int64_t lanes_ = 1;
  bool vectorFailed_ = false;            // a load the lanes cannot share
  std::vector<std::string> vectorLoads_; // declarations before the lane loop
  llvm::DenseMap<Value, std::string> names_;
  std::map<std::string, std::string> loads_; // "arg@offset" -> variable
  bool inline_ = false;                      // loads as expressions (inside a concat)
  int counter_ = 0;
};

std::string doubleLiteral(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", d);
  return buf;
}

} // namespace

llvm::Expected<FusedKernelSource> generateFusedKernel(sc::FusedOp op) {
  Block &body = op.getBody().front();
  ArrayRef<int64_t> outShape = cast<RankedTensorType>(op.getResult(0).getType()).getShape();
  int64_t numel = 1;
  for (int64_t d : outShape)
    numel *= d;

  std::string params;
  llvm::raw_string_ostream ps(params);
  SmallVector<std::string> casts; // host entry: one cast per argument
  for (auto [j, arg] : llvm::enumerate(body.getArguments())) {
    auto st = storageType(cast<RankedTensorType>(arg.getType()).getElementType());
    if (!st)
      return failAt(op, "fused kernel input of unsupported type");
    ps << (j ? ", " : "") << "const " << *st << " *__restrict__ in" << j;
    casts.push_back("(const " + st->str() + " *)a[" + std::to_string(j) + "]");
  }
  size_t nin = body.getNumArguments();
  for (auto [k, t] : llvm::enumerate(op.getResultTypes())) {
    auto st = storageType(cast<RankedTensorType>(t).getElementType());
    if (!st)
      return failAt(op, "fused kernel output of unsupported type");
    ps << (nin + k ? ", " : "") << *st << " *__restrict__ out" << k; // a region may read nothing
    casts.push_back("(" + st->str() + " *)a[" + std::to_string(nin + k) + "]");
  }
  ps.flush();
  auto yield = cast<sc::FusedYieldOp>(body.getTerminator());
  auto stores = [&](ElementEmitter &e, llvm::raw_ostream &os, const std::string &indent) {
    for (auto [k, v] : llvm::enumerate(yield.getValues())) {
      Type elt = cast<RankedTensorType>(v.getType()).getElementType();
      std::string value = e.name(v); // may emit a load first
      os << indent << "out" << k << "[i] = " << storeExpr(elt, value) << ";\n";
    }
  };

  Operation *row = nullptr;
  for (Operation &inner : body.without_terminator())
    if (isa<sc::RmsNormOp, sc::LayerNormOp, sc::SoftmaxOp, sc::LogSoftmaxOp>(inner)) {
      if (row)
        return failAt(op, "a fused kernel holds at most one normalisation");
      row = &inner;
    }

  // 32-bit index arithmetic when the output and every input have fewer than 2^31 elements
  // (every offset a kernel computes lies inside one of them).
  bool narrow = numel < (int64_t(1) << 31);
  for (BlockArgument arg : body.getArguments())
    narrow = narrow && cast<RankedTensorType>(arg.getType()).getNumElements() < (int64_t(1) << 31);
  auto indexLine = [&](const char *indent) {
    return narrow ? std::string(indent) + "const unsigned iu = (unsigned)i;\n" + indent + "(void)iu;\n" : std::string();
  };

  std::string loop;
  llvm::raw_string_ostream ls(loop);
  FusedKernelSource src;
  // Vectorised: four consecutive elements per iteration when every input is read either
  // contiguously across them (one 4-wide load) or the same for all four, the lane loop's
  // body being the scalar code; otherwise one element per iteration.
  bool vectorised = false;
  if (!row && numel % 4 == 0 && !std::getenv("SHARDC_NO_VECTORIZE")) {
    std::string laneBody;
    llvm::raw_string_ostream bs(laneBody);
    ElementEmitter e(body, outShape, bs, "      ", narrow, /*lanes=*/4);
    if (auto err = e.emit([](Operation *) { return true; }))
      return std::move(err);
    SmallVector<std::string> results;
    for (Value v : yield.getValues())
      results.push_back(e.name(v)); // may emit loads
    if (!e.vectorFailed()) {
      vectorised = true;
      ls << "  SC_LOOP(i4, " << numel / 4 << "LL) {\n    const long long i = i4 * 4;\n" << indexLine("    ");
      for (const std::string &decl : e.vectorLoads())
        ls << "    " << decl << "\n";
      for (size_t k = 0; k < results.size(); ++k)
        ls << "    float r" << k << "[4];\n";
      ls << "    for (int lane = 0; lane < 4; ++lane) {\n      const long long i = i4 * 4 + lane;\n"
         << indexLine("      ") << laneBody;
      for (size_t k = 0; k < results.size(); ++k)
        ls << "      r" << k << "[lane] = " << results[k] << ";\n";
      ls << "    }\n";
      for (auto [k, v] : llvm::enumerate(yield.getValues()))
        ls << "    sc_store4_" << typeSuffix(cast<RankedTensorType>(v.getType()).getElementType()) << "(out" << k
           << " + i, r" << k << ");\n";
      ls << "  }\n";
      src.launch = "elements";
      src.count = numel / 4;
    }
  }
  if (!row && !vectorised) {
    ls << "  SC_LOOP(i, " << numel << "LL) {\n" << indexLine("    ");
    ElementEmitter e(body, outShape, ls, "    ", narrow);
    if (auto err = e.emit([](Operation *) { return true; }))
      return std::move(err);
    stores(e, ls, "    ");
    ls << "  }\n";
    src.launch = "elements";
    src.count = numel;
  } else if (row) {
    // A row kernel: per row of C elements, the statistics of the normalised operand (as the
    // library kernels compute them: double sums, in element order on the CPU), then the
    // whole chain with the normalisation applied. The prologue (what the norm reads) is
    // computed again in each pass.
    int64_t c = outShape.back(), rows = numel / std::max<int64_t>(c, 1);
    llvm::DenseSet<Operation *> prologue;
    SmallVector<Value> work{row->getOperand(0)};
    while (!work.empty()) {
      Operation *d = work.pop_back_val().getDefiningOp();
      if (d && d->getBlock() == &body && prologue.insert(d).second)
        for (Value v : d->getOperands())
          work.push_back(v);
    }
    auto inPrologue = [&](Operation *o) { return prologue.contains(o); };
    double epsilon = isa<sc::RmsNormOp>(row)     ? (double)cast<sc::RmsNormOp>(row).getEpsilon().convertToFloat()
                     : isa<sc::LayerNormOp>(row) ? (double)cast<sc::LayerNormOp>(row).getEpsilon().convertToFloat()
                                                 : 0.0;
    std::string cs = std::to_string(c) + "LL";
    auto pass = [&](llvm::function_ref<void(ElementEmitter &)> body_) -> llvm::Error {
      ls << "    SC_COLS(j, " << cs << ") {\n      long long i = r * " << cs << " + j;\n" << indexLine("      ");
      ElementEmitter e(body, outShape, ls, "      ", narrow);
      if (auto err = e.emit(inPrologue))
        return err;
      body_(e);
      ls << "    }\n";
      return llvm::Error::success();
    };
    ls << "  SC_ROWS(r, " << rows << "LL) {\n";
    // The normalised operand inside a pass (a view's load is emitted on the first call, so
    // take the name before writing a statement that uses it).
    auto xName = [&](ElementEmitter &e) { return e.name(row->getOperand(0)); };
    if (isa<sc::SoftmaxOp, sc::LogSoftmaxOp>(row)) {
      // As the library kernel: the row's max (ignoring NaN like std::max), then the sum of
      // exp(x - max) in double.
      ls << "    float row_max = sc_bits_to_f32(0xff800000u);\n";
      if (auto err = pass([&](ElementEmitter &e) {
            std::string x = xName(e);
            ls << "      row_max = row_max < " << x << " ? " << x << " : row_max;\n";
          }))
        return std::move(err);
      ls << "    row_max = sc_row_max(row_max);\n    double sum = 0.0;\n";
      if (auto err = pass([&](ElementEmitter &e) {
            std::string x = xName(e);
            ls << "      sum += sc_exp(" << x << " - row_max);\n";
          }))
        return std::move(err);
      ls << "    sum = sc_row_sum(sum);\n"
         << (isa<sc::SoftmaxOp>(row) ? "    float inv = (float)(1.0 / sum);\n"
                                     : "    float log_sum = (float)sc_log_d(sum);\n");
    } else if (isa<sc::RmsNormOp>(row)) {
      ls << "    double sum_sq = 0.0;\n";
      if (auto err = pass([&](ElementEmitter &e) {
            std::string x = xName(e);
            ls << "      sum_sq += (double)" << x << " * " << x << ";\n";
          }))
        return std::move(err);
      ls << "    sum_sq = sc_row_sum(sum_sq);\n"
         << "    float inv = (float)(1.0 / sc_sqrt_d(sum_sq / " << c << ".0 + " << doubleLiteral(epsilon) << "));\n";
    } else {
      ls << "    double sum = 0.0, sum_sq = 0.0;\n";
      if (auto err = pass([&](ElementEmitter &e) {
            std::string x = xName(e);
            ls << "      sum += " << x << ";\n";
          }))
        return std::move(err);
      ls << "    sum = sc_row_sum(sum);\n    double mean = sum / " << c << ".0;\n";
      if (auto err = pass([&](ElementEmitter &e) {
            std::string x = xName(e);
            ls << "      sum_sq += (" << x << " - mean) * (" << x << " - mean);\n";
          }))
        return std::move(err);
      ls << "    sum_sq = sc_row_sum(sum_sq);\n"
         << "    float m = (float)mean, inv = (float)(1.0 / sc_sqrt_d(sum_sq / " << c << ".0 + "
         << doubleLiteral(epsilon) << "));\n";
    }
    ls << "    SC_COLS(j, " << cs << ") {\n      long long i = r * " << cs << " + j;\n" << indexLine("      ");
    ElementEmitter e(body, outShape, ls, "      ", narrow);
    auto rowExpr = [&](Operation *n) -> std::string {
      std::string xv = e.name(n->getOperand(0));
      if (isa<sc::SoftmaxOp>(n))
        return "sc_exp(" + xv + " - row_max) * inv";
      if (isa<sc::LogSoftmaxOp>(n))
        return "(" + xv + " - row_max) - log_sum";
      std::string sv = e.name(n->getOperand(1));
      if (isa<sc::RmsNormOp>(n))
        return xv + " * inv * " + sv;
      std::string bias = n->getNumOperands() > 2 ? e.name(n->getOperand(2)) : std::string("0.0f");
      return "(" + xv + " - m) * inv * " + sv + " + " + bias;
    };
    if (auto err = e.emit([](Operation *) { return true; }, rowExpr))
      return std::move(err);
    stores(e, ls, "      ");
    ls << "    }\n  }\n";
    src.launch = "rows";
    src.count = rows;
  }
  ls.flush();

  // The text with a placeholder name; the name is its hash, so equal bodies share a kernel.
  auto textWith = [&](StringRef name) {
    std::string t;
    llvm::raw_string_ostream os(t);
    os << "SC_KERNEL " << name << "(" << params << ") {\n" << loop << "}\n"
       << "#if !defined(__CUDACC__)\nextern \"C\" __attribute__((visibility(\"default\"))) void " << name
       << "_host(void *const *a) { " << name << "(" << llvm::join(casts, ", ") << "); }\n#endif\n";
    return t;
  };
  std::string hashed = textWith("@NAME@");
  src.name = "sc_fused_" + llvm::utohexstr(llvm::xxh3_64bits(hashed), /*LowerCase=*/true);
  src.text = textWith(src.name);
  return src;
}

llvm::Expected<std::string> buildCpuKernelObject(StringRef source) {
  auto err = [](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "fused kernels: " + msg);
  };
  std::string compiler;
  for (const char *var : {"SHARDC_CXX", "CXX"})
    if (auto v = llvm::sys::Process::GetEnv(var); v && !v->empty()) {
      compiler = *v;
      break;
    }
  if (compiler.empty()) {
    auto found = llvm::sys::findProgramByName("c++");
    if (!found)
      return err("no host C++ compiler (set SHARDC_CXX or CXX, or put c++ on PATH)");
    compiler = *found;
  } else if (!llvm::sys::path::is_absolute(compiler)) {
    auto found = llvm::sys::findProgramByName(compiler);
    if (!found)
      return err("host C++ compiler '" + compiler + "' not found on PATH");
    compiler = *found;
  }
  static const char *const kFlags[] = {"-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off",
                                       "-fno-math-errno", "-w"};
  std::string keyText = compiler + "\n" + llvm::join(llvm::ArrayRef(kFlags), " ") + "\n" + source.str();
  std::string key = llvm::utohexstr(llvm::xxh3_64bits(keyText), true);

  llvm::SmallString<256> dir;
  if (auto v = llvm::sys::Process::GetEnv("SHARDC_CACHE_DIR"); v && !v->empty())
    dir = *v;
  else if (auto x = llvm::sys::Process::GetEnv("XDG_CACHE_HOME"); x && !x->empty())
    llvm::sys::path::append(dir, *x, "shardc");
  else if (llvm::sys::path::home_directory(dir))
    llvm::sys::path::append(dir, ".cache", "shardc");
  else
    llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, dir);
  llvm::sys::path::append(dir, "kernels");
  if (auto ec = llvm::sys::fs::create_directories(dir)) {
    // An unwritable home (a CI sandbox) must not stop a compile: build in the temp dir.
    llvm::SmallString<256> tmp;
    llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, tmp);
    llvm::sys::path::append(tmp, "shardc-kernels");
    if (auto ec2 = llvm::sys::fs::create_directories(tmp))
      return err("cannot create the cache directory " + dir + " (" + ec.message() + ") or " + tmp + " (" +
                 ec2.message() + ")");
    dir = tmp;
  }
  llvm::SmallString<256> object(dir);
  llvm::sys::path::append(object, "cpu-" + key + ".so");
  if (auto cached = llvm::MemoryBuffer::getFile(object, /*IsText=*/false))
    return (*cached)->getBuffer().str();

  // Concurrent compiles of the same module (parallel tests) must not share files: each
  // builds under its own names and the first rename wins (the objects are identical).
  std::string unique = std::to_string(llvm::sys::Process::getProcessId()) + "-" +
                       llvm::utohexstr(llvm::xxh3_64bits(std::to_string((uintptr_t)&source) +
                                                         std::to_string(llvm::sys::Process::GetRandomNumber())));
  llvm::SmallString<256> cpp(dir), tmp(dir);
  llvm::sys::path::append(cpp, "cpu-" + key + "." + unique + ".cpp");
  llvm::sys::path::append(tmp, "cpu-" + key + "." + unique + ".so.tmp");
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(cpp, ec);
    if (ec)
      return err("cannot write " + cpp + ": " + ec.message());
    os << source;
  }
  SmallVector<StringRef> args{compiler};
  for (const char *f : kFlags)
    args.push_back(f);
  args.append({"-o", tmp, cpp});
  llvm::SmallString<256> log(dir);
  llvm::sys::path::append(log, "cpu-" + key + "." + unique + ".log");
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log), StringRef(log)};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(compiler, args, std::nullopt, redirects, 0, 0, &message);
  if (rc != 0) {
    auto text = llvm::MemoryBuffer::getFile(log);
    std::string first = text ? (*text)->getBuffer().split('\n').first.str() : message;
    return err(compiler + " failed (exit " + std::to_string(rc) + ") on " + cpp + ": " + first);
  }
  llvm::sys::fs::remove(log);
  llvm::sys::fs::remove(cpp);
  if (auto ec = llvm::sys::fs::rename(tmp, object))
    return err("cannot place " + object + ": " + ec.message());
  auto built = llvm::MemoryBuffer::getFile(object, /*IsText=*/false);
  if (!built)
    return err("cannot read " + object);
  return (*built)->getBuffer().str();
}

} // namespace shardc
