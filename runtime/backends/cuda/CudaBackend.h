// The CUDA backend: device memory for the arena, weights and constants; the artifact's
// generated kernels compiled with NVRTC at load and launched on the backend's stream; library
// kernels (GEMMs through cuBLAS, attention, embedding, copies) on the same stream. No call
// inside a step waits for the GPU; the executor synchronises only to read outputs and to
// stage host collectives. Compiled in CI, run only on the GPU machines (docs/gpu-status.md).
#pragma once

#include "shardc/runtime/Backend.h"

#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace shardc::cuda {

// The stream and cuBLAS handle of the CUDA backend made on the calling thread (each rank's
// thread makes its own); library kernels enqueue there.
struct ThreadContext {
  cudaStream_t stream = nullptr;
  void *cublas = nullptr; // cublasHandle_t
  int smCount = 1;
  uint64_t hostWaits = 0; // library kernels that waited for the device on the host (noteHostWait)
};
const ThreadContext &threadContext();
// A library kernel waited for the device on the host (it read device values, such as the MoE
// steps' expert counts): the run is not captured as a graph (Backend::kernelHostWaits).
void noteHostWait();

// Where NVRTC's cubins are kept: $SHARDC_CACHE_DIR/kernels, $XDG_CACHE_HOME/shardc/kernels or
// ~/.cache/shardc/kernels ("" when none of them is set).
std::string kernelCacheDir();

// The library kernel for `op`, or nullptr: the entry of CudaKernelTable.h's table, which
// checks the step's operands against what the kernel takes before launching it.
rt::KernelFn lookupCudaKernel(std::string_view op);

class CudaBackend final : public rt::Backend {
public:
  // Makes `device` current on this thread and creates the stream and the cuBLAS handle.
  // Fails with a one-line error when there is no usable GPU.
  [[nodiscard]] static std::string create(int device, std::unique_ptr<CudaBackend> &out);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend &) = delete;
  CudaBackend &operator=(const CudaBackend &) = delete;

  const char *name() const override { return "cuda"; }
  rt::KernelFn lookupKernel(std::string_view op) const override { return lookupCudaKernel(op); }
  rt::MemoryBlock allocate(size_t bytes) override;
  std::string loadKernels(const rt::Artifact &artifact) override;
  const rt::FusedKernel *lookupFused(std::string_view name) const override;
  bool hostAddressable() const override { return false; }
  std::string copyIn(void *device, const void *host, size_t bytes) override;
  std::string copyOut(void *host, const void *device, size_t bytes) override;
  // cudaMemcpy2DAsync device to device on stream() (one cudaMemcpyAsync when the rows are
  // contiguous): the collective steps' packing when the communicator takes device pointers.
  std::string copy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t widthBytes,
                     size_t height) override;
  std::string synchronize() override;
  // The steps recorded once as a CUDA graph (stream capture) and replayed from then on; a
  // sequence that cannot be captured runs as it is, every time.
  std::string runCaptured(const std::function<std::string()> &steps) override;
  bool replaysCapture() const override { return graph_ != nullptr; }
  uint64_t kernelHostWaits() const override { return threadContext().hostWaits; }
  // cudaEvents recorded on the compute stream right before and after `launch` (a graph
  // replay when one was recorded), then waited for: the device time of the run alone.
  std::string timeRun(const std::function<std::string()> &launch, double &ms) override;

  // Two streams: compute (0, made by create(), where captures begin and end) and
  // communication (1); library and generated kernels, copies and a device communicator's
  // collectives go to the current one (useStream). Events are cudaEvents without timing.
  int streamCount() const override { return 2; }
  std::string useStream(int stream) override;
  std::string prepareEvents(size_t count) override;
  std::string recordEvent(int stream, size_t event) override;
  std::string waitEvent(int stream, size_t event) override;
  // The communication stream: a device communicator (NCCL) enqueues there.
  cudaStream_t communicationStream() const { return streams_[1]; }

  // Step profiles: one cudaEvent per mark, recorded on the current stream; times read after
  // synchronize().
  std::string prepareMarks(size_t count) override;
  std::string mark(size_t index) override;
  double elapsedMs(size_t from, size_t to) const override;

  int device() const { return device_; }
  // The stream this backend enqueues on now (useStream; the compute stream outside steps).
  cudaStream_t stream() const { return threadContext().stream; }
  const std::string &arch() const { return arch_; } // "sm_90"
  // CPU offload (CudaOffload.cpp): pinned host memory, copies on a copy stream of their own.
  rt::MemoryBlock allocatePinnedHost(size_t bytes) override;
  std::string copyToHost(void *host, const void *device, size_t bytes) override;
  std::string copyToDevice(void *device, const void *host, size_t bytes) override;
  std::string waitCopies() override;

private:
  CudaBackend() = default;
  int device_ = 0;
  std::string arch_;
  cudaLibrary_t library_ = nullptr;
  cudaGraphExec_t graph_ = nullptr;
  bool captureFailed_ = false;
  void *cublasWorkspace_ = nullptr; // fixed, so that GEMMs can be captured
  std::vector<cudaEvent_t> marks_;  // step profiles
  cudaEvent_t timing_[2] = {nullptr, nullptr}; // timeRun
  cudaStream_t streams_[2] = {nullptr, nullptr}; // compute, communication
  std::vector<cudaEvent_t> events_;
  cudaStream_t copyStream_ = nullptr;                     // CPU offload's copies
  cudaEvent_t copyReady_ = nullptr, copyDone_ = nullptr;  // ordering them with the steps
  std::string copyOnCopyStream(void *dst, const void *src, size_t bytes, bool toHost);
  void releaseCopyStream();
  std::map<std::string, std::unique_ptr<rt::FusedKernel>, std::less<>> fused_;
};

} // namespace shardc::cuda
