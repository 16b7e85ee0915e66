// Ranks as MPI processes (OpenMPI): one sub-communicator per axis group, nonblocking
// collectives polled against a deadline, and a watchdog for the calls that cannot be polled.
#pragma once

#include "shardc/comm/Communicator.h"

#include <memory>

namespace shardc::rt {

// Whether this process was started by an MPI launcher (mpirun/mpiexec/srun with PMIx):
// OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE is set.
bool launchedByMpi();
// MPI_Init_thread (funneled) and the world rank and size; starts the watchdog thread.
[[nodiscard]] std::string initMpi(int64_t &rank, int64_t &size);
// MPI_Finalize under the watchdog: a rank whose peers died exits within `timeout`.
void finalizeMpi(std::chrono::milliseconds timeout);
// MPI_Abort(MPI_COMM_WORLD, code): every rank of the job exits non-zero.
[[noreturn]] void abortMpi(int code);

class MpiCommunicator final : public Communicator {
public:
  // MPI must be initialised; `mesh.worldSize()` must equal MPI_COMM_WORLD's size.
  [[nodiscard]] static std::string create(DeviceMesh mesh, std::unique_ptr<MpiCommunicator> &out);
  ~MpiCommunicator() override;
  const char *name() const override { return "mpi"; }

  // Reductions are deterministic and match LocalCommunicator bit for bit: an all_to_all
  // brings each element's G values to one member, which reduces them in group-index order
  // (reduceInOrder), then an all_gather shares the result (the bytes a ring all-reduce moves).
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
  // MPI_Abort: ends every rank of the job; print the error before calling it.
  [[noreturn]] void abort(const std::string &reason) override;

protected:
  std::string createGroup(CommGroup &g) override;

private:
  struct State;
  explicit MpiCommunicator(DeviceMesh mesh, int64_t rank);
  std::unique_ptr<State> state_;
};

} // namespace shardc::rt
