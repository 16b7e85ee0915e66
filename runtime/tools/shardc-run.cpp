// shardc-run: loads a .shardc artifact, reads inputs from an .npz, runs it on the CPU or CUDA
// backend as one or many ranks (MPI processes, torchrun-style processes with NCCL, or threads
// in this process) and writes the outputs to an .npz. Every failure is one
// "shardc-run: error: ..." line and a non-zero exit on every rank.
#include "shardc/comm/LocalCommunicator.h"
#include "shardc/comm/NcclBootstrap.h"
#include "shardc/runtime/StepProfile.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/Npz.h"
#ifdef SHARDC_HAVE_MPI
#include "shardc/comm/MpiCommunicator.h"
#endif

#include <atomic>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <variant>

#ifndef SHARDC_VERSION
#error "SHARDC_VERSION must be defined by the build"
#endif
#ifndef SHARDC_MPIEXEC
#define SHARDC_MPIEXEC ""
#endif

#if defined(SHARDC_HAVE_CUDA)
#include "CudaBackend.h"
#endif
#if defined(SHARDC_HAVE_NCCL)
#include "shardc/comm/NcclCommunicator.h"
#endif

using namespace shardc::rt;

namespace {

constexpr const char *kUsage =
    "usage: shardc-run MODEL.shardc [--inputs IN.npz] [--outputs OUT.npz] [--print-steps]\n"
    "                  [--verbose] [--version] [--nproc N | --threads N] [--launcher L]\n"
    "                  [--collective-timeout DURATION] [--all-ranks] [--backend cpu|cuda]\n"
    "                  [--repeat N] [--random-weights] [--comm auto|local|mpi|nccl]\n"
    "  --inputs IN.npz    one array per artifact input, named as the input (sharded inputs\n"
    "                     are given whole; each rank takes its chunk)\n"
    "  --outputs OUT.npz  where rank 0 writes the outputs (f16/bf16 are written as f32);\n"
    "                     without it, their names, dtypes and shapes are printed\n"
    "  --print-steps      print the step list before running\n"
    "  --verbose          print arena, weight and step figures on stderr\n"
    "  --nproc N          run N ranks as processes: re-runs itself under mpirun -np N\n"
    "  --threads N        run N ranks as threads of this process (local communicator)\n"
    "  --launcher L       with --nproc: mpirun (default) or threads\n"
    "  --collective-timeout D  fail a collective that waits longer than D (10s, 500ms, 2m;\n"
    "                     default 300s, or $SHARDC_COLLECTIVE_TIMEOUT)\n"
    "  --all-ranks        every rank prints, lines prefixed [rN axis=i]; else rank 0 only\n"
    "  --backend B        cpu (default) or cuda (process ranks: the GPU of their local rank;\n"
    "                     in-process ranks share GPU 0, collectives staged through the host)\n"
    "  --comm C           auto (default): nccl for cuda process ranks, mpi for cpu process\n"
    "                     ranks, local for threads; or local, mpi (host; staged through the\n"
    "                     host with --backend cuda), nccl (--backend cuda, process ranks)\n"
    "  --repeat N         after the first run, N timed runs; rank 0 prints mean and best ms\n"
    "  --profile          time every step of the runs after the first (not graph-captured);\n"
    "                     rank 0 prints its ten most expensive kernels\n"
    "  --random-weights   fill the weights with pseudo-random values instead of reading them\n"
    "                     (benchmarks of shapes whose weights are not at hand)\n"
    "Under mpirun or srun (mpirun -np N shardc-run ...) each process is one rank; with\n"
    "--backend cuda also under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,\n"
    "MASTER_PORT). N must equal the artifact's world size. See docs/runtime.md.\n";

struct Options {
  std::string model, inputs, outputs, launcher, backend = "cpu", comm = "auto";
  bool printSteps = false, verbose = false, version = false, help = false, allRanks = false;
  bool randomWeights = false;
  int64_t nproc = 0, threads = 0, repeat = 0;
  bool profile = false;
  std::chrono::milliseconds timeout{300000};
  std::vector<std::string> forwarded; // the arguments a re-run under mpirun gets
};

int fail(const std::string &message) {
  std::fprintf(stderr, "shardc-run: error: %s\n", message.c_str());
  return 1;
}

std::string parseOptions(int argc, char **argv, Options &o) {
  if (const char *env = std::getenv("SHARDC_COLLECTIVE_TIMEOUT"); env && *env) {
    auto t = parseDuration(env);
    if (!t)
      return "SHARDC_COLLECTIVE_TIMEOUT='" + std::string(env) +
             "' is not a duration (e.g. 10s, 500ms, 2m)";
    o.timeout = *t;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool forward = true;
    auto value = [&](const char *flag, std::string &out, const char *what) -> std::string {
      std::string prefix = std::string(flag) + "=";
      if (arg.rfind(prefix, 0) == 0) {
        out = arg.substr(prefix.size());
      } else if (i + 1 < argc) {
        out = argv[++i];
        if (forward)
          o.forwarded.push_back(arg);
        arg = out;
      } else {
        return std::string(flag) + " needs " + what;
      }
      return out.empty() ? std::string(flag) + " needs " + what : "";
    };
    auto is = [&](const char *flag) {
      return arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0;
    };
    auto count = [&](const char *flag, int64_t &out) -> std::string {
      std::string text;
      if (std::string err = value(flag, text, "a rank count"); !err.empty())
        return err;
      char *end = nullptr;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > (1 << 20))
        return std::string(flag) + " needs a rank count >= 1, not '" + text + "'";
      out = n;
      return "";
    };
    std::string err, text;
    if (is("--nproc") || is("--launcher")) {
      forward = false; // the re-run under mpirun is already the N processes
    }
    if (is("--inputs"))
      err = value("--inputs", o.inputs, "a file name");
    else if (is("--outputs"))
      err = value("--outputs", o.outputs, "a file name");
    else if (is("--nproc"))
      err = count("--nproc", o.nproc);
    else if (is("--threads"))
      err = count("--threads", o.threads);
    else if (is("--launcher")) {
      err = value("--launcher", o.launcher, "mpirun or threads");
      if (err.empty() && o.launcher != "mpirun" && o.launcher != "threads")
        err = "--launcher must be mpirun or threads, not '" + o.launcher + "'";
    } else if (is("--collective-timeout")) {
      err = value("--collective-timeout", text, "a duration");
      if (err.empty()) {
        auto t = parseDuration(text);
        if (!t)
          err = "--collective-timeout '" + text + "' is not a duration (e.g. 10s, 500ms, 2m)";
        else
          o.timeout = *t;
      }
    } else if (is("--backend")) {
      err = value("--backend", o.backend, "cpu or cuda");
      if (err.empty() && o.backend != "cpu" && o.backend != "cuda")
        err = "--backend must be cpu or cuda, not '" + o.backend + "'";
#if !defined(SHARDC_HAVE_CUDA)
      if (err.empty() && o.backend == "cuda")
        err = "--backend cuda: this shardc-run was built without CUDA";
#endif
    } else if (is("--comm")) {
      err = value("--comm", o.comm, "auto, local, mpi or nccl");
      if (err.empty() && o.comm != "auto" && o.comm != "local" && o.comm != "mpi" && o.comm != "nccl")
        err = "--comm must be auto, local, mpi or nccl, not '" + o.comm + "'";
    } else if (is("--profile")) {
      o.profile = true;
    } else if (is("--repeat")) {
      err = count("--repeat", o.repeat);
    } else if (arg == "--random-weights") {
      o.randomWeights = true;
    } else if (arg == "--all-ranks")
      o.allRanks = true;
    else if (arg == "--print-steps")
      o.printSteps = true;
    else if (arg == "--verbose" || arg == "-v")
      o.verbose = true;
    else if (arg == "--version")
      o.version = true;
    else if (arg == "--help" || arg == "-h")
      o.help = true;
    else if (!arg.empty() && arg[0] == '-')
      err = "unknown option '" + arg + "' (see --help)";
    else if (o.model.empty())
      o.model = arg;
    else
      err = "more than one model given ('" + o.model + "', '" + arg + "')";
    if (!err.empty())
      return err;
    if (forward)
      o.forwarded.push_back(arg);
  }
  if (o.model.empty() && !o.version && !o.help)
    return "no model given (see --help)";
  if (o.nproc && o.threads)
    return "give --nproc or --threads, not both";
  if (!o.launcher.empty() && !o.nproc)
    return "--launcher goes with --nproc";
  if (o.nproc && o.launcher == "threads")
    std::swap(o.nproc, o.threads);
  return "";
}

std::string describeValue(bool b) { return b ? "true" : "false"; }
std::string describeValue(int64_t i) { return std::to_string(i); }
std::string describeValue(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}
std::string describeValue(const std::string &s) { return "\"" + s + "\""; }
template <typename T> std::string describeValue(const std::vector<T> &xs) {
  std::string s = "[";
  for (size_t i = 0; i < xs.size(); ++i)
    s += (i ? "," : "") + describeValue(xs[i]);
  return s + "]";
}

std::string describeAttr(const AttrValue &v) {
  return std::visit([](const auto &x) { return describeValue(x); }, v);
}

void printSteps(const Artifact &a) {
  auto operands = [&](const std::vector<int64_t> &ids) {
    std::string s;
    for (int64_t id : ids) {
      const BufferDesc &b = a.buffers[static_cast<size_t>(id)];
      s += (s.empty() ? "%" : ", %") + std::to_string(id) + ":" + dtypeName(b.dtype) + "[" +
           shapeString(b.shape) + "]";
    }
    return s;
  };
  for (size_t i = 0; i < a.steps.size(); ++i) {
    const Step &s = a.steps[i];
    std::string attrs;
    for (const auto &[key, value] : s.attrs.all())
      attrs += (attrs.empty() ? " {" : ", ") + key + "=" + describeAttr(value);
    if (!attrs.empty())
      attrs += "}";
    std::printf("step %zu: %s(%s) -> %s%s%s%s\n", i, s.op.c_str(), operands(s.in).c_str(),
                operands(s.out).c_str(), attrs.c_str(), s.loc.empty() ? "" : "  @ ",
                s.loc.c_str());
  }
}

// How one rank speaks: rank 0 only, unless --all-ranks, where each line is prefixed.
struct RankOutput {
  bool speaks = true;
  std::string prefix; // "[r3 tp=1] " with --all-ranks on several ranks

  RankOutput(const Options &o, const DeviceMesh &mesh, int64_t rank) {
    speaks = rank == 0 || o.allRanks;
    if (o.allRanks && mesh.worldSize() > 1) {
      std::string coords = mesh.describeRank(rank);
      prefix = "[r" + std::to_string(rank) + (coords.empty() ? "" : " " + coords) + "] ";
    }
  }
  void out(const std::string &line) const {
    if (speaks)
      std::printf("%s%s\n", prefix.c_str(), line.c_str());
  }
  void err(const std::string &line) const {
    if (speaks)
      std::fprintf(stderr, "%sshardc-run: %s\n", prefix.c_str(), line.c_str());
  }
};

// The rank -> mesh coordinates map, printed by rank 0 at start.
void printRankMap(const Artifact &a, const char *launcher) {
  const DeviceMesh &mesh = a.deviceMesh;
  std::fprintf(stderr, "shardc-run: %lld ranks (%s), mesh %s\n",
               static_cast<long long>(mesh.worldSize()), launcher, mesh.describe().c_str());
  for (int64_t r = 0; r < mesh.worldSize(); ++r) {
    std::vector<int64_t> c = mesh.coords(r);
    std::string coords;
    for (size_t i = 0; i < c.size(); ++i)
      coords += (i ? " " : "") + mesh.axes()[i].name + "=" + std::to_string(c[i]);
    std::fprintf(stderr, "shardc-run: rank %lld: %s\n", static_cast<long long>(r), coords.c_str());
  }
  std::fflush(stderr);
}

// SHARDC_TEST_EXIT_AT_STEP=R:S, a test-only hook: rank R disappears just before step S
// without telling its peers (a process _exits with status 3; a thread stops), so that the
// timeout and dead-peer paths can be tested. Returns -1s when unset.
std::string testExitAtStep(int64_t &rank, int64_t &step) {
  rank = step = -1;
  const char *env = std::getenv("SHARDC_TEST_EXIT_AT_STEP");
  if (!env || !*env)
    return "";
  long long r = -1, s = -1;
  char tail = 0;
  if (std::sscanf(env, "%lld:%lld%c", &r, &s, &tail) != 2 || r < 0 || s < 0)
    return "SHARDC_TEST_EXIT_AT_STEP='" + std::string(env) + "' is not RANK:STEP";
  rank = r;
  step = s;
  return "";
}

constexpr const char *kStoppedByHook = "stopped by SHARDC_TEST_EXIT_AT_STEP";

// The group of every rank: over all the mesh's axes.
std::string worldGroup(Communicator &comm, const CommGroup *&world) {
  std::vector<std::string> all;
  for (const MeshAxis &axis : comm.mesh().axes())
    all.push_back(axis.name);
  return comm.group(all, world);
}

// Whether every rank got through a setup phase: each reports `failed`; returns the lowest
// failed rank or -1, or a one-line error when the ranks could not agree in time.
std::string agreeOnSetup(Communicator &comm, bool failed, int64_t &firstFailed) {
  firstFailed = -1;
  const CommGroup *world = nullptr;
  if (std::string err = worldGroup(comm, world); !err.empty())
    return err;
  // Weight loading takes a while and differs between ranks: wait longer than for a step.
  auto stepTimeout = comm.timeout();
  comm.setTimeout(std::max(stepTimeout, std::chrono::milliseconds(120000)));
  int32_t mine = failed ? 1 : 0;
  std::vector<int32_t> flags(static_cast<size_t>(comm.worldSize()), 0);
  std::string err = comm.allGather(*world, &mine, flags.data(), 1, DType::I32);
  comm.setTimeout(stepTimeout);
  if (!err.empty())
    return "setup: " + err;
  for (size_t r = 0; r < flags.size() && firstFailed < 0; ++r)
    if (flags[r])
      firstFailed = static_cast<int64_t>(r);
  return "";
}

std::string withRank(int64_t rank, int64_t worldSize, const std::string &err) {
  return worldSize > 1 && rank != 0 ? "rank " + std::to_string(rank) + ": " + err : err;
}

// One error line: "shardc-run: error: rank 3: ..." or, with --all-ranks, "[r3 tp=1] shardc-run:
// error: ...".
void printRankError(const Options &o, const DeviceMesh &mesh, int64_t rank, const std::string &err) {
  RankOutput say(o, mesh, rank);
  say.speaks = true;
  say.err("error: " + (o.allRanks ? err : withRank(rank, mesh.worldSize(), err)));
}

// What one rank does once the artifact and inputs are loaded: bind its chunks, agree with the
// others that every rank could, run, and hand back the outputs.
struct RankRun {
  enum class Phase { Done, Setup, Run } failedIn = Phase::Done;
  std::string error;       // this rank's own error ("" when only another rank failed setup)
  int64_t firstFailed = -1; // Setup: the lowest rank that failed
  bool stopped = false;    // the test hook took this rank away
  std::vector<HostTensor> outputs;
  uint64_t arenaPeak = 0, weightBytes = 0;
  double meanMs = 0, bestMs = 0; // --repeat
  std::string streams;           // the two-stream schedule, described ("" on one stream)
  std::vector<double> stepMs;    // --profile: per step, mean over the profiled runs
  uint64_t profiledRuns = 0;
};

// How a rank runs, beyond its communicator: which GPU, a backend made by the caller, how the
// ranks agree on setup, what follows each step.
struct RankContext {
  int device = 0;              // --backend cuda: the GPU, when runRank makes the backend
  Backend *backend = nullptr;  // made by the caller (the NCCL path), else made by runRank
  // Whether every rank got through setup (as agreeOnSetup); default: agreeOnSetup on comm.
  std::function<std::string(bool failed, int64_t &firstFailed)> agree;
  // The watchdog's per-step marks (NCCL), kept through CUDA-graph capture and replay
  // (Executor::setStepMarks).
  std::function<std::string(size_t step)> stepMark;
  std::function<std::string(bool replay)> beginRun;
};

RankRun runRank(const Options &o, const Artifact &artifact, const std::vector<HostTensor> &inputs,
                Communicator &comm, bool processExitsAtHook, const RankContext &ctx = {}) {
  RankRun result;
  CpuBackend cpu;
  Backend *backend = ctx.backend ? ctx.backend : &cpu;
  std::string err;
#if defined(SHARDC_HAVE_CUDA)
  std::unique_ptr<shardc::cuda::CudaBackend> cuda;
  if (o.backend == "cuda" && !ctx.backend) {
    err = shardc::cuda::CudaBackend::create(ctx.device, cuda);
    backend = cuda.get();
  }
#endif
  std::unique_ptr<Executor> executor;
  if (err.empty())
    err = Executor::create(artifact, *backend, comm, executor, ExecutorOptions{o.randomWeights});
  if (!err.empty())
    err = o.model + ": " + err;
  std::string agreeErr = ctx.agree ? ctx.agree(!err.empty(), result.firstFailed)
                                   : agreeOnSetup(comm, !err.empty(), result.firstFailed);
  if (!agreeErr.empty()) {
    result.failedIn = RankRun::Phase::Setup;
    result.error = err.empty() ? agreeErr : err;
    result.firstFailed = comm.rank();
    return result;
  }
  if (result.firstFailed >= 0) {
    result.failedIn = RankRun::Phase::Setup;
    result.error = err;
    return result;
  }
  int64_t exitRank, exitStep;
  (void)testExitAtStep(exitRank, exitStep); // validated in runMain
  if (exitRank == comm.rank())
    executor->setBeforeStep([&comm, exitStep, processExitsAtHook](size_t step) -> std::string {
      if (static_cast<int64_t>(step) != exitStep)
        return "";
      if (processExitsAtHook) {
        std::fprintf(stderr,
                     "shardc-run: rank %lld: SHARDC_TEST_EXIT_AT_STEP: exiting before step "
                     "%lld (test hook)\n",
                     static_cast<long long>(comm.rank()), static_cast<long long>(exitStep));
        std::fflush(stderr);
        ::_exit(3);
      }
      return kStoppedByHook;
    });
  // SHARDC_TEST_PERTURB_MODULE=path, a test-only hook for `shardc verify --bisect`: in a
  // sharded run (world size > 1) on host memory, every f32 output of a step whose location
  // names `path` gets +0.5 on its first element, a deliberate divergence for the bisection.
  std::string module;
  if (const char *perturb = std::getenv("SHARDC_TEST_PERTURB_MODULE");
      perturb && *perturb && comm.worldSize() > 1 && backend->hostAddressable())
    module = perturb;
  if (ctx.stepMark)
    executor->setStepMarks(ctx.stepMark, ctx.beginRun);
  if (!module.empty())
    executor->setAfterStep([&art = artifact, module](size_t step, const std::vector<TensorView> &outs) {
      const std::string &loc = art.steps[step].loc;
      size_t at = loc.find(module);
      // The module and its submodules, not a longer name that starts with it (layers.1 vs
      // layers.10).
      if (at == std::string::npos ||
          (at + module.size() < loc.size() && std::isdigit(static_cast<unsigned char>(loc[at + module.size()]))))
        return;
      for (const TensorView &t : outs)
        if (t.dtype == DType::F32 && t.numel() > 0)
          t.as<float>()[0] += 0.5f;
    });
  err = executor->run(inputs, result.outputs);
  // Profiled runs after the first: the --repeat runs, or one.
  if (o.profile)
    executor->setProfiling(true);
  if (err.empty() && o.profile && o.repeat == 0)
    err = executor->run(inputs, result.outputs);
  // Timed runs after the first (which binds, warms caches and compiles nothing new).
  for (int64_t i = 0; err.empty() && i < o.repeat; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    err = executor->run(inputs, result.outputs);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    result.meanMs += ms / double(o.repeat);
    result.bestMs = i == 0 ? ms : std::min(result.bestMs, ms);
  }
  if (err == kStoppedByHook) {
    result.stopped = true;
  } else if (!err.empty()) {
    result.failedIn = RankRun::Phase::Run;
    result.error = o.model + ": " + err;
  }
  result.stepMs = executor->stepMilliseconds();
  result.profiledRuns = executor->profiledRuns();
  if (const StreamSchedule *schedule = executor->streamSchedule())
    result.streams = schedule->describe();
  result.arenaPeak = executor->arenaPeakBytes();
  result.weightBytes = executor->weightBytes();
  return result;
}

// Rank 0's part after a successful run: figures, then the outputs written or listed.
int finishRank0(const Options &o, const Artifact &artifact, RankRun &run, const RankOutput &say) {
  if (o.verbose)
    say.err(o.model + ": " + std::to_string(artifact.steps.size()) + " steps, arena peak " +
            std::to_string(run.arenaPeak) + " of " + std::to_string(artifact.arenaBytes) +
            " bytes, weights " + std::to_string(run.weightBytes) + " bytes, blob " +
            std::to_string(artifact.blob.size()) + " bytes");
  if (o.verbose && !run.streams.empty())
    say.err(o.model + ": two streams: " + run.streams);
  if (o.repeat > 0)
    say.out("timing: " + std::to_string(o.repeat) + " runs after the first, mean " + std::to_string(run.meanMs) +
            " ms, best " + std::to_string(run.bestMs) + " ms (" + o.backend + ", rank 0)");
  if (o.profile && run.profiledRuns > 0)
    say.out("profile: " + std::to_string(run.profiledRuns) + " run(s) after the first, every step timed alone (" +
            o.backend + ", rank 0); the ten most expensive kernels:\n" +
            formatKernelProfile(kernelProfile(artifact, run.stepMs), 10));
  if (o.outputs.empty()) {
    for (const HostTensor &t : run.outputs)
      say.out(t.name + ": " + dtypeName(t.dtype) + " " + shapeString(t.shape));
    return 0;
  }
  for (HostTensor &t : run.outputs)
    t = widenToF32(t);
  if (std::string err = writeNpz(o.outputs, run.outputs); !err.empty())
    return fail(err);
  return 0;
}

// Loads the artifact and the inputs and checks them: what every rank needs before binding.
std::string loadShared(const Options &o, Artifact &artifact, std::vector<HostTensor> &inputs) {
  if (std::string err = loadArtifact(o.model, artifact); !err.empty())
    return err;
  // Read the inputs before binding weights: a wrong input file should fail fast.
  if (!o.inputs.empty())
    if (std::string err = readNpz(o.inputs, inputs); !err.empty())
      return err;
  if (std::string err = checkInputs(artifact, inputs); !err.empty())
    return (o.inputs.empty() ? std::string("no --inputs given") : o.inputs) + ": " + err;
  return "";
}

std::string worldMismatch(const Artifact &a, int64_t ranks, const std::string &how) {
  return a.path + ": the artifact is compiled for " + std::to_string(a.worldSize) +
         " ranks (mesh " + a.deviceMesh.describe() + "), " + how + " " + std::to_string(ranks);
}

// N ranks as threads of this process, meeting through a LocalWorld.
int runThreads(const Options &o, int64_t ranks) {
  Artifact artifact;
  std::vector<HostTensor> inputs;
  if (std::string err = loadShared(o, artifact, inputs); !err.empty())
    return fail(err);
  if (artifact.worldSize != ranks) {
    if (ranks == 1)
      return fail(o.model + ": the artifact is compiled for " + std::to_string(artifact.worldSize) +
                  " ranks (mesh " + artifact.deviceMesh.describe() + "): run it with mpirun -np " +
                  std::to_string(artifact.worldSize) + ", --nproc " +
                  std::to_string(artifact.worldSize) + " or --threads " +
                  std::to_string(artifact.worldSize));
    return fail(worldMismatch(artifact, ranks, "--threads gives"));
  }
  if (o.printSteps)
    printSteps(artifact);
  if (ranks > 1)
    printRankMap(artifact, "threads");
  auto world = std::make_shared<LocalWorld>(artifact.deviceMesh);
  std::vector<RankRun> runs(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      LocalCommunicator comm(world, r);
      comm.setTimeout(o.timeout);
      RankRun &run = runs[static_cast<size_t>(r)];
      try {
        run = runRank(o, artifact, inputs, comm, false);
      } catch (const std::exception &e) {
        run.failedIn = RankRun::Phase::Run;
        run.error = e.what();
      }
      // Peers waiting for this rank stop waiting, naming it and its error.
      if (run.failedIn == RankRun::Phase::Run)
        comm.abort(run.error);
    });
  for (std::thread &t : threads)
    t.join();

  bool failed = false;
  for (int64_t r = 0; r < ranks; ++r) {
    const RankRun &run = runs[static_cast<size_t>(r)];
    failed = failed || run.stopped || run.failedIn != RankRun::Phase::Done;
    if (o.allRanks && !run.error.empty())
      printRankError(o, artifact.deviceMesh, r, run.error);
  }
  if (!failed)
    return finishRank0(o, artifact, runs[0], RankOutput(o, artifact.deviceMesh, 0));
  if (o.allRanks)
    return 1;
  // One line: the setup failure of the lowest failed rank, else the first run failure the
  // world recorded (its consequences on other ranks name it), else a timeout.
  const RankRun &first = runs[0];
  if (first.failedIn == RankRun::Phase::Setup && first.firstFailed >= 0) {
    const RankRun &culprit = runs[static_cast<size_t>(first.firstFailed)];
    return fail(withRank(first.firstFailed, ranks, culprit.error));
  }
  std::string rootCause = world->failure(); // "rank R failed: ..."
  if (!rootCause.empty()) {
    size_t cut = rootCause.find(" failed: ");
    int64_t culprit = std::atoll(rootCause.c_str() + 5);
    return fail(withRank(culprit, ranks, rootCause.substr(cut + 9)));
  }
  for (int64_t r = 0; r < ranks; ++r)
    if (!runs[static_cast<size_t>(r)].error.empty())
      return fail(withRank(r, ranks, runs[static_cast<size_t>(r)].error));
  return fail("a rank was stopped by SHARDC_TEST_EXIT_AT_STEP");
}

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

// "rank R: err" once: errors from the NCCL setup often name their rank already.
std::string rankLine(int64_t rank, const std::string &err) {
  std::string prefix = "rank " + std::to_string(rank) + ": ";
  return err.rfind(prefix, 0) == 0 ? err : prefix + err;
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


#if defined(SHARDC_HAVE_NCCL)
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
  // The watchdog's progress: a marker after each step, so that a stuck step is named.
  std::vector<std::string> stepNames;
  for (const Step &step : artifact.steps)
    stepNames.push_back(step.loc.empty() ? step.op : step.op + " @ " + step.loc);
  ctx.stepMark = [&](size_t step) -> std::string {
    (void)nccl->markStep(static_cast<int64_t>(step), stepNames[step]); // a failure stops NCCL: health()
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

int runMain(int argc, char **argv) {
  Options o;
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
  int64_t exitRank, exitStep;
  if (std::string err = testExitAtStep(exitRank, exitStep); !err.empty())
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

int main(int argc, char **argv) {
  // Allocation failures and the like end as an error line too, never as an abort.
  try {
    return runMain(argc, argv);
  } catch (const std::exception &e) {
    return fail(e.what());
  }
}
