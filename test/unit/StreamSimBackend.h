// A backend with two streams that behave like a GPU's, for testing the executor's two-stream
// schedule on the CPU: kernels, generated kernels, copies and (through DeferredCommunicator)
// collectives are not run when the executor calls them but queued on the current stream;
// events are markers in those queues. synchronize() then runs the queues in an order that
// respects only each stream's order and the event waits, picked by a policy: the
// communication stream as late as it may, as early as it may, or a seeded random
// interleaving. A wait the schedule lacks lets a step read memory before it is written or
// after it is overwritten, and the numbers change.
#pragma once

#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Backend.h"

#include <array>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace shardc::rt::test_backends {

class StreamSimBackend;
inline thread_local StreamSimBackend *currentStreamSim = nullptr;

class StreamSimBackend final : public Backend {
public:
  enum class Policy { CommunicationLate, CommunicationEarly, Random };
  explicit StreamSimBackend(Policy policy, uint32_t seed = 1) : policy_(policy), rng_(seed) {
    currentStreamSim = this; // kernels and collectives enqueue on the backend of their thread
  }
  ~StreamSimBackend() override {
    if (currentStreamSim == this)
      currentStreamSim = nullptr;
  }

  const char *name() const override { return "stream-sim"; }
  KernelFn lookupKernel(std::string_view op) const override;
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
  std::string loadKernels(const Artifact &artifact) override { return cpu_.loadKernels(artifact); }
  const FusedKernel *lookupFused(std::string_view name) const override;

  int streamCount() const override { return 2; }
  std::string useStream(int stream) override {
    current_ = stream;
    return "";
  }
  std::string prepareEvents(size_t count) override {
    reached_.assign(count, 0);
    recorded_.assign(count, 0);
    return "";
  }
  std::string recordEvent(int stream, size_t event) override {
    if (event >= reached_.size())
      return "no event " + std::to_string(event);
    uint64_t generation = ++recorded_[event];
    queues_[size_t(stream)].push_back({[this, event, generation] { reached_[event] = generation; }, -1, 0});
    return "";
  }
  std::string waitEvent(int stream, size_t event) override {
    if (event >= reached_.size())
      return "no event " + std::to_string(event);
    // Waits for the latest record of the event made so far (as cudaStreamWaitEvent).
    queues_[size_t(stream)].push_back({nullptr, int64_t(event), recorded_[event]});
    return "";
  }
  std::string copy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t widthBytes,
                     size_t height) override {
    enqueue([=] {
      for (size_t r = 0; r < height; ++r)
        std::memcpy(static_cast<char *>(dst) + r * dpitch, static_cast<const char *>(src) + r * spitch, widthBytes);
      return std::string();
    });
    return "";
  }
  // Runs everything queued, in the policy's order. Fails when the queues cannot drain (a
  // wait for an event never recorded) or a queued operation failed.
  std::string synchronize() override;

  // Queues `op` on the current stream (its error surfaces at synchronize()).
  void enqueue(std::function<std::string()> op) {
    queues_[size_t(current_)].push_back({[this, op = std::move(op)] {
                                           if (std::string err = op(); !err.empty() && failure_.empty())
                                             failure_ = err;
                                         },
                                         -1, 0});
  }
  uint64_t executed = 0; // operations run so far

private:
  struct Op {
    std::function<void()> run; // nullptr: a wait
    int64_t waitEvent;         // >= 0: wait until reached_[waitEvent] >= waitGeneration
    uint64_t waitGeneration;
  };
  bool runnable(const Op &op) const {
    return op.run || reached_[size_t(op.waitEvent)] >= op.waitGeneration;
  }

  Policy policy_;
  std::mt19937 rng_;
  CpuBackend cpu_;
  int current_ = 0;
  std::array<std::deque<Op>, 2> queues_;
  std::vector<uint64_t> reached_, recorded_;
  std::string failure_;
  mutable std::map<std::string, std::unique_ptr<FusedKernel>, std::less<>> fused_;
};

// Kernel trampolines: the executor calls a plain function pointer, which queues the CPU
// kernel of its slot on the calling thread's backend.
namespace stream_sim_detail {
constexpr size_t kSlots = 128;
inline std::mutex slotsMutex;
inline std::map<std::string, size_t, std::less<>> slotOf;
inline std::array<KernelFn, kSlots> realKernel{};

template <size_t I> std::string trampoline(const KernelArgs &args) {
  StreamSimBackend *sim = currentStreamSim;
  if (!sim)
    return "stream-sim: a kernel called on a thread without a backend";
  KernelArgs copy = args;
  sim->enqueue([copy] { return realKernel[I](copy); });
  return "";
}
template <size_t... I> constexpr std::array<KernelFn, kSlots> trampolines(std::index_sequence<I...>) {
  return {&trampoline<I>...};
}
inline constexpr std::array<KernelFn, kSlots> kTrampolines = trampolines(std::make_index_sequence<kSlots>{});
} // namespace stream_sim_detail

inline KernelFn StreamSimBackend::lookupKernel(std::string_view op) const {
  using namespace stream_sim_detail;
  KernelFn real = lookupCpuKernel(op);
  if (!real)
    return nullptr;
  std::lock_guard<std::mutex> lock(slotsMutex);
  auto it = slotOf.find(op);
  if (it == slotOf.end()) {
    if (slotOf.size() == kSlots)
      return nullptr;
    it = slotOf.emplace(std::string(op), slotOf.size()).first;
    realKernel[it->second] = real;
  }
  return kTrampolines[it->second];
}

// A generated kernel: the CPU object's, queued.
class QueuedFusedKernel final : public FusedKernel {
public:
  explicit QueuedFusedKernel(const FusedKernel *real) : real_(real) {}
  std::string run(void *const *args, std::string_view launch, int64_t count) const override {
    StreamSimBackend *sim = currentStreamSim;
    if (!sim)
      return "stream-sim: a kernel called on a thread without a backend";
    // The executor's argument array outlives the run; the launch text is a view of it too.
    const FusedKernel *real = real_;
    std::string shape(launch);
    sim->enqueue([real, args, shape, count] { return real->run(args, shape, count); });
    return "";
  }

private:
  const FusedKernel *real_;
};

inline const FusedKernel *StreamSimBackend::lookupFused(std::string_view name) const {
  auto it = fused_.find(name);
  if (it != fused_.end())
    return it->second.get();
  const FusedKernel *real = cpu_.lookupFused(name);
  if (!real)
    return nullptr;
  return fused_.emplace(std::string(name), std::make_unique<QueuedFusedKernel>(real)).first->second.get();
}

inline std::string StreamSimBackend::synchronize() {
  std::uniform_int_distribution<int> coin(0, 1);
  while (!queues_[0].empty() || !queues_[1].empty()) {
    bool can[2] = {!queues_[0].empty() && runnable(queues_[0].front()),
                   !queues_[1].empty() && runnable(queues_[1].front())};
    if (!can[0] && !can[1])
      return "stream-sim: both streams wait for events never recorded";
    int pick;
    if (can[0] && can[1])
      pick = policy_ == Policy::CommunicationLate ? 0 : policy_ == Policy::CommunicationEarly ? 1 : coin(rng_);
    else
      pick = can[0] ? 0 : 1;
    Op op = std::move(queues_[size_t(pick)].front());
    queues_[size_t(pick)].pop_front();
    if (op.run)
      op.run();
    ++executed;
  }
  std::string failure = failure_;
  failure_.clear();
  return failure;
}

// Collectives of an in-process world, queued on the stream the executor is on (the
// communication stream): as NCCL enqueues on its stream, and takes device pointers.
class DeferredCommunicator final : public Communicator {
public:
  DeferredCommunicator(std::shared_ptr<LocalWorld> world, int64_t rank)
      : Communicator(world->mesh(), rank), inner_(std::move(world), rank) {}
  const char *name() const override { return "deferred-local"; }
  bool takesDevicePointers() const override { return true; }

  std::string allReduce(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype,
                        ReduceOp op) override {
    return queue(g, [=](const CommGroup &ig) { return inner_.allReduce(ig, in, out, count, dtype, op); });
  }
  std::string allGather(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype) override {
    return queue(g, [=](const CommGroup &ig) { return inner_.allGather(ig, in, out, count, dtype); });
  }
  std::string reduceScatter(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype,
                            ReduceOp op) override {
    return queue(g, [=](const CommGroup &ig) { return inner_.reduceScatter(ig, in, out, count, dtype, op); });
  }
  std::string allToAll(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype) override {
    return queue(g, [=](const CommGroup &ig) { return inner_.allToAll(ig, in, out, count, dtype); });
  }
  std::string allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts, void *out,
                        const int64_t *recvCounts, DType dtype) override {
    // The counts are copied: the queued collective runs after the caller's arrays are gone.
    std::vector<int64_t> send(sendCounts, sendCounts + g.size()), recv(recvCounts, recvCounts + g.size());
    return queue(g, [=](const CommGroup &ig) { return inner_.allToAllV(ig, in, send.data(), out, recv.data(), dtype); });
  }
  std::string barrier(const CommGroup &g) override {
    return queue(g, [=](const CommGroup &ig) { return inner_.barrier(ig); });
  }
  void abort(const std::string &reason) override { inner_.abort(reason); }

private:
  std::string queue(const CommGroup &g, std::function<std::string(const CommGroup &)> op) {
    const CommGroup *ig = nullptr;
    if (std::string err = inner_.group(g.axes, ig); !err.empty())
      return err;
    StreamSimBackend *sim = currentStreamSim;
    if (!sim)
      return "deferred-local: a collective on a thread without a stream-sim backend";
    sim->enqueue([op = std::move(op), ig] { return op(*ig); });
    return "";
  }
  LocalCommunicator inner_;
};

} // namespace shardc::rt::test_backends
