// Ranks that are MPI processes: --nproc N re-runs this command under mpirun, and each process
// of an MPI job (mpirun, srun) runs one rank over the MPI communicator (--comm mpi).
#include "RunCli.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#if defined(SHARDC_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

#ifndef SHARDC_MPIEXEC
#define SHARDC_MPIEXEC ""
#endif

namespace shardc::runcli {

// This process's rank among those on its node, as launchers export it (OpenMPI, MPICH/Hydra,
// Slurm, torchrun); 0 when none is set.
int64_t localRankFromEnv() {
  for (const char *var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char *v = std::getenv(var); v && *v) {
      char *end = nullptr;
      long long n = std::strtoll(v, &end, 10);
      if (*end == '\0' && n >= 0)
        return n;
    }
  return 0;
}

// The GPU of a process rank whose collectives go through the host (--comm mpi): its local rank
// modulo the visible GPUs (ranks may share one). 0 when none is visible: CudaBackend::create
// then says why.
int stagedDevice(int64_t localRank) {
#if defined(SHARDC_HAVE_CUDA)
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0)
    return static_cast<int>(localRank % count);
#endif
  (void)localRank;
  return 0;
}

#ifdef SHARDC_HAVE_MPI
// This rank's MPI communicator on the artifact's mesh once every rank of the job agreed it
// could load the artifact (`err`: this rank's loading error, or ""). Ranks that could not
// read it agree over a one-axis mesh, whose all-axes group is the same MPI group as the
// artifact mesh's. nullptr when the job ends here (the lowest failed rank printed why, or
// --all-ranks made each print): the caller finishes with status 1.
std::unique_ptr<MpiCommunicator> joinMpiJob(const Options &o, const Artifact &artifact, int64_t rank,
                                            int64_t size, std::string err) {
  if (err.empty() && artifact.worldSize != size)
    err = worldMismatch(artifact, size, "the MPI job has");
  DeviceMesh mesh = err.empty() ? artifact.deviceMesh : DeviceMesh({{"world", size}});
  std::unique_ptr<MpiCommunicator> comm;
  if (std::string e = MpiCommunicator::create(mesh, comm); !e.empty()) {
    fail(withRank(rank, size, e));
    abortMpi(1);
  }
  comm->setTimeout(o.timeout);
  int64_t firstFailed = -1;
  if (std::string e = agreeOnSetup(*comm, !err.empty(), firstFailed); !e.empty()) {
    printRankError(o, mesh, rank, err.empty() ? e : err);
    abortMpi(1);
  }
  if (firstFailed >= 0) {
    if (!err.empty() && (rank == firstFailed || o.allRanks))
      printRankError(o, mesh, rank, err);
    return nullptr;
  }
  return comm;
}
#endif

#ifdef SHARDC_HAVE_MPI
// This process is one rank of an MPI job. Every error ends every rank non-zero: setup errors
// are agreed on (the lowest failed rank prints), run errors print and MPI_Abort the job.
int runMpiRank(const Options &o) {
  int64_t rank = 0, size = 1;
  if (std::string err = initMpi(rank, size); !err.empty())
    return fail(err);
  auto finish = [&](int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    finalizeMpi(o.timeout);
    return code;
  };
  Artifact artifact;
  std::vector<HostTensor> inputs;
  std::string err = loadShared(o, artifact, inputs);
  std::unique_ptr<MpiCommunicator> comm = joinMpiJob(o, artifact, rank, size, err);
  if (!comm)
    return finish(1);
  const DeviceMesh &mesh = comm->mesh();
  if (rank == 0) {
    if (o.printSteps)
      printSteps(artifact);
    if (size > 1)
      printRankMap(artifact, "mpi");
  }
  RankContext ctx;
  ctx.device = stagedDevice(localRankFromEnv());
  RankRun run = runRank(o, artifact, inputs, *comm, true, ctx);
  if (run.failedIn == RankRun::Phase::Setup) {
    if (!run.error.empty() && (rank == run.firstFailed || o.allRanks))
      printRankError(o, mesh, rank, run.error);
    return finish(1);
  }
  if (run.failedIn == RankRun::Phase::Run) {
    // Peers are (or will be) waiting in a collective for this rank: end the job.
    printRankError(o, mesh, rank, run.error);
    abortMpi(1);
  }
  int code = rank == 0 ? finishRank0(o, artifact, run, RankOutput(o, mesh, rank)) : 0;
  return finish(code);
}
#endif

// --nproc N: this same command, N times, under mpirun.
int relaunchUnderMpirun(const Options &o, char **argv) {
  std::string mpirun;
  if (const char *env = std::getenv("SHARDC_MPIRUN"); env && *env)
    mpirun = env;
  for (const char *name : {"mpirun", "mpiexec"}) {
    if (!mpirun.empty())
      break;
    const char *path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t at = 0; at <= dirs.size() && mpirun.empty();) {
      size_t colon = dirs.find(':', at);
      if (colon == std::string::npos)
        colon = dirs.size();
      std::string candidate = dirs.substr(at, colon - at) + "/" + name;
      if (colon > at && ::access(candidate.c_str(), X_OK) == 0)
        mpirun = candidate;
      at = colon + 1;
    }
  }
  if (mpirun.empty() && *SHARDC_MPIEXEC)
    mpirun = SHARDC_MPIEXEC;
  if (mpirun.empty())
    return fail("--nproc: mpirun not found on PATH (set SHARDC_MPIRUN, or use --threads " +
                std::to_string(o.nproc) + ")");
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string exe = n > 0 ? std::string(self, static_cast<size_t>(n)) : argv[0];
  // Local runs: let root run, put N ranks on few cores, let idle ranks yield, and keep
  // OpenBLAS from starting a thread pool per rank. Values already set are kept.
  for (auto [name, value] : {std::pair{"OMPI_ALLOW_RUN_AS_ROOT", "1"},
                             {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
                             {"OMPI_MCA_rmaps_base_oversubscribe", "1"},
                             {"OMPI_MCA_hwloc_base_binding_policy", "none"},
                             {"OMPI_MCA_mpi_yield_when_idle", "1"},
                             {"OPENBLAS_NUM_THREADS", "1"}})
    ::setenv(name, value, 0);
  std::vector<std::string> args = {mpirun, "-np", std::to_string(o.nproc), exe};
  args.insert(args.end(), o.forwarded.begin(), o.forwarded.end());
  std::vector<char *> cargs;
  for (std::string &a : args)
    cargs.push_back(a.data());
  cargs.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(mpirun.c_str(), cargs.data());
  return fail("--nproc: cannot run " + mpirun + ": " + std::strerror(errno));
}

} // namespace shardc::runcli
