// NCCL collectives on the communication stream. Communicators are nonblocking (config
// blocking = 0) so that creation, splits and enqueues can be polled against the timeout and
// aborted from the watchdog thread instead of hanging in NCCL.
#include "shardc/comm/NcclCommunicator.h"

#include "shardc/comm/ProgressWatchdog.h"

#include <cuda.h> // types only: driver functions are fetched through cudart at run time
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace shardc::rt {

namespace {

using Clock = std::chrono::steady_clock;

std::string ncclText(ncclResult_t rc, ncclComm_t comm) {
  std::string s = ncclGetErrorString(rc);
  const char *last = ncclGetLastError(comm);
  if (last && *last)
    s += " (" + std::string(last) + ")";
  return s;
}

std::string cudaText(cudaError_t rc) {
  return std::string(cudaGetErrorName(rc)) + ": " + cudaGetErrorString(rc);
}

// Waits until a nonblocking call on `comm` that returned `rc` has finished: "" or an error.
// "timeout" means the deadline passed with NCCL still in progress; "aborted" that `cancel`
// was set (an abort waits for this call to let go of the communicator).
std::string settle(ncclComm_t comm, ncclResult_t rc, Clock::time_point deadline,
                   const std::atomic<bool> *cancel = nullptr) {
  if (rc == ncclSuccess)
    return "";
  if (rc != ncclInProgress)
    return ncclText(rc, comm);
  for (int spins = 0;; ++spins) {
    ncclResult_t state = ncclSuccess;
    if (ncclResult_t q = ncclCommGetAsyncError(comm, &state); q != ncclSuccess)
      return ncclText(q, comm);
    if (state == ncclSuccess)
      return "";
    if (state != ncclInProgress)
      return ncclText(state, comm);
    if (Clock::now() > deadline)
      return "timeout";
    if (cancel && *cancel)
      return "aborted";
    // Creation takes milliseconds to seconds; enqueues usually finish in the first spins.
    std::this_thread::sleep_for(std::chrono::microseconds(spins < 100 ? 10 : 1000));
  }
}

bool ncclType(DType dtype, ncclDataType_t &out) {
  switch (dtype) {
  case DType::F32: out = ncclFloat32; return true;
  case DType::F16: out = ncclFloat16; return true;
  case DType::BF16: out = ncclBfloat16; return true;
  case DType::F64: out = ncclFloat64; return true;
  case DType::I64: out = ncclInt64; return true;
  case DType::I32: out = ncclInt32; return true;
  case DType::I8: out = ncclInt8; return true;
  case DType::U8: out = ncclUint8; return true;
  case DType::Bool: out = ncclUint8; return true; // moved, never reduced
  }
  return false;
}

ncclRedOp_t ncclOp(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : ncclMax; }

bool overlaps(const void *a, size_t aBytes, const void *b, size_t bBytes) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + bBytes && y < x + aBytes;
}

// cuStreamWriteValue32 (its CUDA 12 ABI), fetched from the driver through cudart when a
// communicator is made, so that nothing links libcuda: shardc-run starts on machines without
// a driver. nullptr when the driver lacks it; the progress word is then written by a host
// function on the stream (cudaLaunchHostFunc).
using StreamWriteValue32 = CUresult(CUDAAPI *)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);
using GetErrorString = CUresult(CUDAAPI *)(CUresult, const char **);

template <typename Fn> Fn driverEntryPoint(const char *symbol) {
  void *fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion(symbol, &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess)
    return nullptr;
  return reinterpret_cast<Fn>(fn);
}

// What a host function on the stream writes when the driver entry point is missing.
struct HostMark {
  uint32_t *word;
  uint32_t marker;
};

void CUDART_CB writeHostMark(void *data) {
  auto *mark = static_cast<HostMark *>(data);
  __atomic_store_n(mark->word, mark->marker, __ATOMIC_RELEASE);
}

ncclConfig_t nonblockingConfig() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

} // namespace

struct NcclCommunicator::State {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::chrono::milliseconds setupTimeout{300000};
  std::mutex mutex;                // guards comms and failed: abort comes from the watchdog
  // Held shared by every call that uses a communicator handle, exclusively by abortAll, so
  // that ncclCommAbort never frees a communicator under a call in progress; such a call gives
  // up at once when `abortRequested` is set.
  std::shared_mutex use;
  std::atomic<bool> abortRequested{false};
  ncclComm_t world = nullptr;
  std::vector<ncclComm_t> comms;   // by CommGroup::id; the world group shares `world`
  std::vector<std::string> names;  // CommGroup::describe() by id, for errors
  std::atomic<bool> aborted{false};
  std::string failed;              // the first failure: later collectives refuse to start
  int32_t *barrierWord = nullptr;  // device word reduced by barrier()
  // Host-mapped progress words, one per lane (StallDetector: 0 the compute stream, 1 the
  // communication stream).
  uint32_t *progress = nullptr;
  CUdeviceptr progressDevice = 0;
  StreamWriteValue32 writeValue = nullptr; // the driver's cuStreamWriteValue32, if it has one
  GetErrorString errorString = nullptr;
  std::unique_ptr<ProgressWatchdog> watchdog;
  struct RunMark {
    int64_t step;
    std::string name;
    int lane;
  };
  std::vector<RunMark> runMarks; // this run's markStep calls, in order
  // Host-function marks (no driver entry point), by lane and marker - 1: kept for the
  // process's life, since a captured graph replays the calls that name them.
  std::vector<std::unique_ptr<HostMark>> hostMarks[StallDetector::kLanes];

  std::string fail(std::string err) {
    std::lock_guard<std::mutex> lock(mutex);
    if (failed.empty())
      failed = err;
    return err;
  }

  // ncclCommAbort on every communicator, once; `reason` becomes the failure.
  void abortAll(const std::string &reason) {
    (void)fail(reason); // first, so that no new call starts
    abortRequested = true;
    std::unique_lock<std::shared_mutex> exclusive(use);
    std::lock_guard<std::mutex> lock(mutex);
    if (aborted.exchange(true))
      return;
    // Handles stay in place (never reused): later lookups fail on `failed`.
    cudaSetDevice(device);
    std::vector<ncclComm_t> done;
    for (ncclComm_t c : comms)
      if (c && c != world && std::find(done.begin(), done.end(), c) == done.end()) {
        ncclCommAbort(c);
        done.push_back(c);
      }
    if (world)
      ncclCommAbort(world);
  }

  // Ends a collective's enqueue: waits for NCCL's host side (never the GPU), records failures.
  std::string finish(ncclComm_t comm, const std::string &group, const char *what,
                     ncclResult_t rc, std::chrono::milliseconds timeout) {
    std::string err = settle(comm, rc, Clock::now() + timeout, &abortRequested);
    if (err.empty())
      return "";
    if (err == "aborted") {
      std::lock_guard<std::mutex> lock(mutex);
      return std::string(what) + " on " + group + ": aborted (" + failed + ")";
    }
    return fail(std::string(what) + " on " + group + ": " +
                (err == "timeout" ? "NCCL did not enqueue it within " + formatDuration(timeout)
                                  : "NCCL: " + err));
  }

  // The first asynchronous NCCL error on any communicator, or "".
  std::string asyncError() {
    // Under the lock: abortAll must not free a handle while it is queried.
    std::lock_guard<std::mutex> lock(mutex);
    if (aborted)
      return "";
    std::vector<ncclComm_t> all = comms;
    std::vector<std::string> what = names;
    all.push_back(world);
    what.push_back("the world communicator");
    for (size_t i = 0; i < all.size(); ++i) {
      ncclResult_t st = ncclSuccess;
      if (!all[i])
        continue;
      if (ncclResult_t q = ncclCommGetAsyncError(all[i], &st); q != ncclSuccess)
        return "NCCL error on " + what[i] + ": " + ncclText(q, all[i]);
      if (st != ncclSuccess && st != ncclInProgress)
        return "NCCL error on " + what[i] + ": " + ncclText(st, all[i]);
    }
    return "";
  }

  // The handle of group `id` and its description, or an error.
  std::string lookup(int id, ncclComm_t &comm, std::string &name) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!failed.empty())
      return "an earlier failure stopped this communicator (" + failed + ")";
    if (id < 0 || static_cast<size_t>(id) >= comms.size() || !comms[static_cast<size_t>(id)])
      return "group #" + std::to_string(id) + " has no NCCL communicator";
    comm = comms[static_cast<size_t>(id)];
    name = names[static_cast<size_t>(id)];
    return "";
  }
};

NcclCommunicator::NcclCommunicator(DeviceMesh mesh, int64_t rank)
    : Communicator(std::move(mesh), rank), state_(std::make_unique<State>()) {}

int NcclCommunicator::device() const { return state_->device; }
void NcclCommunicator::setStream(cudaStream_t stream) { state_->stream = stream; }
cudaStream_t NcclCommunicator::stream() const { return state_->stream; }

std::string NcclCommunicator::create(DeviceMesh mesh, const NcclOptions &options,
                                     std::unique_ptr<NcclCommunicator> &out) {
  NcclBootstrap boot;
  if (std::string err = bootstrap(options.timeout, boot); !err.empty())
    return "NCCL bootstrap: " + err;
  return create(std::move(mesh), boot, options, out);
}

std::string NcclCommunicator::create(DeviceMesh mesh, const NcclBootstrap &boot,
                                     const NcclOptions &options,
                                     std::unique_ptr<NcclCommunicator> &out) {
  const std::string who = "rank " + std::to_string(boot.rank) + ": ";
  if (mesh.worldSize() != boot.worldSize)
    return "the mesh (" + mesh.describe() + ") has " + std::to_string(mesh.worldSize()) +
           " ranks, the " + boot.launcher + " job " + std::to_string(boot.worldSize);
  if (boot.uniqueId.size() != sizeof(ncclUniqueId))
    return "the NCCL unique id has " + std::to_string(boot.uniqueId.size()) + " bytes, not " +
           std::to_string(sizeof(ncclUniqueId));
  int visible = 0;
  if (cudaError_t rc = cudaGetDeviceCount(&visible); rc != cudaSuccess)
    return who + "no CUDA device: " + cudaText(rc);
  int device = options.device >= 0 ? options.device
                                   : (visible == 1 ? 0 : static_cast<int>(boot.localRank));
  if (device >= visible)
    return who + "CUDA device " + std::to_string(device) + " does not exist (" +
           std::to_string(visible) + " visible, local rank " + std::to_string(boot.localRank) +
           ")";
  if (cudaError_t rc = cudaSetDevice(device); rc != cudaSuccess)
    return who + "cudaSetDevice(" + std::to_string(device) + ") failed: " + cudaText(rc);

  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator(std::move(mesh), boot.rank));
  State &s = *comm->state_;
  s.device = device;
  s.setupTimeout = options.timeout;
  comm->setTimeout(options.timeout);

  ncclUniqueId id;
  std::memcpy(id.internal, boot.uniqueId.data(), sizeof id.internal);
  ncclConfig_t config = nonblockingConfig();
  ncclResult_t rc = ncclCommInitRankConfig(&s.world, static_cast<int>(boot.worldSize), id,
                                           static_cast<int>(boot.rank), &config);
  std::string err = s.world ? settle(s.world, rc, Clock::now() + options.timeout)
                            : ncclText(rc, nullptr);
  if (!err.empty()) {
    if (s.world)
      ncclCommAbort(s.world);
    s.world = nullptr;
    return who + "creating the NCCL world communicator " +
           (err == "timeout" ? "timed out after " + formatDuration(options.timeout) +
                                   " (a rank did not join)"
                             : "failed: " + err);
  }

  if (cudaError_t c = cudaMalloc(&s.barrierWord, sizeof(int32_t)); c != cudaSuccess)
    return who + "cudaMalloc of the barrier word failed: " + cudaText(c);
  if (cudaError_t c = cudaMemset(s.barrierWord, 0, sizeof(int32_t)); c != cudaSuccess)
    return who + "cudaMemset of the barrier word failed: " + cudaText(c);

  if (options.watchdog) {
    // The progress word lives in pinned host memory that the GPU writes through the mapping;
    // the watchdog thread reads it without any CUDA call.
    void *host = nullptr, *dev = nullptr;
    if (cudaError_t c = cudaHostAlloc(&host, sizeof(uint32_t) * StallDetector::kLanes, cudaHostAllocMapped);
        c != cudaSuccess)
      return who + "cudaHostAlloc of the progress word failed: " + cudaText(c);
    s.progress = static_cast<uint32_t *>(host);
    for (int l = 0; l < StallDetector::kLanes; ++l)
      s.progress[l] = 0;
    if (cudaError_t c = cudaHostGetDevicePointer(&dev, host, 0); c != cudaSuccess)
      return who + "cudaHostGetDevicePointer of the progress word failed: " + cudaText(c);
    s.progressDevice = reinterpret_cast<CUdeviceptr>(dev);
    s.writeValue = driverEntryPoint<StreamWriteValue32>("cuStreamWriteValue32");
    s.errorString = driverEntryPoint<GetErrorString>("cuGetErrorString");
    State *state = &s;
    s.watchdog = std::make_unique<ProgressWatchdog>(
        boot.rank, options.timeout,
        [state] {
          StallDetector::Words words{};
          for (int l = 0; l < StallDetector::kLanes; ++l)
            words[static_cast<size_t>(l)] = __atomic_load_n(state->progress + l, __ATOMIC_ACQUIRE);
          return words;
        },
        [state](const std::string &report) {
          std::fprintf(stderr, "shardc-run: error: %s; aborting NCCL\n", report.c_str());
          std::fflush(stderr);
          state->abortAll(report);
        },
        [state] { return state->asyncError(); });
  }
  out = std::move(comm);
  return "";
}

NcclCommunicator::~NcclCommunicator() {
  State &s = *state_;
  s.watchdog.reset(); // first: its thread may abort
  cudaSetDevice(s.device);
  if (!s.aborted) {
    // Children before the world; each finalized (flushing its work) within timeout(),
    // aborted when that does not finish.
    std::vector<ncclComm_t> order;
    for (ncclComm_t c : s.comms)
      if (c && c != s.world && std::find(order.begin(), order.end(), c) == order.end())
        order.push_back(c);
    if (s.world)
      order.push_back(s.world);
    for (ncclComm_t c : order) {
      ncclResult_t rc = ncclCommFinalize(c);
      if (settle(c, rc, Clock::now() + timeout()).empty())
        ncclCommDestroy(c);
      else
        ncclCommAbort(c);
    }
  }
  if (s.progress)
    cudaFreeHost(s.progress);
  if (s.barrierWord)
    cudaFree(s.barrierWord);
}

void NcclCommunicator::abort(const std::string &reason) { state_->abortAll(reason); }

std::string NcclCommunicator::health() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (!state_->failed.empty())
      return state_->failed;
  }
  return state_->asyncError();
}

std::string NcclCommunicator::createGroup(CommGroup &g) {
  State &s = *state_;
  std::shared_lock<std::shared_mutex> inUse(s.use);
  std::string name = "group " + g.describe();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.failed.empty())
      return "an earlier failure stopped this communicator (" + s.failed + ")";
  }
  ncclComm_t comm = nullptr;
  bool isWorld = g.size() == worldSize();
  for (int64_t j = 0; isWorld && j < g.size(); ++j)
    isWorld = g.ranks[static_cast<size_t>(j)] == j;
  if (isWorld) {
    comm = s.world; // same members in the same order: no split needed (on every rank alike)
  } else {
    // Collective over the world: every rank splits for the same axes in the same order
    // (Communicator::group's contract), each into the group it belongs to.
    int color = static_cast<int>(meshGroupColor(mesh(), rank(), g.axes));
    ncclConfig_t config = nonblockingConfig();
    ncclResult_t rc = ncclCommSplit(s.world, color, static_cast<int>(g.index), &comm, &config);
    Clock::time_point deadline = Clock::now() + s.setupTimeout;
    std::string err = settle(s.world, rc, deadline, &s.abortRequested);
    if (err.empty() && comm)
      err = settle(comm, ncclInProgress, deadline, &s.abortRequested);
    if (err.empty() && !comm)
      err = "ncclCommSplit returned no communicator";
    // Communicator::group() prefixes "group [axes]: "; a failed split leaves the world unusable.
    if (!err.empty()) {
      if (comm)
        ncclCommAbort(comm);
      std::string ranks;
      for (int64_t r : g.ranks)
        ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
      return s.fail(err == "timeout"
                        ? "timed out after " + formatDuration(s.setupTimeout) +
                              " splitting its NCCL communicator (ranks " + ranks +
                              "; a rank did not reach the split)"
                        : "ncclCommSplit failed: " + err);
    }
    int nranks = 0, me = -1;
    ncclCommCount(comm, &nranks);
    ncclCommUserRank(comm, &me);
    if (nranks != g.size() || me != g.index) {
      ncclCommAbort(comm);
      return s.fail("its NCCL communicator has " + std::to_string(nranks) +
                    " ranks with this one at " + std::to_string(me) + ", expected " +
                    std::to_string(g.size()) + " and " + std::to_string(g.index));
    }
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.comms.resize(static_cast<size_t>(g.id) + 1, nullptr);
  s.names.resize(static_cast<size_t>(g.id) + 1);
  s.comms[static_cast<size_t>(g.id)] = comm;
  s.names[static_cast<size_t>(g.id)] = name;
  return "";
}

namespace {

// `bytes` of `src` copied to stream-ordered scratch, for aliasing NCCL cannot take in place.
// Freed with cudaFreeAsync after the collective, so nothing waits on the host.
struct Staging {
  void *ptr = nullptr;
  cudaStream_t stream = nullptr;
  std::string copy(const void *src, size_t bytes, cudaStream_t s) {
    stream = s;
    if (cudaError_t rc = cudaMallocAsync(&ptr, bytes, s); rc != cudaSuccess)
      return "cudaMallocAsync of " + std::to_string(bytes) + " scratch bytes failed: " +
             cudaText(rc);
    if (cudaError_t rc = cudaMemcpyAsync(ptr, src, bytes, cudaMemcpyDeviceToDevice, s);
        rc != cudaSuccess)
      return "cudaMemcpyAsync to scratch failed: " + cudaText(rc);
    return "";
  }
  ~Staging() {
    if (ptr)
      cudaFreeAsync(ptr, stream);
  }
};

std::string notReducible(const char *what, DType dtype) {
  return std::string(what) + " of " + dtypeName(dtype) +
         " is not supported (f32, f64, bf16, f16, i64, i32)";
}

} // namespace

// Resolves the group's communicator and the NCCL type; returns early on an error or on an
// empty collective (which every member skips alike).
#define SHARDC_NCCL_PREPARE(what)                                                             \
  std::shared_lock<std::shared_mutex> inUse(state_->use);                                     \
  ncclComm_t comm = nullptr;                                                                  \
  std::string groupName;                                                                      \
  if (std::string err = state_->lookup(g.id, comm, groupName); !err.empty())                 \
    return err;                                                                               \
  ncclDataType_t type;                                                                        \
  if (!ncclType(dtype, type))                                                                 \
    return std::string(what) + " of an unknown dtype";                                        \
  if (count <= 0)                                                                             \
    return "";                                                                                \
  const size_t chunk = static_cast<size_t>(count) * dtypeSize(dtype);                         \
  const size_t members = static_cast<size_t>(g.size());                                       \
  (void)chunk;                                                                                \
  (void)members;                                                                              \
  cudaStream_t stream = state_->stream

std::string NcclCommunicator::allReduce(const CommGroup &g, const void *in, void *out,
                                        int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return notReducible("all_reduce", dtype);
  SHARDC_NCCL_PREPARE("all_reduce");
  Staging staged;
  if (in != out && overlaps(in, chunk, out, chunk)) {
    if (std::string err = staged.copy(in, chunk, stream); !err.empty())
      return state_->fail("all_reduce on " + groupName + ": " + err);
    in = staged.ptr;
  }
  ncclResult_t rc =
      ncclAllReduce(in, out, static_cast<size_t>(count), type, ncclOp(op), comm, stream);
  return state_->finish(comm, groupName, "all_reduce", rc, timeout());
}

std::string NcclCommunicator::allGather(const CommGroup &g, const void *in, void *out,
                                        int64_t count, DType dtype) {
  SHARDC_NCCL_PREPARE("all_gather");
  // In place only when the input already sits at its chunk of the output.
  const void *mine = static_cast<const uint8_t *>(out) + static_cast<size_t>(g.index) * chunk;
  Staging staged;
  if (in != mine && overlaps(in, chunk, out, chunk * members)) {
    if (std::string err = staged.copy(in, chunk, stream); !err.empty())
      return state_->fail("all_gather on " + groupName + ": " + err);
    in = staged.ptr;
  }
  ncclResult_t rc = ncclAllGather(in, out, static_cast<size_t>(count), type, comm, stream);
  return state_->finish(comm, groupName, "all_gather", rc, timeout());
}

std::string NcclCommunicator::reduceScatter(const CommGroup &g, const void *in, void *out,
                                            int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return notReducible("reduce_scatter", dtype);
  SHARDC_NCCL_PREPARE("reduce_scatter");
  const void *mine = static_cast<const uint8_t *>(in) + static_cast<size_t>(g.index) * chunk;
  Staging staged;
  if (out != mine && overlaps(in, chunk * members, out, chunk)) {
    if (std::string err = staged.copy(in, chunk * members, stream); !err.empty())
      return state_->fail("reduce_scatter on " + groupName + ": " + err);
    in = staged.ptr;
  }
  ncclResult_t rc = ncclReduceScatter(in, out, static_cast<size_t>(count), type, ncclOp(op),
                                      comm, stream);
  return state_->finish(comm, groupName, "reduce_scatter", rc, timeout());
}

std::string NcclCommunicator::allToAll(const CommGroup &g, const void *in, void *out,
                                       int64_t count, DType dtype) {
  SHARDC_NCCL_PREPARE("all_to_all");
  Staging staged;
  if (overlaps(in, chunk * members, out, chunk * members)) {
    if (std::string err = staged.copy(in, chunk * members, stream); !err.empty())
      return state_->fail("all_to_all on " + groupName + ": " + err);
    in = staged.ptr;
  }
  const auto *src = static_cast<const uint8_t *>(in);
  auto *dst = static_cast<uint8_t *>(out);
  ncclResult_t first = ncclGroupStart();
  for (size_t j = 0; j < members && (first == ncclSuccess || first == ncclInProgress); ++j) {
    ncclResult_t rc = ncclSend(src + j * chunk, static_cast<size_t>(count), type,
                               static_cast<int>(j), comm, stream);
    if (rc == ncclSuccess || rc == ncclInProgress)
      rc = ncclRecv(dst + j * chunk, static_cast<size_t>(count), type, static_cast<int>(j),
                    comm, stream);
    if (rc != ncclSuccess && rc != ncclInProgress)
      first = rc;
  }
  // The group must be closed even when a call inside it failed.
  ncclResult_t end = ncclGroupEnd();
  bool failedInside = first != ncclSuccess && first != ncclInProgress;
  return state_->finish(comm, groupName, "all_to_all", failedInside ? first : end, timeout());
}

std::string NcclCommunicator::allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts,
                                        void *out, const int64_t *recvCounts, DType dtype) {
  const int64_t count = 1; // the counts vary per member: SHARDC_NCCL_PREPARE's empty check is theirs
  SHARDC_NCCL_PREPARE("all_to_all_v");
  const size_t elem = dtypeSize(dtype);
  const auto *src = static_cast<const uint8_t *>(in);
  auto *dst = static_cast<uint8_t *>(out);
  size_t sentAt = 0, recvAt = 0;
  ncclResult_t first = ncclGroupStart();
  for (size_t j = 0; j < members && (first == ncclSuccess || first == ncclInProgress); ++j) {
    ncclResult_t rc = ncclSuccess;
    if (sendCounts[j] > 0)
      rc = ncclSend(src + sentAt, static_cast<size_t>(sendCounts[j]), type, static_cast<int>(j), comm, stream);
    if ((rc == ncclSuccess || rc == ncclInProgress) && recvCounts[j] > 0)
      rc = ncclRecv(dst + recvAt, static_cast<size_t>(recvCounts[j]), type, static_cast<int>(j), comm, stream);
    if (rc != ncclSuccess && rc != ncclInProgress)
      first = rc;
    sentAt += static_cast<size_t>(sendCounts[j]) * elem;
    recvAt += static_cast<size_t>(recvCounts[j]) * elem;
  }
  ncclResult_t end = ncclGroupEnd();
  bool failedInside = first != ncclSuccess && first != ncclInProgress;
  return state_->finish(comm, groupName, "all_to_all_v", failedInside ? first : end, timeout());
}

std::string NcclCommunicator::barrier(const CommGroup &g) {
  std::shared_lock<std::shared_mutex> inUse(state_->use);
  ncclComm_t comm = nullptr;
  std::string groupName;
  if (std::string err = state_->lookup(g.id, comm, groupName); !err.empty())
    return err;
  // A one-word max-reduction: it completes on a stream only once every member enqueued it.
  ncclResult_t rc = ncclAllReduce(state_->barrierWord, state_->barrierWord, 1, ncclInt32,
                                  ncclMax, comm, state_->stream);
  return state_->finish(comm, groupName, "barrier", rc, timeout());
}

std::string NcclCommunicator::markStep(int64_t step, std::string_view name, cudaStream_t stream, int lane) {
  State &s = *state_;
  if (!s.watchdog)
    return "";
  if (!stream)
    stream = s.stream;
  lane = std::clamp(lane, 0, StallDetector::kLanes - 1);
  s.watchdog->setTimeout(timeout());
  uint32_t marker = s.watchdog->enqueue(step, std::string(name), lane);
  s.runMarks.push_back({step, std::string(name), lane});
  std::string err;
  uint32_t *word = s.progress + lane;
  if (s.writeValue) {
    // A stream memory operation: no kernel, no host round trip; captured into graphs.
    CUresult rc = s.writeValue(reinterpret_cast<CUstream>(stream), s.progressDevice + sizeof(uint32_t) * lane, marker,
                               CU_STREAM_WRITE_VALUE_DEFAULT);
    if (rc != CUDA_SUCCESS) {
      const char *text = nullptr;
      if (s.errorString)
        s.errorString(rc, &text);
      err = "cuStreamWriteValue32 of the progress word failed: " +
            (text ? std::string(text) : "CUresult " + std::to_string(static_cast<int>(rc)));
    }
  } else {
    auto &marks = s.hostMarks[lane];
    while (marks.size() < marker)
      marks.push_back(std::make_unique<HostMark>(HostMark{word, uint32_t(marks.size() + 1)}));
    if (cudaError_t rc = cudaLaunchHostFunc(stream, writeHostMark, marks[marker - 1].get()); rc != cudaSuccess)
      err = "cudaLaunchHostFunc for the progress word failed: " + cudaText(rc);
  }
  if (!err.empty()) {
    // The marker will never come: without this the watchdog would report a false stall.
    s.watchdog.reset();
    return s.fail("step " + std::to_string(step) + ": " + err);
  }
  return "";
}

void NcclCommunicator::beginRun() {
  State &s = *state_;
  if (!s.watchdog)
    return;
  for (int l = 0; l < StallDetector::kLanes; ++l) // the streams are idle: the last run was waited for
    __atomic_store_n(s.progress + l, 0u, __ATOMIC_RELEASE);
  s.watchdog->beginRun();
  s.runMarks.clear();
}

void NcclCommunicator::expectReplay() {
  State &s = *state_;
  if (!s.watchdog)
    return;
  for (int l = 0; l < StallDetector::kLanes; ++l)
    __atomic_store_n(s.progress + l, 0u, __ATOMIC_RELEASE);
  s.watchdog->beginRun();
  s.watchdog->setTimeout(timeout());
  for (const State::RunMark &m : s.runMarks)
    (void)s.watchdog->enqueue(m.step, m.name, m.lane); // the graph writes the same markers, 1, 2, ... per lane
}

std::string NcclCommunicator::watchdogReport() const {
  return state_->watchdog ? state_->watchdog->report() : "";
}

std::string NcclCommunicator::bootstrap(std::chrono::milliseconds timeout, NcclBootstrap &out) {
  BlobMaker make = [](std::vector<uint8_t> &blob) -> std::string {
    ncclUniqueId id;
    if (ncclResult_t rc = ncclGetUniqueId(&id); rc != ncclSuccess)
      return "ncclGetUniqueId failed: " + ncclText(rc, nullptr);
    blob.assign(id.internal, id.internal + sizeof id.internal);
    return "";
  };
  return ::shardc::rt::bootstrap(make, timeout, out);
}

} // namespace shardc::rt
