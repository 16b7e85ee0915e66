// CPU offload in the executor (docs/training.md#cpu-offload): the host arena and host
// persistent block (Backend::allocatePinnedHost: pinned on CUDA), the host steps, which run
// with the CPU kernels on host buffers whatever the backend, and the copy steps between the
// two memories (Backend::copyToHost/copyToDevice: the copy stream on CUDA, memcpy on the CPU).
#include "shardc/runtime/Executor.h"

namespace shardc::rt {

bool Executor::hasHostSteps() const {
  for (const std::vector<Step> *list : {&artifact_.loadSteps, &artifact_.steps})
    for (const Step &s : *list)
      if (s.host || s.op == kCopyToHostStep || s.op == kCopyToDeviceStep)
        return true;
  return false;
}

// The CPU kernels of host steps: the backend's own on the CPU backend; on any other a CPU
// backend of the executor's, which loads the artifact's prebuilt CPU object of the fused
// kernels.
std::string Executor::prepareHostKernels() {
  hostKernels_ = &backend_;
  if (std::string_view(backend_.name()) == "cpu" || !hasHostSteps())
    return "";
  ownHostKernels_ = std::make_unique<CpuBackend>();
  if (std::string err = ownHostKernels_->loadKernels(artifact_); !err.empty())
    return "the host steps' CPU kernels: " + err;
  hostKernels_ = ownHostKernels_.get();
  return "";
}

// A copy step, a host step, or neither (false): resolved here.
bool Executor::prepareHostStep(const Step &step, PreparedStep &prepared, std::string &err) {
  if (step.op == kCopyToHostStep || step.op == kCopyToDeviceStep) {
    prepared.copy = step.op == kCopyToHostStep ? 1 : 2;
    if (step.in.size() != 1 || step.out.size() != 1 ||
        artifact_.buffers[static_cast<size_t>(step.in[0])].bytes !=
            artifact_.buffers[static_cast<size_t>(step.out[0])].bytes)
      err = "a copy between the memories takes one input and one output of the same size";
    return true;
  }
  if (!step.host)
    return false;
  prepared.host = true;
  if (step.op == "fused") {
    std::string name = step.attrs.getString("kernel");
    prepared.fused = hostKernels_->lookupFused(name);
    if (!prepared.fused)
      err = "the CPU kernels of host steps have no fused kernel '" + name + "'";
    prepared.fusedLaunch = step.attrs.getString("launch", "elements");
    prepared.fusedCount = step.attrs.getInt("count", 0);
  } else {
    prepared.kernel = lookupCpuKernel(step.op);
    if (!prepared.kernel)
      err = "the CPU backend has no kernel for host step '" + step.op + "'";
  }
  return true;
}

// Host buffers: one host arena and one host persistent block (host training state).
std::string Executor::allocateHostStorage() {
  bool any = artifact_.hostArenaBytes || artifact_.hostPersistentBytes;
  for (const BufferDesc &b : artifact_.buffers)
    any |= b.host;
  if (!any)
    return "";
  hostArena_ = backend_.allocatePinnedHost(artifact_.hostArenaBytes);
  hostPersistent_ = backend_.allocatePinnedHost(artifact_.hostPersistentBytes);
  if (!hostArena_ || !hostPersistent_)
    return "cannot allocate " + std::to_string(artifact_.hostArenaBytes + artifact_.hostPersistentBytes) +
           " bytes of host memory for CPU offload";
  return "";
}

uint8_t *Executor::hostBufferData(const BufferDesc &b) const {
  return (b.storage == Storage::Arena ? hostArena_ : hostPersistent_).data() + b.offset;
}

// A host step reads constants in the artifact's blob (a device backend's copy is device memory).
TensorView Executor::hostStepView(int64_t id) const {
  const BufferDesc &b = artifact_.buffers[static_cast<size_t>(id)];
  TensorView v = views_[static_cast<size_t>(id)];
  if (b.storage == Storage::Constant)
    v.data = const_cast<uint8_t *>(artifact_.constantData(b));
  return v;
}

// Copies go through the backend; a host step first waits for the copies in flight (it may
// read what one wrote, or overwrite what one reads) and makes the run one the host waits in
// (a device backend does not capture it as a graph).
std::string Executor::runHostStep(const PreparedStep &step) {
  if (step.copy == 1)
    return backend_.copyToHost(step.args.out[0].data, step.args.in[0].data, step.args.in[0].bytes());
  if (step.copy == 2)
    return backend_.copyToDevice(step.args.out[0].data, step.args.in[0].data, step.args.in[0].bytes());
  ++hostBlockingInSteps_;
  if (std::string err = backend_.waitCopies(); !err.empty())
    return err;
  if (step.fused)
    return step.fused->run(step.fusedArgs.data(), step.fusedLaunch, step.fusedCount);
  return step.kernel(step.args);
}

} // namespace shardc::rt
