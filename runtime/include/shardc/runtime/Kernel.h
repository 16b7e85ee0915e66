// The kernel interface of the runtime: every step of an artifact names a kernel by its op
// string; the executor resolves buffers to TensorViews and calls it. Kernels never allocate
// arena memory and report errors as strings (the executor adds the step's location).
#pragma once

#include "shardc/runtime/Tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace shardc::rt {

// A step attribute, decoded from the manifest's JSON once at load.
using AttrValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>,
                               std::vector<double>, std::vector<std::string>>;

class Attrs {
public:
  void set(std::string key, AttrValue v) { values_[std::move(key)] = std::move(v); }
  bool has(std::string_view key) const { return values_.find(std::string(key)) != values_.end(); }
  // Typed getters return the default when absent; an int attribute read as double converts.
  int64_t getInt(std::string_view key, int64_t dflt = 0) const;
  double getFloat(std::string_view key, double dflt = 0.0) const;
  bool getBool(std::string_view key, bool dflt = false) const;
  std::string getString(std::string_view key, std::string dflt = "") const;
  std::vector<int64_t> getInts(std::string_view key) const;
  const std::map<std::string, AttrValue, std::less<>> &all() const { return values_; }

private:
  std::map<std::string, AttrValue, std::less<>> values_;
};

struct KernelArgs {
  std::vector<TensorView> in;
  std::vector<TensorView> out;
  const Attrs *attrs = nullptr;
};

// Returns an empty string on success, otherwise a one-line error.
using KernelFn = std::string (*)(const KernelArgs &);

// The step the executor runs itself, on every backend: it writes this rank's index in the
// group of its mesh `axes` (rt::DeviceMesh::groupIndex) as one i64. It reads nothing, so it
// is a load step: the emitter hoists it, the executor refuses it among the run's steps.
inline constexpr std::string_view kProcessIndexStep = "process_index";

// The CPU kernel for `op`, or nullptr when there is none.
KernelFn lookupCpuKernel(std::string_view op);
// Every op the CPU backend implements (for docs and tests).
std::vector<std::string> cpuKernelNames();
// The rows of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h): the values the `formula` step's
// attribute `formula` may take (the dialect's verifier checks each formula op's row is one).
std::vector<std::string> elementwiseFormulaNames();

} // namespace shardc::rt
