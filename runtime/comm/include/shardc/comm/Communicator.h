// The collectives a sharded program needs, on groups of ranks named by mesh axes, with a
// deadline on every wait. Implementations: LocalCommunicator (threads), MpiCommunicator.
#pragma once

#include "shardc/comm/DeviceMesh.h"
#include "shardc/runtime/Tensor.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

enum class ReduceOp : uint8_t { Sum, Max };

std::optional<ReduceOp> parseReduceOp(std::string_view name); // "sum", "max"
const char *reduceOpName(ReduceOp op);

// One rank's view of a group: the ranks agreeing with it on every mesh axis not in `axes`.
struct CommGroup {
  int id = 0;                     // position in the communicator's cache
  std::vector<std::string> axes;  // as the step named them (order defines the group index)
  std::vector<int64_t> ranks;     // world ranks in group-index order
  int64_t index = 0;              // this rank's position in `ranks`
  int64_t size() const { return static_cast<int64_t>(ranks.size()); }
  std::string describe() const;   // "[tp] (ranks 2,3)"
};

// "10s", "500ms", "2m", "1.5s"; a bare number is seconds. nullopt when malformed or <= 0.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);
std::string formatDuration(std::chrono::milliseconds d); // "10s", "500ms", "1.5s"
// "3" or "1, 3" (for "ranks ... did not arrive").
std::string rankList(const std::vector<int64_t> &ranks);

// Whether a reduction (sum, max) is defined for `dtype`: f32, f64, bf16, f16 (reduced in f32),
// i64, i32.
bool isReducible(DType dtype);
// out[i] = srcs[0][i] op srcs[1][i] op ... in that order (group-index order), bf16/f16
// accumulated in f32 and rounded once; integer sums wrap; max propagates NaN. Every
// communicator reduces with this function, so the local and MPI results agree bit for bit.
void reduceInOrder(DType dtype, ReduceOp op, const void *const *srcs, size_t nsrcs, int64_t count,
                   void *out);

class Communicator {
public:
  virtual ~Communicator();
  virtual const char *name() const = 0; // "local", "mpi"
  // Whether collectives take device pointers (NCCL). Host communicators (local, MPI) take
  // host memory: with a device backend the executor stages their data through the host.
  virtual bool takesDevicePointers() const { return false; }

  int64_t rank() const { return rank_; }
  int64_t worldSize() const { return mesh_.worldSize(); }
  const DeviceMesh &mesh() const { return mesh_; }
  // How long any wait inside a collective may last before it fails naming the missing ranks.
  std::chrono::milliseconds timeout() const { return timeout_; }
  void setTimeout(std::chrono::milliseconds t) { timeout_ = t; }

  // This rank's group over `axes`, made on first use and cached (the pointer stays valid).
  // Every rank must resolve groups in the same order: MPI makes sub-communicators
  // collectively. Returns "" or a one-line error.
  [[nodiscard]] std::string group(const std::vector<std::string> &axes, const CommGroup *&out);

  // Collectives on contiguous buffers of `count` elements per member chunk; `out` may alias
  // `in`. G is the group size, j the group index.
  //   allReduce:     in, out: count elements; out = reduction over the group.
  //   allGather:     in: count; out: G*count, member j's input at chunk j.
  //   reduceScatter: in: G*count; out: count = chunk `index` of the reduction.
  //   allToAll:      in: G*count, chunk j goes to member j; out: G*count, chunk j from member j.
  //   allToAllV:     chunks of different sizes (expert parallelism's token dispatch): in holds
  //                  sendCounts[j] elements for member j, packed in group order; out receives
  //                  recvCounts[j] elements from member j, packed in group order. recvCounts[j]
  //                  must equal member j's sendCounts[index] (an allToAll of the counts tells
  //                  every member what it receives); `out` must not alias `in`.
  // Each returns "" or a one-line error ("timed out after 10s on group [tp] (ranks 2,3): rank 3
  // did not arrive"); the caller adds which step it was.
  [[nodiscard]] virtual std::string allReduce(const CommGroup &g, const void *in, void *out,
                                              int64_t count, DType dtype, ReduceOp op) = 0;
  [[nodiscard]] virtual std::string allGather(const CommGroup &g, const void *in, void *out,
                                              int64_t count, DType dtype) = 0;
  [[nodiscard]] virtual std::string reduceScatter(const CommGroup &g, const void *in, void *out,
                                                  int64_t count, DType dtype, ReduceOp op) = 0;
  [[nodiscard]] virtual std::string allToAll(const CommGroup &g, const void *in, void *out,
                                             int64_t count, DType dtype) = 0;
  [[nodiscard]] virtual std::string allToAllV(const CommGroup &g, const void *in,
                                              const int64_t *sendCounts, void *out,
                                              const int64_t *recvCounts, DType dtype) = 0;
  [[nodiscard]] virtual std::string barrier(const CommGroup &g) = 0;

  // Called after this rank failed (`reason` is its error): peers stop waiting for it. The
  // local communicator fails its peers' waits with the reason; MPI ends the job (MPI_Abort),
  // so print the error first.
  virtual void abort(const std::string &reason) = 0;

protected:
  Communicator(DeviceMesh mesh, int64_t rank) : mesh_(std::move(mesh)), rank_(rank) {}
  // Backend part of group(): `g` is filled in; MPI splits a sub-communicator here.
  virtual std::string createGroup(CommGroup &g) { (void)g; return ""; }

private:
  DeviceMesh mesh_;
  int64_t rank_ = 0;
  std::chrono::milliseconds timeout_{300000};
  std::vector<std::unique_ptr<CommGroup>> groups_;
};

} // namespace shardc::rt
