// shardc-run's parts, shared by its files (not installed):
//   RunOptions.cpp   the options and --help
//   RunOutput.cpp    what ranks print: steps, the rank map, error lines, rank 0's results
//   RankRun.cpp      one rank's run over the Session API, setup agreement between ranks
//   TrainState.cpp   --steps and --data; CheckpointIo.cpp --save-state and --load-state
//   LaunchThreads.cpp, LaunchMpi.cpp, LaunchNccl.cpp   the ways ranks are started
//   RunMain.cpp      --comm resolution and the choice of a launch path
#pragma once

#include "RunMain.h"

#include "shardc/comm/Communicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Backend.h"
#include "shardc/runtime/HostTensor.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#ifdef SHARDC_HAVE_MPI
#include "shardc/comm/MpiCommunicator.h"
#endif

namespace shardc::rt {
class Session;
}

namespace shardc::runcli {

using namespace shardc::rt;

struct Options {
  std::string model, inputs, outputs, launcher, backend = "cpu", comm = "auto";
  bool printSteps = false, verbose = false, version = false, help = false, allRanks = false;
  bool randomWeights = false, dumpManifest = false;
  bool checkReplay = false; // --check-replay: two more runs must equal the first bit for bit
  std::string checkBackend; // --check-backend B: CheckBackend.cpp
  int64_t nproc = 0, threads = 0, repeat = 0;
  int64_t steps = 1;                  // --steps: runs in order, a training loop
  std::string saveState, loadState;   // --save-state / --load-state DIR (TrainState.cpp)
  int64_t checkpointEvery = 0;        // --checkpoint-every K: also save after every K-th run
  std::string data;                   // --data FILE: int32 token ids feeding input_ids
  std::string lossesOut;              // --losses-out FILE: rank 0's per-step figures as JSON
  std::string weights;                // --weights FILE|DIR: a Hugging Face safetensors checkpoint
  bool profile = false;
  std::chrono::milliseconds timeout{300000};
  std::vector<std::string> forwarded; // the arguments a re-run under mpirun gets
  const RunHooks *hooks = nullptr;    // never null once runMain has the options
};

extern const char *const kUsage;

// "shardc-run: error: MESSAGE" on stderr; returns 1.
int fail(const std::string &message);
// Parses argv into `o`; "" or the error line's message.
std::string parseOptions(int argc, char **argv, Options &o);

// --- DumpManifest.cpp ---
// --dump-manifest: prints `path`'s manifest readably; the exit status.
int dumpManifest(const std::string &path);

// --- CheckBackend.cpp ---
// --check-backend cuda: lists the steps of o.model the CUDA backend lacks a kernel for, without
// a GPU; exit 0 (all covered), 1 (some missing) or 2 (no answer: no CUDA in this build).
int checkBackend(const Options &o);

// --- RunOutput.cpp ---
void printSteps(const Artifact &a);

// How one rank speaks: rank 0 only, unless --all-ranks, where each line is prefixed.
struct RankOutput {
  bool speaks = true;
  std::string prefix; // "[r3 tp=1] " with --all-ranks on several ranks

  RankOutput(const Options &o, const DeviceMesh &mesh, int64_t rank);
  void out(const std::string &line) const;
  void err(const std::string &line) const;
};

// The rank -> mesh coordinates map, printed by rank 0 at start.
void printRankMap(const Artifact &a, const char *launcher);
std::string withRank(int64_t rank, int64_t worldSize, const std::string &err);
// One error line: "shardc-run: error: rank 3: ..." or, with --all-ranks, "[r3 tp=1] shardc-run:
// error: ...".
void printRankError(const Options &o, const DeviceMesh &mesh, int64_t rank, const std::string &err);
// "rank R: err" once: errors from the NCCL setup often name their rank already.
std::string rankLine(int64_t rank, const std::string &err);
std::string worldMismatch(const Artifact &a, int64_t ranks, const std::string &how);

// --- RankRun.cpp ---
// The group of every rank: over all the mesh's axes.
std::string worldGroup(Communicator &comm, const CommGroup *&world);
// Whether every rank got through a setup phase: each reports `failed`; returns the lowest
// failed rank or -1, or a one-line error when the ranks could not agree in time.
std::string agreeOnSetup(Communicator &comm, bool failed, int64_t &firstFailed);

// The per-step figures of a training loop: the f32 scalar outputs loss, grad_norm and lr of
// each run, in order (an array stays empty when the artifact has no such output).
struct StepFigures {
  std::vector<double> loss, aux, gradNorm, lr;
};

// What one rank does once the artifact and inputs are loaded: bind its chunks, agree with the
// others that every rank could, run, and hand back the outputs.
struct RankRun {
  enum class Phase { Done, Setup, Run } failedIn = Phase::Done;
  std::string error;        // this rank's own error ("" when only another rank failed setup)
  int64_t firstFailed = -1; // Setup: the lowest rank that failed
  bool stopped = false;     // a test hook took this rank away (RunHooks::stopError)
  std::vector<HostTensor> outputs;
  uint64_t arenaPeak = 0, weightBytes = 0;
  std::vector<double> timedMs;   // --repeat: each timed run
  bool replayed = false;         // --check-replay: the backend replayed a recorded graph
  std::string streams;           // the two-stream schedule, described ("" on one stream)
  std::vector<double> stepMs;    // --profile: per step, mean over the profiled runs
  uint64_t profiledRuns = 0;
  StepFigures figures;           // --steps: loss, grad_norm, lr per run
};

// How a rank runs, beyond its communicator: which GPU, a backend made by the caller, how the
// ranks agree on setup, what follows each step.
struct RankContext {
  int device = 0;             // --backend cuda: the GPU, when runRank makes the backend
  Backend *backend = nullptr; // made by the caller (the NCCL path), else made by the session
  // Whether every rank got through setup (as agreeOnSetup); default: agreeOnSetup on comm.
  std::function<std::string(bool failed, int64_t &firstFailed)> agree;
  // The watchdog's per-step marks (NCCL), kept through CUDA-graph capture and replay
  // (Executor::setStepMarks).
  std::function<std::string(size_t step, int stream)> stepMark;
  std::function<std::string(bool replay)> beginRun;
};

// `rankIsProcess`: this rank is a whole process (a test hook may end it).
RankRun runRank(const Options &o, const Artifact &artifact, const std::vector<HostTensor> &inputs,
                Communicator &comm, bool rankIsProcess, const RankContext &ctx = {});
// Rank 0's part after a successful run: figures, then the outputs written or listed.
int finishRank0(const Options &o, const Artifact &artifact, RankRun &run, const RankOutput &say);
// Loads the artifact and the inputs and checks them: what every rank needs before binding.
std::string loadShared(const Options &o, Artifact &artifact, std::vector<HostTensor> &inputs);

// --- TrainState.cpp ---
// --steps N > 1: checks the tensors read from `path` against the artifact's inputs, each of
// the input's shape (every run) or [N, *shape] (run k takes slice k); "" or "PATH: ...".
std::string checkStepInputs(const Artifact &artifact, const std::string &path,
                            const std::vector<HostTensor> &tensors, int64_t steps);
// Run k's inputs: stacked tensors sliced, the others as given.
std::vector<HostTensor> stepInputs(const Artifact &artifact, const std::vector<HostTensor> &tensors,
                                   int64_t steps, int64_t k);
// Adds run k's outputs to `stacked` ([N, *shape] each, allocated at k == 0).
void stackOutputs(std::vector<HostTensor> &stacked, const std::vector<HostTensor> &outputs, int64_t steps,
                  int64_t k);
// Adds a run's loss, grad_norm and lr (the f32 scalar outputs of those names present) to
// `figures` and, when it has a loss, prints "step K loss X[ aux A][ grad_norm G][ lr L]" (%.9g).
void reportStep(const RankOutput &say, int64_t step, const std::vector<HostTensor> &outputs, StepFigures &figures);
// --losses-out: {"loss": [...], "grad_norm": [...], "lr": [...]} (the arrays present); "" or
// a one-line error.
std::string writeLossesJson(const std::string &path, const StepFigures &figures);
// --data FILE: raw little-endian int32 token ids feeding the artifact's one input, an i64
// [B, S] named input_ids (the global batch: every rank reads the same tokens), or [g, B, S]
// under gradient_accumulation_steps g. Run k of the state (counted across --load-state) reads
// the next g*B*S tokens, [k*g*B*S, (k+1)*g*B*S) modulo the file's length, in that order.
struct TokenStream {
  std::string path, input;    // the file; the input's name
  std::vector<int64_t> shape; // [B, S] or [g, B, S]
  int64_t fileTokens = 0;
  int64_t batchTokens() const {
    int64_t n = shape.empty() ? 0 : 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};
// Checks the artifact's inputs and the file (its size: a non-zero multiple of 4); "" or a
// one-line error.
std::string openTokenStream(const Options &o, const Artifact &artifact, TokenStream &stream);
// Run k's inputs: input_ids [B, S] (i64) from the file.
std::string readTokenBatch(const TokenStream &stream, int64_t k, std::vector<HostTensor> &inputs);
// --- CheckpointIo.cpp ---
// --load-state: overwrites this rank's State buffers from the step DIR/manifest.json names (its
// own rank file when the same artifact saved it, else resharded from the saved chunks);
// `stepsDone` becomes the steps the state had run. --save-state: writes this rank's files into
// a new step directory, meets the other ranks at a barrier, and rank 0 commits the step
// (manifest.json) and prunes older ones. "" or a one-line error.
std::string loadTrainState(const Options &o, const Artifact &artifact, Session &session, int64_t &stepsDone);
std::string saveTrainState(const Options &o, const Artifact &artifact, Session &session, int64_t stepsDone,
                           bool rankIsProcess);

// --- the launch paths ---
// N ranks as threads of this process, meeting through a LocalWorld (LaunchThreads.cpp).
int runThreads(const Options &o, int64_t ranks);
// LaunchMpi.cpp: this process's local rank (launcher variables), the GPU of a rank whose
// collectives are staged through the host, --nproc's re-run under mpirun, and one rank of an
// MPI job.
int64_t localRankFromEnv();
int stagedDevice(int64_t localRank);
int relaunchUnderMpirun(const Options &o, char **argv);
int runMpiRank(const Options &o);
#ifdef SHARDC_HAVE_MPI
// This rank's MPI communicator on the artifact's mesh once every rank of the job agreed it
// could load the artifact (`err`: this rank's loading error, or ""); nullptr when the job ends
// here (the caller finishes with status 1).
std::unique_ptr<MpiCommunicator> joinMpiJob(const Options &o, const Artifact &artifact, int64_t rank,
                                            int64_t size, std::string err);
#endif
// One rank of a GPU job whose collectives go through NCCL (LaunchNccl.cpp).
int runNcclRank(const Options &o, bool underMpi);

} // namespace shardc::runcli
