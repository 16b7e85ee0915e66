// Ranks whose collectives go through NCCL (--backend cuda, process ranks): the bootstrap
// (MPI's under an MPI launcher, else torchrun-style variables), each rank's GPU, the setup
// agreement through NCCL, and the run with the watchdog's step marks.
#include "RunCli.h"

#if defined(SHARDC_HAVE_NCCL)
#include "CudaBackend.h"
#include "shardc/comm/NcclBootstrap.h"
#include "shardc/comm/NcclCommunicator.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace shardc::runcli {

// The GPU of an NCCL rank: its local rank, or 0 when the process sees a single GPU
// (CUDA_VISIBLE_DEVICES set per rank, as srun and some launchers do). Ranks on one node need
// distinct GPUs: NCCL cannot put two ranks on one device.
std::string ncclDevice(int64_t localRank, int &device) {
  int visible = 0;
  if (cudaError_t rc = cudaGetDeviceCount(&visible); rc != cudaSuccess)
    return std::string("no CUDA device: ") + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
  device = visible == 1 ? 0 : static_cast<int>(localRank);
  if (device >= visible)
    return "no GPU for local rank " + std::to_string(localRank) + " (" + std::to_string(visible) +
           " visible): NCCL needs one GPU per rank on a node";
  return "";
}

// Setup agreement through NCCL when no host channel exists (torchrun-style launches): every
// rank's flag is all-gathered through device memory on the communicator's stream, waited for
// against the timeout (at least 2 minutes, as agreeOnSetup). On a timeout the communicator is
// aborted and the buffers are left to the process's end (the stream may still hold them).
std::string agreeOverNccl(NcclCommunicator &comm, bool failed, int64_t &firstFailed) {
  firstFailed = -1;
  const CommGroup *world = nullptr;
  if (std::string err = worldGroup(comm, world); !err.empty())
    return "setup: " + err;
  size_t n = static_cast<size_t>(comm.worldSize());
  int32_t *host = nullptr, *dev = nullptr;
  auto cudaErr = [](const char *what, cudaError_t rc) {
    return std::string("setup: ") + what + ": " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
  };
  if (cudaError_t rc = cudaMallocHost(reinterpret_cast<void **>(&host), (n + 1) * sizeof(int32_t)); rc != cudaSuccess)
    return cudaErr("cudaMallocHost", rc);
  if (cudaError_t rc = cudaMalloc(reinterpret_cast<void **>(&dev), (n + 1) * sizeof(int32_t)); rc != cudaSuccess)
    return cudaErr("cudaMalloc", rc);
  cudaStream_t stream = comm.stream();
  host[0] = failed ? 1 : 0;
  if (cudaError_t rc = cudaMemcpyAsync(dev, host, sizeof(int32_t), cudaMemcpyHostToDevice, stream); rc != cudaSuccess)
    return cudaErr("cudaMemcpyAsync", rc);
  if (std::string err = comm.allGather(*world, dev, dev + 1, 1, DType::I32); !err.empty())
    return "setup: " + err;
  if (cudaError_t rc = cudaMemcpyAsync(host + 1, dev + 1, n * sizeof(int32_t), cudaMemcpyDeviceToHost, stream);
      rc != cudaSuccess)
    return cudaErr("cudaMemcpyAsync", rc);
  auto limit = std::max(comm.timeout(), std::chrono::milliseconds(120000));
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    cudaError_t rc = cudaStreamQuery(stream);
    if (rc == cudaSuccess)
      break;
    if (rc != cudaErrorNotReady)
      return cudaErr("waiting for the setup all_gather", rc);
    if (std::string err = comm.health(); !err.empty())
      return "setup: " + err;
    if (std::chrono::steady_clock::now() > deadline) {
      std::string err = "setup: timed out after " + formatDuration(limit) +
                        " waiting for every rank's setup (a rank failed before NCCL or died)";
      comm.abort(err);
      return err;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (size_t r = 0; r < n && firstFailed < 0; ++r)
    if (host[r + 1])
      firstFailed = static_cast<int64_t>(r);
  cudaFree(dev);
  cudaFreeHost(host);
  return "";
}

// This process is one rank of a GPU job whose collectives go through NCCL. The bootstrap is
// MPI's under an MPI launcher (which also carries every setup agreement), else torchrun-style
// variables (TCP rendezvous; agreements through NCCL once it exists), else a job of one.
// Failures before NCCL exists (bootstrap, GPU, backend, communicator) are printed by every
// rank that had them; later setup failures by the lowest failed rank, as on the CPU; a failing
// step prints, aborts NCCL and ends the job (MPI_Abort under MPI).
int runNcclRank(const Options &o, bool underMpi) {
  int64_t rank = 0, size = 1;
  std::string launcher = underMpi ? "mpi" : "single";
  Artifact artifact;
  std::vector<HostTensor> inputs;
  std::string err = loadShared(o, artifact, inputs);
#ifdef SHARDC_HAVE_MPI
  std::unique_ptr<MpiCommunicator> mpi;
#endif
  // Ends the process: the communicators and the backend go before MPI_Finalize.
  std::unique_ptr<NcclCommunicator> nccl;
  std::unique_ptr<shardc::cuda::CudaBackend> cuda;
  auto finish = [&](int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    nccl.reset();
    cuda.reset();
#ifdef SHARDC_HAVE_MPI
    if (underMpi) {
      mpi.reset();
      finalizeMpi(o.timeout);
    }
#endif
    return code;
  };
  // A failure every rank may have on its own: each failing rank prints; under MPI the ranks
  // then agree, so that all of them leave together; else this rank leaves (its peers' waits
  // for it time out).
  auto deviceSetup = [&](const std::string &what) -> bool {
    if (!what.empty()) {
      // --all-ranks prefixes the rank and its coordinates; else the line names the rank.
      std::string line = rankLine(rank, what);
      if (o.allRanks)
        printRankError(o, artifact.deviceMesh, rank, line.substr(line.find(": ") + 2));
      else
        fail(line);
    }
#ifdef SHARDC_HAVE_MPI
    if (underMpi) {
      int64_t firstFailed = -1;
      if (std::string e = agreeOnSetup(*mpi, !what.empty(), firstFailed); !e.empty()) {
        if (what.empty())
          printRankError(o, mpi->mesh(), rank, e);
        abortMpi(1);
      }
      return firstFailed < 0;
    }
#endif
    return what.empty();
  };

  if (underMpi) {
#ifdef SHARDC_HAVE_MPI
    if (std::string e = initMpi(rank, size); !e.empty())
      return fail(e);
    mpi = joinMpiJob(o, artifact, rank, size, err);
    if (!mpi)
      return finish(1);
#else
    return fail("started by an MPI launcher, but this shardc-run was built without MPI");
#endif
  } else {
    EnvLookup env = processEnv();
    if (torchrunEnvPresent(env)) {
      TorchrunEnv t;
      if (std::string e = parseTorchrunEnv(env, t); !e.empty())
        return fail(e);
      rank = t.rank;
      size = t.worldSize;
      launcher = "torchrun";
    }
    if (err.empty() && artifact.worldSize != size)
      err = launcher == "torchrun"
                ? worldMismatch(artifact, size, "WORLD_SIZE is")
                : o.model + ": the artifact is compiled for " + std::to_string(artifact.worldSize) +
                      " ranks (mesh " + artifact.deviceMesh.describe() + "): launch " +
                      std::to_string(artifact.worldSize) + " processes (mpirun -np " +
                      std::to_string(artifact.worldSize) + ", srun, torchrun --nproc-per-node " +
                      std::to_string(artifact.worldSize) + ")";
    if (!err.empty())
      return fail(withRank(rank, size, err));
  }
  RankOutput say(o, artifact.deviceMesh, rank);

  // Bootstrap (rank 0's NCCL id to every rank), then the GPU and the backend, then NCCL.
  NcclBootstrap boot;
  if (std::string e = NcclCommunicator::bootstrap(o.timeout, boot); !e.empty())
    err = "NCCL bootstrap (" + launcher + "): " + e;
  int device = 0;
  if (err.empty()) {
    if (o.verbose)
      say.err("rank " + std::to_string(boot.rank) + ": NCCL bootstrap (" + boot.launcher +
              ") done: rank " + std::to_string(boot.rank) + " of " + std::to_string(boot.worldSize) +
              ", local rank " + std::to_string(boot.localRank));
    err = ncclDevice(boot.localRank, device);
  }
  if (err.empty())
    err = shardc::cuda::CudaBackend::create(device, cuda);
  if (!deviceSetup(err))
    return finish(1);
  NcclOptions options;
  options.timeout = o.timeout;
  options.device = device;
  err = NcclCommunicator::create(artifact.deviceMesh, boot, options, nccl);
  if (err.empty())
    nccl->setStream(cuda->communicationStream()); // the executor orders it with the compute stream
  if (!deviceSetup(err))
    return finish(1);
  if (o.verbose)
    say.err("rank " + std::to_string(rank) + ": NCCL world communicator on GPU " +
            std::to_string(device) + " (" + cuda->arch() + ")");
  if (rank == 0) {
    if (o.printSteps)
      printSteps(artifact);
    if (size > 1)
      printRankMap(artifact, (launcher + ", nccl").c_str());
  }

  RankContext ctx;
  ctx.backend = cuda.get();
#ifdef SHARDC_HAVE_MPI
  if (underMpi)
    ctx.agree = [&](bool failed, int64_t &firstFailed) { return agreeOnSetup(*mpi, failed, firstFailed); };
#endif
  if (!ctx.agree)
    ctx.agree = [&](bool failed, int64_t &firstFailed) { return agreeOverNccl(*nccl, failed, firstFailed); };
  // The watchdog's progress: a marker after each step, written by the stream the step ran on
  // (the backend's current one: compute, or communication for collectives) into that stream's
  // word, so that a stuck kernel is named as well as a stuck collective; graphs replay them.
  std::vector<std::string> stepNames;
  for (const Step &step : artifact.steps)
    stepNames.push_back(step.loc.empty() ? step.op : step.op + " @ " + step.loc);
  ctx.stepMark = [&](size_t step, int stream) -> std::string {
    // A failure stops NCCL: health() reports it.
    (void)nccl->markStep(static_cast<int64_t>(step), stepNames[step], cuda->stream(), stream);
    return "";
  };
  ctx.beginRun = [&](bool replay) -> std::string {
    if (replay)
      nccl->expectReplay();
    else
      nccl->beginRun();
    return "";
  };
  RankRun run = runRank(o, artifact, inputs, *nccl, true, ctx);
  if (run.failedIn == RankRun::Phase::Done && !run.stopped)
    if (std::string e = nccl->health(); !e.empty()) {
      run.failedIn = RankRun::Phase::Run;
      run.error = o.model + ": " + e;
    }
  if (run.failedIn == RankRun::Phase::Setup) {
    if (!run.error.empty() && (rank == run.firstFailed || o.allRanks))
      printRankError(o, artifact.deviceMesh, rank, run.error);
    return finish(1);
  }
  if (run.failedIn == RankRun::Phase::Run) {
    // The watchdog printed its report when it fired; anything else is printed here.
    if (nccl->watchdogReport().empty())
      printRankError(o, artifact.deviceMesh, rank, run.error);
    nccl->abort(run.error);
    std::fflush(stdout);
    std::fflush(stderr);
#ifdef SHARDC_HAVE_MPI
    if (underMpi)
      abortMpi(1);
#endif
    // Peers waiting for this rank are stopped by their own watchdogs; nothing here may wait
    // for a GPU that NCCL left stuck.
    std::_Exit(1);
  }
  int code = rank == 0 && !run.stopped ? finishRank0(o, artifact, run, say) : 0;
  return finish(run.stopped ? 1 : code);
}

} // namespace shardc::runcli
#endif
