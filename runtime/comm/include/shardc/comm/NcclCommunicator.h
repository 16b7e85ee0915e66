// Ranks as GPUs talking through NCCL. Buffers are device pointers and every collective is
// enqueued on the communication stream and returns without waiting for the GPU. One NCCL
// communicator per mesh-axis group, split once from the world communicator. A watchdog
// thread aborts the communicators when the stream stops advancing. Links cudart and NCCL,
// never the driver (libcuda is reached through cudart). Not yet run on a GPU.
#pragma once

#include "shardc/comm/Communicator.h"
#include "shardc/comm/NcclBootstrap.h"

#include <cuda_runtime_api.h>

#include <memory>
#include <string_view>

namespace shardc::rt {

struct NcclOptions {
  // Bounds the bootstrap, communicator creation and splits, and a step's time on the stream
  // (the watchdog follows setTimeout()).
  std::chrono::milliseconds timeout{300000};
  // The CUDA device; -1: the bootstrap's local rank, or device 0 when only one is visible
  // (one GPU per process through CUDA_VISIBLE_DEVICES).
  int device = -1;
  bool watchdog = true;
};

class NcclCommunicator final : public Communicator {
public:
  // Bootstraps (bootstrap(): MPI under mpirun, else torchrun-style variables), makes the
  // device current and creates the world communicator. The mesh's size must be the job's.
  [[nodiscard]] static std::string create(DeviceMesh mesh, const NcclOptions &options,
                                          std::unique_ptr<NcclCommunicator> &out);
  // The bootstrap alone (rank, size, local rank, rank 0's ncclUniqueId), as create() does it:
  // MPI under an MPI launcher, else torchrun-style variables, else a job of one. Needs no GPU.
  [[nodiscard]] static std::string bootstrap(std::chrono::milliseconds timeout, NcclBootstrap &out);
  // The same from a finished bootstrap, whose uniqueId holds the 128-byte ncclUniqueId.
  [[nodiscard]] static std::string create(DeviceMesh mesh, const NcclBootstrap &boot,
                                          const NcclOptions &options,
                                          std::unique_ptr<NcclCommunicator> &out);
  // Finalizes the communicators (bounded by timeout(); aborted past it) unless aborted.
  ~NcclCommunicator() override;
  const char *name() const override { return "nccl"; }
  bool takesDevicePointers() const override { return true; }

  int device() const;
  // The stream every collective and progress mark is enqueued on (default: the legacy default
  // stream). Buffers given to collectives must be ready in this stream's order.
  void setStream(cudaStream_t stream);
  cudaStream_t stream() const;

  // Enqueued only: `out` is valid once the stream gets past the collective. Reductions are
  // NCCL's (ring/tree order), so results are not bit-identical to the local and MPI
  // communicators. Aliased buffers NCCL cannot take in place go through a stream-ordered
  // scratch copy. Errors are one line; after one, every collective refuses to start.
  std::string allReduce(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype,
                        ReduceOp op) override;
  std::string allGather(const CommGroup &g, const void *in, void *out, int64_t count,
                        DType dtype) override;
  std::string reduceScatter(const CommGroup &g, const void *in, void *out, int64_t count,
                            DType dtype, ReduceOp op) override;
  // Grouped ncclSend/ncclRecv with every member (itself included).
  std::string allToAll(const CommGroup &g, const void *in, void *out, int64_t count,
                       DType dtype) override;
  // Grouped ncclSend/ncclRecv of each member's own count (zero counts skipped).
  std::string allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts, void *out,
                        const int64_t *recvCounts, DType dtype) override;
  // Stream-ordered: work enqueued after it runs once every member's stream got there.
  std::string barrier(const CommGroup &g) override;
  // ncclCommAbort on every communicator; later collectives fail with `reason`. Peers are
  // not told: their watchdogs fire when their collectives with this rank stop advancing.
  void abort(const std::string &reason) override;

  // Call after enqueuing step `step`'s work: the stream writes the step's marker to the
  // progress word when it gets there (cuStreamWriteValue32, fetched from the driver at run
  // time through cudart; a host function on the stream where the driver lacks it). When the oldest unfinished step waits longer than
  // timeout(), the watchdog prints "rank R stuck at step N (<name>) ..." and aborts.
  // `stream` is the stream the step ran on (nullptr: the communicator's) and `lane` its
  // progress word (0 for the compute stream, 1 for the communication stream), so that a hung
  // compute kernel is named as well as a hung collective.
  [[nodiscard]] std::string markStep(int64_t step, std::string_view name, cudaStream_t stream = nullptr,
                                     int lane = 1);
  // Runs and CUDA graphs: before each run's steps, with the stream idle, beginRun() sets the
  // progress word back to 0 and the markers count from 1 again, so that the marks a graph
  // captured are right on every replay; expectReplay() does the same for a run that replays
  // the graph (no markStep calls): it expects the marks of the last run that made them.
  void beginRun();
  void expectReplay();
  // "" while healthy; else the first failure (a collective's error, the watchdog's report,
  // abort's reason) or an asynchronous NCCL error.
  [[nodiscard]] std::string health();
  // The watchdog's report once it fired (it has printed it and aborted), else "".
  std::string watchdogReport() const;

protected:
  std::string createGroup(CommGroup &g) override;

private:
  struct State;
  NcclCommunicator(DeviceMesh mesh, int64_t rank);
  std::unique_ptr<State> state_;
};

} // namespace shardc::rt
