// Code generation of fused elementwise kernels (see FusedKernels.h and FusedPrelude.h).
#include "shardc/Codegen/FusedKernels.h"

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

// The offset of output element `i` in an input of `in` broadcast (right-aligned) to `out`.
std::string broadcastIndex(ArrayRef<int64_t> in, ArrayRef<int64_t> out) {
  int64_t inNumel = 1, outNumel = 1;
  for (int64_t d : in)
    inNumel *= d;
  for (int64_t d : out)
    outNumel *= d;
  if (inNumel == outNumel)
    return "i"; // same elements in the same order (leading 1s only)
  if (inNumel == 1)
    return "0";
  std::vector<int64_t> outStride(out.size(), 1), inStride(in.size(), 1);
  for (int64_t d = (int64_t)out.size() - 2; d >= 0; --d)
    outStride[d] = outStride[d + 1] * out[d + 1];
  for (int64_t d = (int64_t)in.size() - 2; d >= 0; --d)
    inStride[d] = inStride[d + 1] * in[d + 1];
  SmallVector<std::string> terms;
  int64_t off = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] == 1)
      continue;
    std::string coord = "(i / " + std::to_string(outStride[d + off]) + "LL % " + std::to_string(out[d + off]) + "LL)";
    terms.push_back(inStride[d] == 1 ? coord : coord + " * " + std::to_string(inStride[d]) + "LL");
  }
  return "(" + llvm::join(terms, " + ") + ")";
}

} // namespace

StringRef fusedKernelPrelude() { return kFusedPreludeText; }

StringRef cpuKernelTarget() {
#if defined(__x86_64__)
  return "x86_64-linux";
#elif defined(__aarch64__)
  return "aarch64-linux";
#else
  return "unknown";
#endif
}

llvm::Expected<FusedKernelSource> generateFusedKernel(sc::FusedOp op) {
  Block &body = op.getBody().front();
  ArrayRef<int64_t> outShape = cast<RankedTensorType>(op.getResult(0).getType()).getShape();
  int64_t numel = 1;
  for (int64_t d : outShape)
    numel *= d;

  std::string params, loop;
  llvm::raw_string_ostream ps(params), ls(loop);
  llvm::DenseMap<Value, std::string> names;
  SmallVector<std::string> casts; // host entry: one cast per argument
  for (auto [j, arg] : llvm::enumerate(body.getArguments())) {
    auto t = cast<RankedTensorType>(arg.getType());
    auto st = storageType(t.getElementType());
    if (!st)
      return failAt(op, "fused kernel input of unsupported type");
    std::string ptr = "in" + std::to_string(j);
    ps << (j ? ", " : "") << "const " << *st << " *__restrict__ " << ptr;
    casts.push_back("(const " + st->str() + " *)a[" + std::to_string(j) + "]");
    std::string v = "x" + std::to_string(j);
    ls << "    float " << v << " = " << loadExpr(t.getElementType(), ptr, broadcastIndex(t.getShape(), outShape))
       << ";\n";
    names[arg] = v;
  }
  size_t nin = body.getNumArguments();
  for (auto [k, t] : llvm::enumerate(op.getResultTypes())) {
    auto st = storageType(cast<RankedTensorType>(t).getElementType());
    if (!st)
      return failAt(op, "fused kernel output of unsupported type");
    ps << ", " << *st << " *__restrict__ out" << k;
    casts.push_back("(" + st->str() + " *)a[" + std::to_string(nin + k) + "]");
  }

  int counter = 0;
  for (Operation &inner : body.without_terminator()) {
    auto arg = [&](unsigned i) { return names.lookup(inner.getOperand(i)); };
    std::string expr;
    bool ok = true;
    llvm::TypeSwitch<Operation *>(&inner)
        .Case<sc::ConstantOp>([&](sc::ConstantOp c) {
          auto dense = cast<DenseElementsAttr>(c.getValue());
          expr = floatLiteral(dense.getSplatValue<APFloat>().convertToFloat());
        })
        .Case<sc::AddOp>([&](auto) { expr = arg(0) + " + " + arg(1); })
        .Case<sc::SubOp>([&](auto) { expr = arg(0) + " - " + arg(1); })
        .Case<sc::MulOp>([&](auto) { expr = arg(0) + " * " + arg(1); })
        .Case<sc::DivOp>([&](auto) { expr = arg(0) + " / " + arg(1); })
        .Case<sc::PowOp>([&](auto) { expr = "sc_pow(" + arg(0) + ", " + arg(1) + ")"; })
        .Case<sc::NegOp>([&](auto) { expr = "-" + arg(0); })
        .Case<sc::ExpOp>([&](auto) { expr = "sc_exp(" + arg(0) + ")"; })
        .Case<sc::LogOp>([&](auto) { expr = "sc_log(" + arg(0) + ")"; })
        .Case<sc::SqrtOp>([&](auto) { expr = "sc_sqrt(" + arg(0) + ")"; })
        .Case<sc::ReciprocalOp>([&](auto) { expr = "1.0f / " + arg(0); })
        .Case<sc::TanhOp>([&](auto) { expr = "sc_tanh(" + arg(0) + ")"; })
        .Case<sc::SigmoidOp>([&](auto) { expr = "sc_sigmoid(" + arg(0) + ")"; })
        .Case<sc::ErfOp>([&](auto) { expr = "sc_erf(" + arg(0) + ")"; })
        .Case<sc::CosOp>([&](auto) { expr = "sc_cos(" + arg(0) + ")"; })
        .Case<sc::SinOp>([&](auto) { expr = "sc_sin(" + arg(0) + ")"; })
        .Case<sc::SiluOp>([&](auto) { expr = "sc_silu(" + arg(0) + ")"; })
        .Case<sc::GeluOp>([&](sc::GeluOp g) {
          expr = (g.getApproximate() == "tanh" ? "sc_gelu_tanh(" : "sc_gelu_erf(") + arg(0) + ")";
        })
        .Case<sc::CastOp>([&](auto) { expr = arg(0); })
        .Default([&](Operation *) { ok = false; });
    if (!ok)
      return failAt(&inner, "op '" + inner.getName().getStringRef() + "' cannot be fused");
    Type elt = cast<RankedTensorType>(inner.getResult(0).getType()).getElementType();
    if (elt.isBF16())
      expr = "sc_round_bf16(" + expr + ")";
    else if (elt.isF16())
      expr = "sc_round_f16(" + expr + ")";
    std::string v = "t" + std::to_string(counter++);
    ls << "    float " << v << " = " << expr << ";\n";
    names[inner.getResult(0)] = v;
  }
  auto yield = cast<sc::FusedYieldOp>(body.getTerminator());
  for (auto [k, v] : llvm::enumerate(yield.getValues())) {
    Type elt = cast<RankedTensorType>(v.getType()).getElementType();
    ls << "    out" << k << "[i] = " << storeExpr(elt, names.lookup(v)) << ";\n";
  }
  ps.flush();
  ls.flush();

  // The text with a placeholder name; the name is its hash, so equal bodies share a kernel.
  auto textWith = [&](StringRef name) {
    std::string t;
    llvm::raw_string_ostream os(t);
    os << "SC_KERNEL " << name << "(" << params << ") {\n  SC_LOOP(i, " << numel << "LL) {\n"
       << loop << "  }\n}\n"
       << "#if !defined(__CUDACC__)\nextern \"C\" __attribute__((visibility(\"default\"))) void " << name
       << "_host(void *const *a) { " << name << "(" << llvm::join(casts, ", ") << "); }\n#endif\n";
    return t;
  };
  std::string hashed = textWith("@NAME@");
  FusedKernelSource src;
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
  if (auto ec = llvm::sys::fs::create_directories(dir))
    return err("cannot create the cache directory " + dir + ": " + ec.message());
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
