// shardc-run's main: options, then the launch path (--comm resolved against how the ranks
// were started) of LaunchThreads.cpp, LaunchMpi.cpp or LaunchNccl.cpp.
#include "RunCli.h"

#include "shardc/comm/NcclBootstrap.h"

#include <cstdio>
#include <exception>

#ifndef SHARDC_VERSION
#error "SHARDC_VERSION must be defined by the build"
#endif

namespace shardc::runcli {

namespace {

// How the ranks were started: as processes (mpirun, srun, --nproc, torchrun-style variables
// with --backend cuda) or as threads of this process (--threads N, or a single rank).
enum class Launch { Threads, Processes };

// --comm: the communicator for `launch` ("local", "mpi" or "nccl"), or a one-line error for a
// combination that cannot work. auto: nccl for CUDA process ranks (mpi where this build has no
// NCCL and MPI launched them), mpi for CPU process ranks, local for threads.
std::string resolveComm(const Options &o, Launch launch, bool underMpi, std::string &comm) {
#if defined(SHARDC_HAVE_NCCL)
  const bool haveNccl = true;
#else
  const bool haveNccl = false;
#endif
#ifdef SHARDC_HAVE_MPI
  const bool haveMpi = true;
#else
  const bool haveMpi = false;
#endif
  const bool processes = launch == Launch::Processes;
  const bool mpiLaunch = underMpi || o.nproc > 0;
  if (o.comm == "nccl") {
    if (o.backend != "cuda")
      return "--comm nccl needs --backend cuda (NCCL moves GPU memory; CPU ranks use --comm mpi)";
    if (!haveNccl)
      return "--comm nccl: this shardc-run was built without NCCL";
    if (o.threads)
      return "--comm nccl cannot run ranks as threads (--threads): NCCL puts one rank on one GPU; "
             "start one process per GPU (mpirun -np N, srun, torchrun) or use --comm local";
  } else if (o.comm == "mpi") {
    if (!haveMpi)
      return "--comm mpi: this shardc-run was built without MPI";
    if (o.threads)
      return "--comm mpi needs ranks that are processes (mpirun -np N or --nproc N), not --threads";
    if (!mpiLaunch)
      return std::string("--comm mpi needs an MPI launcher (mpirun -np N, srun or --nproc N)") +
             (processes ? "; RANK/WORLD_SIZE alone (torchrun-style) give NCCL ranks" : "");
  } else if (o.comm == "local") {
    if (processes)
      return std::string("--comm local runs ranks as threads of one process (--threads N); under ") +
             (mpiLaunch ? "mpirun" : "torchrun") + " each process is a rank";
  } else if (!processes && o.backend == "cpu" && !o.threads) {
    // torchrun-style variables on CPU ranks: say so rather than run every process alone.
    EnvLookup env = processEnv();
    TorchrunEnv t;
    if (torchrunEnvPresent(env) && parseTorchrunEnv(env, t).empty() && t.worldSize > 1)
      return "RANK and WORLD_SIZE=" + std::to_string(t.worldSize) +
             " are set (a torchrun-style launch): such ranks talk through NCCL and need --backend "
             "cuda; CPU ranks run under mpirun -np N or with --nproc N";
  }
  if (o.comm != "auto") {
    comm = o.comm;
  } else if (!processes) {
    comm = "local";
  } else if (o.backend == "cuda" && haveNccl) {
    comm = "nccl";
  } else if (mpiLaunch && haveMpi) {
    comm = "mpi"; // CPU ranks, or CUDA ranks staged through the host where NCCL is missing
  } else {
    return mpiLaunch ? "ranks that are processes need MPI or NCCL: this shardc-run was built with neither"
                     : "RANK/WORLD_SIZE are set (a torchrun-style launch), but this shardc-run was "
                       "built without NCCL: use mpirun";
  }
  return "";
}

int runMainUnchecked(int argc, char **argv, const RunHooks &hooks) {
  Options o;
  o.hooks = &hooks;
  if (std::string err = parseOptions(argc, argv, o); !err.empty())
    return fail(err);
  if (o.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (o.version) {
    std::printf("shardc-run %s (artifact format %u)\n", SHARDC_VERSION, kArtifactFormatVersion);
    return 0;
  }
  if (o.dumpManifest)
    return dumpManifest(o.model);
  if (!o.checkBackend.empty())
    return checkBackend(o);
  if (hooks.check)
    if (std::string err = hooks.check(); !err.empty())
      return fail(err);
#ifdef SHARDC_HAVE_MPI
  const bool underMpi = launchedByMpi();
#else
  const bool underMpi = false; // MPI launcher variables are the NCCL bootstrap's to judge
#endif
  Launch launch = underMpi || o.nproc ? Launch::Processes : Launch::Threads;
  if (launch == Launch::Threads && o.backend == "cuda" && torchrunEnvPresent(processEnv()))
    launch = Launch::Processes; // torchrun-style: the NCCL bootstrap reads the variables
  if (o.threads && launch == Launch::Processes && !o.nproc)
    return fail(std::string("--threads runs ranks in one process; under ") +
                (underMpi ? "mpirun" : "torchrun") + " each process is a rank");
  std::string comm;
  if (std::string err = resolveComm(o, launch, underMpi, comm); !err.empty())
    return fail(err);
#ifdef SHARDC_HAVE_MPI
  if (o.nproc && !underMpi)
    return relaunchUnderMpirun(o, argv); // the re-run resolves --comm again, under mpirun
  if (comm == "mpi")
    return runMpiRank(o); // an --nproc that reached here is the re-run's own: ignore it
#else
  if (o.nproc)
    return fail("this shardc-run is built without MPI: use --threads " + std::to_string(o.nproc));
#endif
#if defined(SHARDC_HAVE_NCCL)
  if (comm == "nccl")
    return runNcclRank(o, underMpi);
#endif
  return runThreads(o, o.threads ? o.threads : 1);
}

} // namespace

int runMain(int argc, char **argv, const RunHooks &hooks) {
  // Allocation failures and the like end as an error line too, never as an abort.
  try {
    return runMainUnchecked(argc, argv, hooks);
  } catch (const std::exception &e) {
    return fail(e.what());
  }
}

} // namespace shardc::runcli
