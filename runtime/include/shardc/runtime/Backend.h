// What the executor needs from a device: the kernel for each op and memory those kernels can
// address. The CPU backend is the first; a CUDA backend implements the same interface.
#pragma once

#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/MemoryBlock.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace shardc::rt {

struct Artifact;

// A generated fused kernel's entry: its inputs' then its outputs' data pointers, in step
// order. Shapes are compiled into the kernel.
using FusedKernelFn = void (*)(void *const *args);

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
  // Makes the artifact's generated fused kernels callable (the CPU backend loads the object
  // built for its target; a CUDA backend compiles the source). "" or a one-line error.
  [[nodiscard]] virtual std::string loadKernels(const Artifact &artifact) = 0;
  // A loaded fused kernel by name, or nullptr.
  virtual FusedKernelFn lookupFused(std::string_view name) const = 0;
};

class CpuBackend final : public Backend {
public:
  CpuBackend() = default;
  CpuBackend(const CpuBackend &) = delete;
  CpuBackend &operator=(const CpuBackend &) = delete;
  ~CpuBackend() override;
  const char *name() const override { return "cpu"; }
  KernelFn lookupKernel(std::string_view op) const override { return lookupCpuKernel(op); }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
  std::string loadKernels(const Artifact &artifact) override;
  FusedKernelFn lookupFused(std::string_view name) const override;
  // The target of kernel objects this build can load ("x86_64-linux").
  static const char *kernelTarget();

private:
  void *module_ = nullptr; // dlopen handle of the artifact's kernel object
};

} // namespace shardc::rt
