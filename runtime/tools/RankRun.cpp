// One rank's run over the Session API: bind the rank's weights (and --load-state), agree with
// the other ranks that every rank could, run (--steps runs, then --profile and --repeat runs,
// then --save-state), and collect outputs and figures. The launch paths call it once per rank.
#include "RunCli.h"

#include "shardc/comm/CollectiveKernels.h"
#include "shardc/runtime/Npz.h"
#include "shardc/runtime/Session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>

namespace shardc::runcli {

namespace {

// --data: the runs left out of the `timed steps` line (the first run's first-use work, and
// the run that records a GPU graph), as Executor::runTimed leaves them out of --repeat.
constexpr size_t kUntimedSteps = 2;

// "" when `later` holds `first`'s outputs bit for bit, else where they first differ.
std::string firstDifference(const std::vector<HostTensor> &first, const std::vector<HostTensor> &later,
                            const char *which) {
  if (first.size() != later.size())
    return std::string("--check-replay: ") + which + " gave " + std::to_string(later.size()) + " outputs, the first " +
           std::to_string(first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    const HostTensor &a = first[i], &b = later[i];
    if (a.data == b.data)
      continue;
    size_t width = dtypeSize(a.dtype), n = std::min(a.data.size(), b.data.size()) / std::max<size_t>(width, 1);
    size_t at = 0;
    while (at < n && std::memcmp(a.data.data() + at * width, b.data.data() + at * width, width) == 0)
      ++at;
    return std::string("--check-replay: ") + which + "'s output '" + a.name + "' differs from the first run's at element " +
           std::to_string(at) + " of " + std::to_string(n) + " (a graph replay must reproduce a run bit for bit)";
  }
  return "";
}

} // namespace

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

RankRun runRank(const Options &o, const Artifact &artifact, const std::vector<HostTensor> &inputs,
                Communicator &comm, bool rankIsProcess, const RankContext &ctx) {
  RankRun result;
  SessionOptions options;
  options.backend = o.backend;
  options.device = ctx.device;
  options.randomWeights = o.randomWeights;
  options.weights = o.weights;
  std::unique_ptr<Session> session;
  std::string err = Session::bind(artifact, comm, options, session, ctx.backend);
  if (!err.empty())
    err = o.model + ": " + err;
  // The saved training state replaces what the load steps wrote, before any run.
  int64_t stepsDone = 0;
  if (err.empty() && !o.loadState.empty())
    err = loadTrainState(o, artifact, *session, stepsDone);
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
  if (o.hooks->onBound)
    o.hooks->onBound(*session, rankIsProcess);
  if (ctx.stepMark)
    session->executor().setStepMarks(ctx.stepMark, ctx.beginRun);
  // --steps: the runs in order, each with its inputs (slices of stacked ones, or --data's
  // batch); outputs stacked over the runs when there are several.
  RankOutput say(o, artifact.deviceMesh, comm.rank());
  for (const std::string &note : session->weightNotes()) // --weights: conversions, unused tensors
    say.err(note);
  TokenStream tokens;
  if (err.empty() && !o.data.empty())
    err = openTokenStream(o, artifact, tokens);
  std::vector<HostTensor> outputs, stepIn;
  std::vector<double> stepMs; // --data: each run's wall time (the run ends synchronized)
  auto loopStart = std::chrono::steady_clock::now();
  for (int64_t k = 0; err.empty() && k < o.steps; ++k) {
    auto stepStart = std::chrono::steady_clock::now();
    if (!o.data.empty())
      err = readTokenBatch(tokens, stepsDone, stepIn); // the data position continues a loaded state
    else if (o.steps > 1)
      stepIn = stepInputs(artifact, inputs, o.steps, k);
    if (err.empty())
      err = session->run(o.data.empty() && o.steps == 1 ? inputs : stepIn, o.steps == 1 ? result.outputs : outputs);
    if (!err.empty())
      break;
    stepMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - stepStart).count());
    ++stepsDone;
    if (o.steps > 1)
      stackOutputs(result.outputs, outputs, o.steps, k);
    reportStep(say, stepsDone, o.steps == 1 ? result.outputs : outputs, result.figures);
    // --checkpoint-every K: the state after every K-th run (the last run's is saved below).
    if (err.empty() && o.checkpointEvery > 0 && (k + 1) % o.checkpointEvery == 0 && k + 1 < o.steps)
      err = saveTrainState(o, artifact, *session, stepsDone, rankIsProcess);
  }
  if (err.empty() && !o.data.empty()) {
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - loopStart).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "tokens/s: %.1f",
                  static_cast<double>(tokens.batchTokens() * o.steps) / std::max(seconds, 1e-9));
    say.out(buf);
    // The runs after the first two (the first does the first-use work, such as cuBLASLt's
    // algorithm choice; a GPU records its graph in the second): what a long run sustains.
    if (stepMs.size() > kUntimedSteps) {
      std::vector<double> timed(stepMs.begin() + kUntimedSteps, stepMs.end());
      double sum = 0;
      for (double ms : timed)
        sum += ms;
      double mean = sum / double(timed.size());
      std::sort(timed.begin(), timed.end());
      size_t n = timed.size();
      double median = n % 2 ? timed[n / 2] : (timed[n / 2 - 1] + timed[n / 2]) / 2;
      char line[256];
      std::snprintf(line, sizeof line,
                    "timed steps: %zu (runs %zu to %zu), mean %.3f ms, median %.3f ms, best %.3f ms: %.1f tokens/s",
                    timed.size(), kUntimedSteps + 1, stepMs.size(), mean, median, timed.front(),
                    static_cast<double>(tokens.batchTokens()) / (mean / 1e3));
      say.out(line);
    }
    std::fflush(stdout);
  }
  // Expert parallelism: what this rank's dispatches moved (measured, all runs so far).
  if (err.empty())
    if (shardc::rt::MoeTraffic t = shardc::rt::moeTraffic(comm.rank()); t.dispatches > 0) {
      std::string experts;
      for (int64_t n : t.rowsPerLocalExpert)
        experts += (experts.empty() ? "" : " ") + std::to_string(n);
      say.out("moe: " + std::to_string(t.rows) + " rows (" + std::to_string(t.bytes) + " bytes) sent to other ep ranks in " +
              std::to_string(t.dispatches) + " dispatches (the combine returns them); rows per local expert: " +
              experts);
    }
    // --check-replay: two more runs (a GPU records its graph in the first and replays it in the
  // second) must give this rank the first run's outputs bit for bit.
  if (err.empty() && o.checkReplay) {
    if (std::any_of(artifact.buffers.begin(), artifact.buffers.end(),
                    [](const BufferDesc &b) { return b.storage == Storage::State; }))
      err = "--check-replay: the artifact has training state, so each run differs from the last";
    for (int again = 0; err.empty() && again < 2; ++again) {
      std::vector<HostTensor> later;
      err = session->run(inputs, later);
      ++stepsDone;
      if (err.empty())
        err = firstDifference(result.outputs, later, again == 0 ? "the second run" : "the third run");
    }
    result.replayed = session->backend().replaysCapture();
  }
  // Profiled runs after the first: the --repeat runs, or one (only with --steps 1).
  if (o.profile)
    session->setProfiling(true);
  if (err.empty() && o.profile && o.repeat == 0) {
    err = session->run(inputs, result.outputs);
    ++stepsDone;
  }
  // Timed runs after the first (which binds, warms caches and compiles nothing new) and the
  // graph capture, which runTimed adds untimed when it has not happened yet.
  if (err.empty() && o.repeat > 0) {
    uint64_t before = session->executor().runCount();
    err = session->runTimed(inputs, result.outputs, o.repeat, result.timedMs);
    stepsDone += static_cast<int64_t>(session->executor().runCount() - before);
  }
  if (err.empty() && !o.saveState.empty())
    err = saveTrainState(o, artifact, *session, stepsDone, rankIsProcess);
  if (!o.hooks->stopError.empty() && err == o.hooks->stopError) {
    result.stopped = true;
  } else if (!err.empty()) {
    result.failedIn = RankRun::Phase::Run;
    result.error = o.model + ": " + err;
  }
  result.stepMs = session->stepMilliseconds();
  result.profiledRuns = session->profiledRuns();
  result.streams = session->streams();
  result.arenaPeak = session->arenaPeakBytes();
  result.weightBytes = session->weightBytes();
  return result;
}

std::string loadShared(const Options &o, Artifact &artifact, std::vector<HostTensor> &inputs) {
  if (std::string err = loadArtifact(o.model, artifact); !err.empty())
    return err;
  // Several shape sets: the program whose inputs have the given inputs' shapes.
  if (artifact.programs.size() > 1 && !o.inputs.empty() && o.steps <= 1 && o.data.empty()) {
    std::vector<HostTensor> given;
    if (std::string err = readNpz(o.inputs, given); !err.empty())
      return err;
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const HostTensor &t : given)
      shapes.push_back({t.name, t.shape});
    std::string err;
    int64_t program = matchProgram(artifact, shapes, err);
    if (program < 0)
      return o.inputs + ": " + err;
    if (program != 0)
      if (std::string e = loadArtifact(o.model, artifact, program); !e.empty())
        return e;
  }
  // Read the inputs (or check the token file) before binding weights: a wrong input file
  // should fail fast.
  if (!o.data.empty()) {
    TokenStream tokens;
    return openTokenStream(o, artifact, tokens);
  }
  if (!o.inputs.empty() && o.steps > 1) {
    if (std::string err = readNpz(o.inputs, inputs); !err.empty())
      return err;
    return checkStepInputs(artifact, o.inputs, inputs, o.steps);
  }
  if (!o.inputs.empty())
    return readInputsNpz(artifact, o.inputs, inputs);
  if (std::string err = checkInputs(artifact, inputs); !err.empty())
    return "no --inputs given: " + err;
  return "";
}

} // namespace shardc::runcli
