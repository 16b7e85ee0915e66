// A backend that pretends its memory is a device's: the host may touch it only through
// copyIn/copyOut, which check that every copy goes between a device block and host memory
// and count the bytes. Kernels are the CPU's (they run on the same memory), so an executor
// that wrote device memory directly would still compute, but its copy counts would be wrong:
// the tests compare them with what the artifact implies.
#pragma once

#include "shardc/runtime/Backend.h"

#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace shardc::rt::test_backends {

class DeviceSimBackend final : public Backend {
public:
  const char *name() const override { return "device-sim"; }
  KernelFn lookupKernel(std::string_view op) const override { return lookupCpuKernel(op); }
  std::string loadKernels(const Artifact &) override { return ""; }
  const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
  MemoryBlock allocate(size_t bytes) override {
    MemoryBlock b = MemoryBlock::allocateHost(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.push_back({b.data(), b.data() + bytes});
    return b;
  }
  bool hostAddressable() const override { return false; }
  std::string copyIn(void *device, const void *host, size_t bytes) override {
    if (std::string err = check(device, host, bytes); !err.empty())
      return "copyIn: " + err;
    copiedIn += bytes;
    return Backend::copyIn(device, host, bytes);
  }
  std::string copyOut(void *host, const void *device, size_t bytes) override {
    if (std::string err = check(device, host, bytes); !err.empty())
      return "copyOut: " + err;
    copiedOut += bytes;
    return Backend::copyOut(host, device, bytes);
  }
  // Device to device (the collective steps' packing for a device communicator): both sides
  // must be device memory.
  std::string copy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t widthBytes,
                     size_t height) override {
    if (height && widthBytes) {
      size_t dspan = (height - 1) * dpitch + widthBytes;
      size_t sspan = (height - 1) * spitch + widthBytes;
      if (!isDevice(dst, dspan) || !isDevice(src, sspan))
        return "copy2D: a side is not device memory";
    }
    copied2D += widthBytes * height;
    ++copy2DCalls;
    return Backend::copy2D(dst, dpitch, src, spitch, widthBytes, height);
  }
  // Whether [p, p + bytes) lies in one block this backend allocated.
  bool isDevice(const void *p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    return onDevice(p, bytes);
  }
  std::string synchronize() override {
    ++synchronizations;
    return "";
  }

  // Counts the runs the executor offers for capture, and runs them (a GPU would replay).
  std::string runCaptured(const std::function<std::string()> &steps) override {
    ++captured;
    return steps();
  }

  std::atomic<uint64_t> copiedIn{0}, copiedOut{0}, synchronizations{0}, captured{0};
  std::atomic<uint64_t> copied2D{0}, copy2DCalls{0};

private:
  bool onDevice(const void *p, size_t bytes) {
    auto *q = static_cast<const uint8_t *>(p);
    for (auto &[begin, end] : blocks_)
      if (q >= begin && q + bytes <= end)
        return true;
    return false;
  }
  std::string check(const void *device, const void *host, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!onDevice(device, bytes))
      return "the device side is not device memory";
    if (bytes && onDevice(host, 1))
      return "the host side is device memory";
    return "";
  }
  std::mutex mu_;
  std::vector<std::pair<const uint8_t *, const uint8_t *>> blocks_;
};

} // namespace shardc::rt::test_backends
