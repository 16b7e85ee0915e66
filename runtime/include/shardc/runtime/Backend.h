// What the executor needs from a device: the kernel for each op, the artifact's generated
// kernels, memory those kernels can address, and the copies between that memory and the
// host. The CPU backend is the first; a CUDA backend implements the same interface.
#pragma once

#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/MemoryBlock.h"

#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

struct Artifact;

// A generated fused kernel. `args` are its inputs' then its outputs' data pointers, in step
// order (shapes are compiled into it); `launch` ("elements" or "rows") and `count` are the
// step's launch shape, which only a GPU uses. Runs, or on a device enqueues, the kernel.
class FusedKernel {
public:
  virtual ~FusedKernel() = default;
  [[nodiscard]] virtual std::string run(void *const *args, std::string_view launch, int64_t count) const = 0;
};

class Backend {
public:
  virtual ~Backend() = default;
  // Short name used in messages ("cpu").
  virtual const char *name() const = 0;
  // The kernel implementing `op`, or nullptr when this backend has none.
  virtual KernelFn lookupKernel(std::string_view op) const = 0;
  // `bytes` of zero-filled, 64-byte aligned memory for this backend's kernels; an empty block
  // when it cannot be had.
  virtual MemoryBlock allocate(size_t bytes) = 0;
  // Makes the artifact's generated fused kernels callable (the CPU backend loads the object
  // built for its target; a CUDA backend compiles the source). "" or a one-line error.
  [[nodiscard]] virtual std::string loadKernels(const Artifact &artifact) = 0;
  // A loaded fused kernel by name, or nullptr.
  virtual const FusedKernel *lookupFused(std::string_view name) const = 0;

  // Whether the host can read and write this backend's memory directly. When it cannot (a
  // GPU), the executor moves weights, constants, inputs, outputs and the data of host-side
  // collectives only through copyIn/copyOut, and calls synchronize() before reading.
  virtual bool hostAddressable() const { return true; }
  // Empty tensors copy nothing: their pointers may be null, which memcpy must not be given.
  [[nodiscard]] virtual std::string copyIn(void *device, const void *host, size_t bytes) {
    if (bytes)
      std::memcpy(device, host, bytes);
    return "";
  }
  [[nodiscard]] virtual std::string copyOut(void *host, const void *device, size_t bytes) {
    if (bytes)
      std::memcpy(host, device, bytes);
    return "";
  }
  // Copies `height` rows of `widthBytes` bytes from `src` (rows `spitch` bytes apart) to `dst`
  // (rows `dpitch` apart), both in this backend's memory, in order with the steps (a GPU
  // enqueues it on the stream its device communicator uses). The collective steps pack and
  // unpack their chunks with it when the communicator takes device pointers.
  [[nodiscard]] virtual std::string copy2D(void *dst, size_t dpitch, const void *src, size_t spitch,
                                           size_t widthBytes, size_t height) {
    for (size_t r = 0; r < height && widthBytes; ++r)
      std::memcpy(static_cast<char *>(dst) + r * dpitch, static_cast<const char *>(src) + r * spitch,
                  widthBytes);
    return "";
  }
  // CPU offload (ExecutorHost.cpp). Host memory for the executor's host arena and host
  // persistent block: page-locked on a GPU (cudaHostAlloc), so that the copies are
  // asynchronous; zero-filled, 64-byte aligned; empty when it cannot be had.
  virtual MemoryBlock allocatePinnedHost(size_t bytes) { return MemoryBlock::allocateHost(bytes); }
  // The copy steps: device memory to host memory and back, in order with the steps. A GPU
  // enqueues them on a copy stream of their own, which waits for the compute stream's work
  // so far; the compute stream waits for a copy to the device before its next step.
  [[nodiscard]] virtual std::string copyToHost(void *host, const void *device, size_t bytes) {
    if (bytes)
      std::memcpy(host, device, bytes);
    return "";
  }
  [[nodiscard]] virtual std::string copyToDevice(void *device, const void *host, size_t bytes) {
    if (bytes)
      std::memcpy(device, host, bytes);
    return "";
  }
  // Blocks the host until the copies enqueued so far are done (before a host step reads what
  // they wrote or overwrites what they read).
  [[nodiscard]] virtual std::string waitCopies() { return ""; }

  // Waits for everything enqueued so far.
  [[nodiscard]] virtual std::string synchronize() { return ""; }
  // Runs a step sequence that enqueues the same work every time (fixed buffers, no host
  // waits). A GPU backend records it once as a graph (CUDA graphs) and from then on replays
  // the graph without calling `steps`; the default calls it.
  [[nodiscard]] virtual std::string runCaptured(const std::function<std::string()> &steps) { return steps(); }
  // Whether the next runCaptured() replays a recorded graph without calling `steps`.
  virtual bool replaysCapture() const { return false; }
  // How many times this thread's kernels have waited for the device on the host so far (a
  // kernel that reads device values, such as the MoE steps' expert counts). A run during which
  // the count grows is not captured: its work depends on what the host read.
  virtual uint64_t kernelHostWaits() const { return 0; }
  // Times `launch` (a run's steps, or the replay of their graph) alone and waits for its work:
  // the host clock around it and synchronize() here; a GPU records events on its stream
  // before and after the launch, so host-side overhead and earlier work are not counted.
  [[nodiscard]] virtual std::string timeRun(const std::function<std::string()> &launch, double &ms) {
    auto t0 = std::chrono::steady_clock::now();
    std::string err = launch();
    if (err.empty())
      err = synchronize();
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return err;
  }

  // Streams. A backend may run steps on more than one in-order stream (a GPU: one for compute,
  // one for communication, see StreamSchedule.h); useStream(s) sends the launches and copies
  // that follow to stream s; prepareEvents(n) makes n events; recordEvent(s, e) marks event e
  // at the current end of stream s, waitEvent(s, e) holds stream s until it is reached. None
  // of them waits on the host. The default: one stream, everything in call order.
  virtual int streamCount() const { return 1; }
  [[nodiscard]] virtual std::string useStream(int stream) {
    return stream == 0 ? "" : "stream " + std::to_string(stream) + " of a one-stream backend";
  }
  [[nodiscard]] virtual std::string prepareEvents(size_t count) {
    (void)count;
    return "";
  }
  [[nodiscard]] virtual std::string recordEvent(int stream, size_t event) {
    (void)stream;
    (void)event;
    return "";
  }
  [[nodiscard]] virtual std::string waitEvent(int stream, size_t event) {
    (void)stream;
    (void)event;
    return "";
  }

  // Step profiles. prepareMarks(n) makes n marks; mark(i) records mark i behind the work
  // enqueued so far on the current stream (here the host clock, which suits a backend that runs kernels as they are
  // called; a GPU records an event on its stream); after synchronize(), elapsedMs(a, b) is
  // the time from mark a to mark b.
  [[nodiscard]] virtual std::string prepareMarks(size_t count) {
    hostMarks_.assign(count, {});
    return "";
  }
  [[nodiscard]] virtual std::string mark(size_t index) {
    if (index >= hostMarks_.size())
      return "mark " + std::to_string(index) + " of " + std::to_string(hostMarks_.size());
    hostMarks_[index] = std::chrono::steady_clock::now();
    return "";
  }
  virtual double elapsedMs(size_t from, size_t to) const {
    if (from >= hostMarks_.size() || to >= hostMarks_.size())
      return 0.0;
    return std::chrono::duration<double, std::milli>(hostMarks_[to] - hostMarks_[from]).count();
  }

private:
  std::vector<std::chrono::steady_clock::time_point> hostMarks_;
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
  const FusedKernel *lookupFused(std::string_view name) const override;
  // The target of kernel objects this build can load ("x86_64-linux").
  static const char *kernelTarget();

private:
  void *module_ = nullptr; // dlopen handle of the artifact's kernel object
  mutable std::map<std::string, std::unique_ptr<FusedKernel>, std::less<>> fused_;
};

} // namespace shardc::rt
