// What the executor needs from a device: the kernel for each op and memory those kernels can
// address. The CPU backend is the first; a CUDA backend implements the same interface.
#pragma once

#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/MemoryBlock.h"

#include <cstddef>
#include <string_view>

namespace shardc::rt {

class Backend {
public:
  virtual ~Backend() = default;
  // Short name used in messages ("cpu").
  virtual const char *name() const = 0;
  // The kernel implementing `op`, or nullptr when this backend has none.
  virtual KernelFn lookupKernel(std::string_view op) const = 0;
  // `bytes` of zero-filled, 64-byte aligned memory for this backend's kernels; an empty block
  // when it cannot be had. The executor fills it with host copies, so a device backend will
  // add host<->device copy hooks at the four places Executor binds data (weights, constants,
  // inputs, outputs).
  virtual MemoryBlock allocate(size_t bytes) = 0;
};

class CpuBackend final : public Backend {
public:
  const char *name() const override { return "cpu"; }
  KernelFn lookupKernel(std::string_view op) const override { return lookupCpuKernel(op); }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
};

} // namespace shardc::rt
