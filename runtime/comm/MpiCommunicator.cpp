// MPI collectives as nonblocking calls polled against the timeout. Each collective also sends
// a small arrival message to every member, so a timeout names the ranks that never came.
#include "shardc/comm/MpiCommunicator.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace shardc::rt {

namespace {

using Clock = std::chrono::steady_clock;

// Arrival messages use their own tag; MPI keeps point-to-point traffic apart from the
// collectives on the same communicator, and messages between two ranks do not overtake.
constexpr int kArrivalTag = 0x5c01;

std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

// Ends the process when a blocking MPI call (communicator creation, finalize) outlives its
// deadline, so that a rank whose peer died does not hang. Never destroyed: its thread may
// still be waiting while static destructors run.
class Watchdog {
public:
  void start(int64_t rank) {
    rank_ = rank;
    std::thread([this] { loop(); }).detach();
  }
  void arm(std::string what, std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> lock(mutex_);
    what_ = std::move(what);
    limit_ = timeout;
    deadline_ = Clock::now() + timeout;
    armed_ = true;
    changed_.notify_all();
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = false;
    changed_.notify_all();
  }

private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (!armed_) {
        changed_.wait(lock);
        continue;
      }
      auto deadline = deadline_;
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ &&
          deadline_ == deadline) {
        std::fprintf(stderr,
                     "shardc-run: error: [r%lld] %s did not finish within %s (a peer rank may "
                     "have died); exiting\n",
                     static_cast<long long>(rank_), what_.c_str(), formatDuration(limit_).c_str());
        std::fflush(stderr);
        ::_exit(1);
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = false;
  std::string what_;
  std::chrono::milliseconds limit_{0};
  Clock::time_point deadline_;
  int64_t rank_ = 0;
};

Watchdog &watchdog() {
  static Watchdog *w = new Watchdog;
  return *w;
}

std::string tooLarge(uint64_t bytes) {
  return "a collective of " + std::to_string(bytes) +
         " bytes per member exceeds MPI's int count (not supported yet)";
}

} // namespace

bool launchedByMpi() {
  for (const char *var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (const char *v = std::getenv(var); v && *v)
      return true;
  return false;
}

std::string initMpi(int64_t &rank, int64_t &size) {
  int provided = 0;
  if (int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      rc != MPI_SUCCESS)
    return "MPI_Init_thread failed: " + mpiError(rc);
  // Errors come back as codes and end as one-line messages, never as MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int r = 0, n = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  rank = r;
  size = n;
  watchdog().start(rank);
  return "";
}

void finalizeMpi(std::chrono::milliseconds timeout) {
  watchdog().arm("MPI_Finalize", timeout);
  MPI_Finalize();
  watchdog().disarm();
}

void abortMpi(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  ::_exit(code);
}

struct MpiCommunicator::State {
  // What pending requests write to or read from. After a failed collective its requests stay
  // pending, so the buffers are abandoned (leaked) rather than freed under MPI's feet.
  struct Buffers {
    int64_t sentSequence = 0;      // the arrival payload
    std::vector<int64_t> arrivals; // one payload per member
    std::vector<uint8_t> received, reduced, gathered;
  };
  std::vector<MPI_Comm> comms;     // by CommGroup::id
  std::map<int, int64_t> sequence; // collectives made on each group so far
  std::unique_ptr<Buffers> buffers = std::make_unique<Buffers>();
  std::string failed;              // the first failed collective: the others refuse to start

  std::string fail(std::string err) {
    (void)buffers.release();
    buffers = std::make_unique<Buffers>();
    failed = err;
    return err;
  }
};

MpiCommunicator::MpiCommunicator(DeviceMesh mesh, int64_t rank)
    : Communicator(std::move(mesh), rank), state_(std::make_unique<State>()) {}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    for (MPI_Comm &c : state_->comms)
      MPI_Comm_free(&c);
}

std::string MpiCommunicator::create(DeviceMesh mesh, std::unique_ptr<MpiCommunicator> &out) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    return "MPI is not initialised";
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (mesh.worldSize() != size)
    return "the mesh (" + mesh.describe() + ") has " + std::to_string(mesh.worldSize()) +
           " ranks, the MPI job " + std::to_string(size);
  out.reset(new MpiCommunicator(std::move(mesh), rank));
  return "";
}

std::string MpiCommunicator::createGroup(CommGroup &g) {
  // Groups over the same axes partition the world; the smallest member names each one, and
  // the key makes the sub-communicator's rank equal the group index.
  int color = static_cast<int>(*std::min_element(g.ranks.begin(), g.ranks.end()));
  MPI_Comm comm = MPI_COMM_NULL;
  watchdog().arm("creating the communicator of group " + g.describe(), timeout());
  int rc = MPI_Comm_split(MPI_COMM_WORLD, color, static_cast<int>(g.index), &comm);
  watchdog().disarm();
  if (rc != MPI_SUCCESS)
    return "MPI_Comm_split failed: " + mpiError(rc);
  state_->comms.resize(static_cast<size_t>(g.id) + 1, MPI_COMM_NULL);
  state_->comms[static_cast<size_t>(g.id)] = comm;
  return "";
}

namespace {

// One collective on one group: the arrival handshake plus up to two nonblocking phases, all
// polled against one deadline.
class Exchange {
public:
  Exchange(const CommGroup &g, MPI_Comm comm, std::chrono::milliseconds timeout,
           int64_t sequence, int64_t &sentSequence, std::vector<int64_t> &arrivals)
      : g_(g), timeout_(timeout), deadline_(Clock::now() + timeout),
        sequence_(sequence), arrivals_(arrivals) {
    size_t n = static_cast<size_t>(g.size());
    arrivals_.assign(n, -1);
    sentSequence = sequence;
    recvs_.assign(n, MPI_REQUEST_NULL);
    for (size_t j = 0; j < n; ++j) {
      if (static_cast<int64_t>(j) == g.index)
        continue;
      MPI_Irecv(&arrivals_[j], 1, MPI_INT64_T, static_cast<int>(j), kArrivalTag, comm,
                &recvs_[j]);
      sends_.emplace_back(MPI_REQUEST_NULL);
      MPI_Isend(&sentSequence, 1, MPI_INT64_T, static_cast<int>(j), kArrivalTag, comm,
                &sends_.back());
    }
  }

  // Polls `data` (from an MPI_I* call that returned `rc`) and the handshake to completion.
  std::string wait(int rc, MPI_Request data) {
    if (rc != MPI_SUCCESS)
      return mpiError(rc);
    int spins = 0;
    for (;;) {
      bool pending = false;
      auto test = [&](MPI_Request &r) {
        if (r == MPI_REQUEST_NULL)
          return;
        int done = 0;
        MPI_Test(&r, &done, MPI_STATUS_IGNORE);
        pending = pending || !done;
      };
      test(data);
      for (MPI_Request &r : recvs_)
        test(r);
      for (MPI_Request &r : sends_)
        test(r);
      if (!pending)
        break;
      if (Clock::now() > deadline_)
        return timedOut();
      // Spin briefly for latency, then yield the core: ranks are often oversubscribed.
      if (++spins > 2000)
        std::this_thread::sleep_for(std::chrono::microseconds(spins > 20000 ? 1000 : 50));
    }
    for (size_t j = 0; j < arrivals_.size(); ++j)
      if (static_cast<int64_t>(j) != g_.index && arrivals_[j] != sequence_)
        return "rank " + std::to_string(g_.ranks[j]) + " is at collective #" +
               std::to_string(arrivals_[j]) + " on group " + g_.describe() +
               ", this rank at #" + std::to_string(sequence_) +
               " (the ranks disagree on the program)";
    return "";
  }

private:
  std::string timedOut() const {
    std::vector<int64_t> missing;
    for (size_t j = 0; j < recvs_.size(); ++j)
      if (recvs_[j] != MPI_REQUEST_NULL)
        missing.push_back(g_.ranks[j]);
    std::string what =
        missing.empty()
            ? "every member arrived but the transfer did not complete (a peer may have died)"
            : (missing.size() == 1 ? "rank " : "ranks ") + rankList(missing) + " did not arrive";
    return "timed out after " + formatDuration(timeout_) + " on group " + g_.describe() + ": " +
           what;
  }

  const CommGroup &g_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_;
  int64_t sequence_;
  std::vector<int64_t> &arrivals_;
  std::vector<MPI_Request> recvs_, sends_;
};

bool fitsInt(uint64_t bytes) { return bytes <= static_cast<uint64_t>(INT_MAX); }

} // namespace

#define SHARDC_EXCHANGE(g)                                                                    \
  if (!state_->failed.empty())                                                                \
    return "an earlier collective failed (" + state_->failed + ")";                           \
  MPI_Comm comm = state_->comms[static_cast<size_t>((g).id)];                                 \
  State::Buffers &buf = *state_->buffers;                                                     \
  Exchange exchange((g), comm, timeout(), ++state_->sequence[(g).id], buf.sentSequence,       \
                    buf.arrivals);                                                            \
  MPI_Request request = MPI_REQUEST_NULL

std::string MpiCommunicator::allGather(const CommGroup &g, const void *in, void *out,
                                       int64_t count, DType dtype) {
  uint64_t bytes = static_cast<uint64_t>(count) * dtypeSize(dtype);
  if (!fitsInt(bytes * static_cast<uint64_t>(g.size())))
    return tooLarge(bytes);
  SHARDC_EXCHANGE(g);
  buf.received.resize(bytes * static_cast<uint64_t>(g.size()));
  int rc = MPI_Iallgather(in, static_cast<int>(bytes), MPI_BYTE, buf.received.data(),
                          static_cast<int>(bytes), MPI_BYTE, comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  std::memcpy(out, buf.received.data(), buf.received.size());
  return "";
}

std::string MpiCommunicator::allToAll(const CommGroup &g, const void *in, void *out, int64_t count,
                                      DType dtype) {
  uint64_t bytes = static_cast<uint64_t>(count) * dtypeSize(dtype);
  if (!fitsInt(bytes * static_cast<uint64_t>(g.size())))
    return tooLarge(bytes);
  SHARDC_EXCHANGE(g);
  buf.received.resize(bytes * static_cast<uint64_t>(g.size()));
  int rc = MPI_Ialltoall(in, static_cast<int>(bytes), MPI_BYTE, buf.received.data(),
                         static_cast<int>(bytes), MPI_BYTE, comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  std::memcpy(out, buf.received.data(), buf.received.size());
  return "";
}

std::string MpiCommunicator::allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts,
                                       void *out, const int64_t *recvCounts, DType dtype) {
  const uint64_t elem = dtypeSize(dtype);
  const size_t n = static_cast<size_t>(g.size());
  std::vector<int> sendBytes(n), sendAt(n), recvBytes(n), recvAt(n);
  uint64_t sent = 0, received = 0;
  for (size_t j = 0; j < n; ++j) {
    uint64_t s = static_cast<uint64_t>(sendCounts[j]) * elem, r = static_cast<uint64_t>(recvCounts[j]) * elem;
    if (!fitsInt(sent + s) || !fitsInt(received + r))
      return tooLarge(std::max(sent + s, received + r));
    sendBytes[j] = static_cast<int>(s);
    sendAt[j] = static_cast<int>(sent);
    recvBytes[j] = static_cast<int>(r);
    recvAt[j] = static_cast<int>(received);
    sent += s;
    received += r;
  }
  SHARDC_EXCHANGE(g);
  int rc = MPI_Ialltoallv(in, sendBytes.data(), sendAt.data(), MPI_BYTE, out, recvBytes.data(), recvAt.data(),
                          MPI_BYTE, comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  return "";
}

std::string MpiCommunicator::reduceScatter(const CommGroup &g, const void *in, void *out,
                                           int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return std::string("reduce_scatter of ") + dtypeName(dtype) +
           " is not supported (f32, f64, bf16, f16, i64, i32)";
  uint64_t bytes = static_cast<uint64_t>(count) * dtypeSize(dtype);
  if (!fitsInt(bytes * static_cast<uint64_t>(g.size())))
    return tooLarge(bytes);
  SHARDC_EXCHANGE(g);
  buf.received.resize(bytes * static_cast<uint64_t>(g.size()));
  int rc = MPI_Ialltoall(in, static_cast<int>(bytes), MPI_BYTE, buf.received.data(),
                         static_cast<int>(bytes), MPI_BYTE, comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  std::vector<const void *> chunks;
  for (int64_t j = 0; j < g.size(); ++j)
    chunks.push_back(buf.received.data() + static_cast<uint64_t>(j) * bytes);
  reduceInOrder(dtype, op, chunks.data(), chunks.size(), count, out);
  return "";
}

std::string MpiCommunicator::allReduce(const CommGroup &g, const void *in, void *out,
                                       int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return std::string("all_reduce of ") + dtypeName(dtype) +
           " is not supported (f32, f64, bf16, f16, i64, i32)";
  const size_t n = static_cast<size_t>(g.size()), me = static_cast<size_t>(g.index);
  const uint64_t elem = dtypeSize(dtype);
  if (!fitsInt(static_cast<uint64_t>(count) * elem))
    return tooLarge(static_cast<uint64_t>(count) * elem);
  // Member j owns elements [offset_j, offset_j + share_j): it reduces them, then shares them.
  std::vector<int> share(n), offset(n), mine(n), mineAt(n);
  for (size_t j = 0, at = 0; j < n; ++j) {
    int64_t elems = count / static_cast<int64_t>(n) + (static_cast<int64_t>(j) < count % static_cast<int64_t>(n));
    share[j] = static_cast<int>(static_cast<uint64_t>(elems) * elem);
    offset[j] = static_cast<int>(at);
    at += static_cast<size_t>(share[j]);
  }
  for (size_t j = 0; j < n; ++j) {
    mine[j] = share[me];
    mineAt[j] = static_cast<int>(j) * share[me];
  }
  SHARDC_EXCHANGE(g);
  buf.received.resize(static_cast<size_t>(share[me]) * n);
  int rc = MPI_Ialltoallv(in, share.data(), offset.data(), MPI_BYTE, buf.received.data(),
                          mine.data(), mineAt.data(), MPI_BYTE, comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  std::vector<const void *> chunks;
  for (size_t j = 0; j < n; ++j)
    chunks.push_back(buf.received.data() + j * static_cast<size_t>(share[me]));
  buf.reduced.resize(static_cast<size_t>(share[me]));
  reduceInOrder(dtype, op, chunks.data(), n, share[me] / static_cast<int64_t>(elem),
                buf.reduced.data());
  // The second phase reuses the handshake's deadline: one timeout per collective.
  std::vector<uint8_t> &gathered = buf.gathered;
  gathered.resize(static_cast<size_t>(count) * elem);
  request = MPI_REQUEST_NULL;
  rc = MPI_Iallgatherv(buf.reduced.data(), share[me], MPI_BYTE, gathered.data(), share.data(),
                       offset.data(), MPI_BYTE, comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  if (!gathered.empty())
    std::memcpy(out, gathered.data(), gathered.size());
  return "";
}

std::string MpiCommunicator::barrier(const CommGroup &g) {
  SHARDC_EXCHANGE(g);
  int rc = MPI_Ibarrier(comm, &request);
  if (std::string err = exchange.wait(rc, request); !err.empty())
    return state_->fail(err);
  return "";
}

void MpiCommunicator::abort(const std::string &reason) {
  (void)reason; // the caller printed it; MPI_Abort only carries a code
  abortMpi(1);
}

} // namespace shardc::rt
