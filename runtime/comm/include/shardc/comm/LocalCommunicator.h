// Ranks as threads of one process: collectives meet in shared memory (each member publishes
// its input, every member computes its own output). For tests and single-device debugging.
#pragma once

#include "shardc/comm/Communicator.h"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

namespace shardc::rt {

// What the ranks of one in-process job share. Make one per job and one LocalCommunicator
// per rank thread.
class LocalWorld {
public:
  explicit LocalWorld(DeviceMesh mesh) : mesh_(std::move(mesh)) {}
  const DeviceMesh &mesh() const { return mesh_; }

  // Records that `rank` failed (the first failure wins): every wait in a collective, now or
  // later, fails with "rank R failed: reason" instead of running into its timeout.
  void abort(int64_t rank, const std::string &reason);
  // The first recorded failure as "rank R failed: reason", or "".
  std::string failure() const;

private:
  friend class LocalCommunicator;

  // One rendezvous per group (keyed by its member list): collective number `generation` is in
  // progress; members publish inputs, compute, and leave once all have finished reading.
  struct Rendezvous {
    uint64_t generation = 0;
    int64_t arrived = 0, finished = 0, left = 0;
    std::vector<bool> present, done;
    std::vector<const void *> inputs;
    std::string kind; // "all_reduce f32 x12": every member must make the same call
  };

  DeviceMesh mesh_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::vector<int64_t>, Rendezvous> rendezvous_;
  int64_t failedRank_ = -1;
  std::string failure_;
};

class LocalCommunicator final : public Communicator {
public:
  LocalCommunicator(std::shared_ptr<LocalWorld> world, int64_t rank)
      : Communicator(world->mesh(), rank), world_(std::move(world)) {}
  const char *name() const override { return "local"; }
  LocalWorld &world() const { return *world_; }

  std::string allReduce(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype,
                        ReduceOp op) override;
  std::string allGather(const CommGroup &g, const void *in, void *out, int64_t count,
                        DType dtype) override;
  std::string reduceScatter(const CommGroup &g, const void *in, void *out, int64_t count,
                            DType dtype, ReduceOp op) override;
  std::string allToAll(const CommGroup &g, const void *in, void *out, int64_t count,
                       DType dtype) override;
  std::string allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts, void *out,
                        const int64_t *recvCounts, DType dtype) override;
  std::string barrier(const CommGroup &g) override;
  void abort(const std::string &reason) override { world_->abort(rank(), reason); }

private:
  // Meets the group for one collective: publishes `in`, then calls compute(inputs by group
  // index) once all have arrived, then waits until every member has finished reading.
  // `result` (outBytes) is written to `out` only after that, so `out` may alias any input.
  template <typename Compute>
  std::string meet(const CommGroup &g, const std::string &kind, const void *in, void *out,
                   size_t outBytes, Compute compute);

  std::shared_ptr<LocalWorld> world_;
  // By member list, as the rendezvous: groups over different axes may have the same members.
  std::map<std::vector<int64_t>, uint64_t> nextGeneration_;
  std::vector<uint8_t> result_;
};

} // namespace shardc::rt
