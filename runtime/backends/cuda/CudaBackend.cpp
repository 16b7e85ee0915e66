// The CUDA backend's device glue (see CudaBackend.h).
#include "CudaBackend.h"

#include "shardc/cuda/NvrtcCompiler.h"
#include "shardc/runtime/Artifact.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace shardc::cuda {

namespace {

thread_local ThreadContext context;

std::string cudaText(cudaError_t rc) { return std::string(cudaGetErrorName(rc)) + ": " + cudaGetErrorString(rc); }

// A generated kernel: elements -> a grid-stride loop over `count` elements; rows -> one
// block per row.
class CudaFusedKernel final : public rt::FusedKernel {
public:
  explicit CudaFusedKernel(cudaKernel_t kernel) : kernel_(kernel) {}
  std::string run(void *const *args, std::string_view launch, int64_t count) const override {
    const ThreadContext &ctx = threadContext();
    constexpr unsigned kThreads = 256;
    int64_t blocks = launch == "rows" ? count : (count + kThreads - 1) / kThreads;
    blocks = std::clamp<int64_t>(blocks, 1, launch == "rows" ? 65535 : int64_t(ctx.smCount) * 32);
    // cudaLaunchKernel wants the address of each argument; the arguments are the pointers.
    std::vector<void *> params(args, args + paramCount_);
    std::vector<void *> addresses;
    for (void *&p : params)
      addresses.push_back(&p);
    cudaError_t rc = cudaLaunchKernel(reinterpret_cast<const void *>(kernel_), dim3(unsigned(blocks)),
                                      dim3(kThreads), addresses.data(), 0, ctx.stream);
    return rc == cudaSuccess ? "" : "launching a generated kernel: " + cudaText(rc);
  }
  size_t paramCount_ = 0;

private:
  cudaKernel_t kernel_;
};

} // namespace

const ThreadContext &threadContext() { return context; }
void noteHostWait() { ++context.hostWaits; }

std::string kernelCacheDir() {
  if (const char *d = std::getenv("SHARDC_CACHE_DIR"); d && *d)
    return std::string(d) + "/kernels";
  if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/shardc/kernels";
  if (const char *h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/shardc/kernels";
  return "";
}

std::string CudaBackend::create(int device, std::unique_ptr<CudaBackend> &out) {
  int count = 0;
  if (cudaError_t rc = cudaGetDeviceCount(&count); rc != cudaSuccess)
    return "no CUDA device: " + cudaText(rc);
  if (device < 0 || device >= count)
    return "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " visible)";
  if (cudaError_t rc = cudaSetDevice(device); rc != cudaSuccess)
    return "cudaSetDevice(" + std::to_string(device) + "): " + cudaText(rc);
  cudaDeviceProp prop{};
  if (cudaError_t rc = cudaGetDeviceProperties(&prop, device); rc != cudaSuccess)
    return "cudaGetDeviceProperties: " + cudaText(rc);
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  b->device_ = device;
  b->arch_ = "sm_" + std::to_string(prop.major * 10 + prop.minor);
  if (cudaError_t rc = cudaStreamCreateWithFlags(&context.stream, cudaStreamNonBlocking); rc != cudaSuccess)
    return "cudaStreamCreate: " + cudaText(rc);
  b->streams_[0] = context.stream;
  if (cudaError_t rc = cudaStreamCreateWithFlags(&b->streams_[1], cudaStreamNonBlocking); rc != cudaSuccess)
    return "cudaStreamCreate (communication): " + cudaText(rc);
  cublasHandle_t handle = nullptr;
  if (cublasStatus_t st = cublasCreate(&handle); st != CUBLAS_STATUS_SUCCESS)
    return std::string("cublasCreate: ") + cublasGetStatusString(st);
  cublasSetStream(handle, context.stream);
  constexpr size_t kWorkspace = 32u << 20;
  if (cudaMalloc(&b->cublasWorkspace_, kWorkspace) == cudaSuccess)
    cublasSetWorkspace(handle, b->cublasWorkspace_, kWorkspace);
  context.cublas = handle;
  context.smCount = prop.multiProcessorCount;
  out = std::move(b);
  return "";
}

std::string CudaBackend::useStream(int stream) {
  if (stream < 0 || stream > 1)
    return "no stream " + std::to_string(stream);
  context.stream = streams_[stream];
  return "";
}

std::string CudaBackend::prepareEvents(size_t count) {
  for (cudaEvent_t e : events_)
    cudaEventDestroy(e);
  events_.assign(count, nullptr);
  for (cudaEvent_t &e : events_)
    if (cudaError_t rc = cudaEventCreateWithFlags(&e, cudaEventDisableTiming); rc != cudaSuccess)
      return "cudaEventCreate: " + cudaText(rc);
  return "";
}

std::string CudaBackend::recordEvent(int stream, size_t event) {
  if (stream < 0 || stream > 1 || event >= events_.size())
    return "no stream " + std::to_string(stream) + " or event " + std::to_string(event);
  cudaError_t rc = cudaEventRecord(events_[event], streams_[stream]);
  return rc == cudaSuccess ? "" : "cudaEventRecord: " + cudaText(rc);
}

std::string CudaBackend::waitEvent(int stream, size_t event) {
  if (stream < 0 || stream > 1 || event >= events_.size())
    return "no stream " + std::to_string(stream) + " or event " + std::to_string(event);
  cudaError_t rc = cudaStreamWaitEvent(streams_[stream], events_[event], 0);
  return rc == cudaSuccess ? "" : "cudaStreamWaitEvent: " + cudaText(rc);
}

std::string CudaBackend::prepareMarks(size_t count) {
  for (cudaEvent_t e : marks_)
    cudaEventDestroy(e);
  marks_.assign(count, nullptr);
  for (cudaEvent_t &e : marks_)
    if (cudaError_t rc = cudaEventCreate(&e); rc != cudaSuccess)
      return "cudaEventCreate: " + cudaText(rc);
  return "";
}

std::string CudaBackend::mark(size_t index) {
  if (index >= marks_.size())
    return "mark " + std::to_string(index) + " of " + std::to_string(marks_.size());
  cudaError_t rc = cudaEventRecord(marks_[index], context.stream);
  return rc == cudaSuccess ? "" : "cudaEventRecord: " + cudaText(rc);
}

double CudaBackend::elapsedMs(size_t from, size_t to) const {
  float ms = 0.0f;
  if (from >= marks_.size() || to >= marks_.size() || cudaEventElapsedTime(&ms, marks_[from], marks_[to]) != cudaSuccess)
    return 0.0;
  return double(ms);
}

std::string CudaBackend::timeRun(const std::function<std::string()> &launch, double &ms) {
  ms = 0;
  for (cudaEvent_t &e : timing_)
    if (!e)
      if (cudaError_t rc = cudaEventCreate(&e); rc != cudaSuccess)
        return "cudaEventCreate: " + cudaText(rc);
  // Runs begin and end on the compute stream (the executor joins the communication stream
  // back into it), so two events there bracket all of the run's work.
  if (cudaError_t rc = cudaEventRecord(timing_[0], streams_[0]); rc != cudaSuccess)
    return "cudaEventRecord: " + cudaText(rc);
  if (std::string err = launch(); !err.empty())
    return err;
  if (cudaError_t rc = cudaEventRecord(timing_[1], streams_[0]); rc != cudaSuccess)
    return "cudaEventRecord: " + cudaText(rc);
  if (std::string err = synchronize(); !err.empty())
    return err;
  float elapsed = 0.0f;
  if (cudaError_t rc = cudaEventElapsedTime(&elapsed, timing_[0], timing_[1]); rc != cudaSuccess)
    return "cudaEventElapsedTime: " + cudaText(rc);
  ms = double(elapsed);
  return "";
}

CudaBackend::~CudaBackend() {
  releaseCopyStream();
  for (cudaEvent_t e : timing_)
    if (e)
      cudaEventDestroy(e);
  for (cudaEvent_t e : marks_)
    cudaEventDestroy(e);
  for (cudaEvent_t e : events_)
    cudaEventDestroy(e);
  context.stream = streams_[0];
  if (streams_[1])
    cudaStreamDestroy(streams_[1]);
  if (graph_)
    cudaGraphExecDestroy(graph_);
  if (library_)
    cudaLibraryUnload(library_);
  if (cublasWorkspace_)
    cudaFree(cublasWorkspace_);
  if (context.cublas)
    cublasDestroy(static_cast<cublasHandle_t>(context.cublas));
  if (context.stream)
    cudaStreamDestroy(context.stream);
  context = ThreadContext{};
}

rt::MemoryBlock CudaBackend::allocate(size_t bytes) {
  void *p = nullptr;
  size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  if (cudaMalloc(&p, rounded) != cudaSuccess)
    return {};
  if (cudaMemsetAsync(p, 0, rounded, context.stream) != cudaSuccess) {
    cudaFree(p);
    return {};
  }
  return rt::MemoryBlock(p, bytes, [](void *q) { cudaFree(q); });
}

std::string CudaBackend::copyIn(void *device, const void *host, size_t bytes) {
  // From pageable host memory the copy is staged by the driver before this returns, so the
  // host buffer may be reused at once.
  cudaError_t rc = cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, context.stream);
  return rc == cudaSuccess ? "" : "copy to the GPU: " + cudaText(rc);
}

std::string CudaBackend::copyOut(void *host, const void *device, size_t bytes) {
  cudaError_t rc = cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, context.stream);
  if (rc == cudaSuccess)
    rc = cudaStreamSynchronize(context.stream);
  return rc == cudaSuccess ? "" : "copy from the GPU: " + cudaText(rc);
}

std::string CudaBackend::copy2D(void *dst, size_t dpitch, const void *src, size_t spitch,
                                size_t widthBytes, size_t height) {
  if (widthBytes == 0 || height == 0)
    return "";
  cudaError_t rc = (height == 1 || (dpitch == widthBytes && spitch == widthBytes))
                       ? cudaMemcpyAsync(dst, src, widthBytes * height, cudaMemcpyDeviceToDevice, context.stream)
                       : cudaMemcpy2DAsync(dst, dpitch, src, spitch, widthBytes, height,
                                           cudaMemcpyDeviceToDevice, context.stream);
  return rc == cudaSuccess ? "" : "2-D copy on the GPU (" + std::to_string(height) + " rows of " +
                                      std::to_string(widthBytes) + " bytes): " + cudaText(rc);
}

std::string CudaBackend::synchronize() {
  cudaError_t rc = cudaStreamSynchronize(streams_[1] ? streams_[1] : context.stream);
  if (rc == cudaSuccess)
    rc = cudaStreamSynchronize(streams_[0] ? streams_[0] : context.stream);
  return rc == cudaSuccess ? "" : "the GPU failed: " + cudaText(rc);
}

std::string CudaBackend::runCaptured(const std::function<std::string()> &steps) {
  // Captures begin and end on the compute stream; the executor forks the communication
  // stream from it with an event and joins it back, so one graph holds both.
  context.stream = streams_[0];
  if (graph_) {
    cudaError_t rc = cudaGraphLaunch(graph_, context.stream);
    return rc == cudaSuccess ? "" : "replaying the step graph: " + cudaText(rc);
  }
  if (captureFailed_)
    return steps();
  if (cudaError_t rc = cudaStreamBeginCapture(context.stream, cudaStreamCaptureModeThreadLocal); rc != cudaSuccess) {
    captureFailed_ = true;
    return steps();
  }
  std::string err = steps();
  cudaGraph_t graph = nullptr;
  cudaError_t rc = cudaStreamEndCapture(context.stream, &graph);
  if (!err.empty() || rc != cudaSuccess || !graph) {
    if (graph)
      cudaGraphDestroy(graph);
    cudaGetLastError(); // clear a capture error
    if (!err.empty())
      return err;
    captureFailed_ = true; // something in the steps cannot be captured: run them directly
    return steps();
  }
  rc = cudaGraphInstantiate(&graph_, graph, 0);
  cudaGraphDestroy(graph);
  if (rc != cudaSuccess) {
    graph_ = nullptr;
    captureFailed_ = true;
    return steps();
  }
  rc = cudaGraphLaunch(graph_, context.stream);
  return rc == cudaSuccess ? "" : "launching the step graph: " + cudaText(rc);
}

std::string CudaBackend::loadKernels(const rt::Artifact &artifact) {
  if (artifact.kernels.empty() || library_)
    return "";
  NvrtcResult compiled;
  if (std::string err = compileWithNvrtc(artifact.kernelSource(), arch_, kernelCacheDir(), compiled); !err.empty())
    return err;
  if (cudaError_t rc = cudaLibraryLoadData(&library_, compiled.cubin.data(), nullptr, nullptr, 0, nullptr,
                                           nullptr, 0);
      rc != cudaSuccess)
    return "loading the generated kernels: " + cudaText(rc);
  // Each kernel's parameter count, from its signature in the source: one pointer per
  // input and output.
  std::string_view source = artifact.kernelSource();
  for (const std::string &name : compiled.kernels) {
    cudaKernel_t kernel = nullptr;
    if (cudaError_t rc = cudaLibraryGetKernel(&kernel, library_, name.c_str()); rc != cudaSuccess)
      return "generated kernel '" + name + "': " + cudaText(rc);
    auto k = std::make_unique<CudaFusedKernel>(kernel);
    size_t at = source.find("SC_KERNEL " + name + "(");
    size_t end = source.find(')', at);
    k->paramCount_ = 1 + std::count(source.begin() + at, source.begin() + end, ',');
    fused_[name] = std::move(k);
  }
  return "";
}

const rt::FusedKernel *CudaBackend::lookupFused(std::string_view name) const {
  auto it = fused_.find(name);
  return it == fused_.end() ? nullptr : it->second.get();
}

} // namespace shardc::cuda
