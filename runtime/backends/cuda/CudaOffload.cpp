// CPU offload on the CUDA backend (docs/training.md#cpu-offload), kept thin: the host arena
// and host persistent block are page-locked (cudaHostAlloc), and the copy steps run on a copy
// stream of their own, made on first use. A copy waits for the work enqueued so far on the
// current stream (an event) and the current stream waits for the copy (another), so the arena
// the copy reads or writes is not reused under it; the host waits for the copy stream
// (waitCopies) before a host step. Compiled in CI, not yet run on a GPU.
#include "CudaBackend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

namespace shardc::cuda {

namespace {
std::string text(cudaError_t rc) { return std::string(cudaGetErrorName(rc)) + ": " + cudaGetErrorString(rc); }
} // namespace

rt::MemoryBlock CudaBackend::allocatePinnedHost(size_t bytes) {
  void *p = nullptr;
  size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  if (cudaHostAlloc(&p, rounded, cudaHostAllocPortable) != cudaSuccess)
    return {};
  std::memset(p, 0, rounded);
  return rt::MemoryBlock(p, bytes, [](void *q) { cudaFreeHost(q); });
}

std::string CudaBackend::copyOnCopyStream(void *dst, const void *src, size_t bytes, bool toHost) {
  if (!copyStream_) {
    if (cudaError_t rc = cudaStreamCreateWithFlags(&copyStream_, cudaStreamNonBlocking); rc != cudaSuccess)
      return "cudaStreamCreate (copies): " + text(rc);
    for (cudaEvent_t *e : {&copyReady_, &copyDone_})
      if (cudaError_t rc = cudaEventCreateWithFlags(e, cudaEventDisableTiming); rc != cudaSuccess)
        return "cudaEventCreate (copies): " + text(rc);
  }
  cudaStream_t current = stream();
  cudaError_t rc = cudaEventRecord(copyReady_, current);
  if (rc == cudaSuccess)
    rc = cudaStreamWaitEvent(copyStream_, copyReady_, 0);
  if (rc == cudaSuccess && bytes)
    rc = cudaMemcpyAsync(dst, src, bytes, toHost ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice, copyStream_);
  if (rc == cudaSuccess)
    rc = cudaEventRecord(copyDone_, copyStream_);
  if (rc == cudaSuccess)
    rc = cudaStreamWaitEvent(current, copyDone_, 0);
  return rc == cudaSuccess ? "" : std::string(toHost ? "copy to the host" : "copy to the GPU") + " (copy stream): " + text(rc);
}

std::string CudaBackend::copyToHost(void *host, const void *device, size_t bytes) {
  return copyOnCopyStream(host, device, bytes, true);
}

std::string CudaBackend::copyToDevice(void *device, const void *host, size_t bytes) {
  return copyOnCopyStream(device, host, bytes, false);
}

std::string CudaBackend::waitCopies() {
  if (!copyStream_)
    return "";
  cudaError_t rc = cudaStreamSynchronize(copyStream_);
  return rc == cudaSuccess ? "" : "waiting for the copy stream: " + text(rc);
}

void CudaBackend::releaseCopyStream() {
  for (cudaEvent_t e : {copyReady_, copyDone_})
    if (e)
      cudaEventDestroy(e);
  if (copyStream_)
    cudaStreamDestroy(copyStream_);
  copyStream_ = nullptr;
  copyReady_ = copyDone_ = nullptr;
}

} // namespace shardc::cuda
