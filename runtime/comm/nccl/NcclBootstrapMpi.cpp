// The MPI path of the NCCL bootstrap (compiled only when MPI is found): rank and size from
// MPI_COMM_WORLD, the local rank from host names, and rank 0's unique id by broadcast. Every
// exchange is nonblocking and polled against the timeout, as in MpiCommunicator.
#include "shardc/comm/NcclBootstrap.h"

#include "shardc/comm/Communicator.h"
#include "shardc/comm/MpiCommunicator.h"

#include <mpi.h>

#include <cstring>
#include <memory>
#include <thread>

namespace shardc::rt {

namespace {

using Clock = std::chrono::steady_clock;

std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

// What the pending requests read and write; leaked after a timeout, when MPI may still touch
// it (the process is about to fail anyway).
struct Exchange {
  std::vector<char> names;   // MPI_MAX_PROCESSOR_NAME per rank
  int64_t length = 0;        // the blob's size; -1 when rank 0 failed to make it
  std::vector<uint8_t> blob;
};

std::string waitFor(int rc, MPI_Request &request, Clock::time_point deadline,
                    std::chrono::milliseconds timeout, const char *what,
                    std::unique_ptr<Exchange> &x) {
  if (rc != MPI_SUCCESS)
    return std::string(what) + " failed: " + mpiError(rc);
  for (int spins = 0;; ++spins) {
    int done = 0;
    if (int trc = MPI_Test(&request, &done, MPI_STATUS_IGNORE); trc != MPI_SUCCESS)
      return std::string(what) + " failed: " + mpiError(trc);
    if (done)
      return "";
    if (Clock::now() > deadline) {
      (void)x.release();
      return std::string(what) + " timed out after " + formatDuration(timeout) +
             " (a rank did not start or died)";
    }
    if (spins > 1000)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

} // namespace

bool bootstrapHasMpi() { return true; }

std::string bootstrapFromMpi(const BlobMaker &make, std::chrono::milliseconds timeout,
                             NcclBootstrap &out) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int64_t r = 0, n = 0;
    if (std::string err = initMpi(r, n); !err.empty())
      return err;
  }
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Clock::time_point deadline = Clock::now() + timeout;
  auto x = std::make_unique<Exchange>();

  // Local rank: how many lower ranks run on this host (processes are placed on GPUs per host).
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int nameLength = 0;
  MPI_Get_processor_name(name, &nameLength);
  x->names.assign(static_cast<size_t>(size) * MPI_MAX_PROCESSOR_NAME, '\0');
  MPI_Request request = MPI_REQUEST_NULL;
  int rc = MPI_Iallgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, x->names.data(),
                          MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD, &request);
  if (std::string err = waitFor(rc, request, deadline, timeout, "gathering host names", x);
      !err.empty())
    return err;
  int localRank = 0;
  for (int r = 0; r < rank; ++r)
    if (std::strncmp(x->names.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME, name,
                     MPI_MAX_PROCESSOR_NAME) == 0)
      ++localRank;

  // The blob: its length first (-1 tells the others that rank 0 failed), then its bytes.
  std::string makeError;
  if (rank == 0) {
    makeError = make(x->blob);
    x->length = makeError.empty() ? static_cast<int64_t>(x->blob.size()) : -1;
  }
  rc = MPI_Ibcast(&x->length, 1, MPI_INT64_T, 0, MPI_COMM_WORLD, &request);
  if (std::string err = waitFor(rc, request, deadline, timeout, "broadcasting the NCCL id", x);
      !err.empty())
    return err;
  if (!makeError.empty())
    return makeError;
  if (x->length < 0)
    return "rank 0 failed to make the NCCL unique id (see its error)";
  x->blob.resize(static_cast<size_t>(x->length));
  if (x->length > 0) {
    rc = MPI_Ibcast(x->blob.data(), static_cast<int>(x->length), MPI_BYTE, 0, MPI_COMM_WORLD,
                    &request);
    if (std::string err =
            waitFor(rc, request, deadline, timeout, "broadcasting the NCCL id", x);
        !err.empty())
      return err;
  }

  NcclBootstrap b;
  b.rank = rank;
  b.worldSize = size;
  b.localRank = localRank;
  b.launcher = "mpi";
  b.uniqueId = std::move(x->blob);
  out = std::move(b);
  return "";
}

} // namespace shardc::rt
