// Runs an artifact's step list on one backend as one rank: one arena, weights bound by
// reference (only the rank's chunk), constants in the blob, inputs copied in (only the rank's
// chunk), outputs copied out; collective steps go through a Communicator. Shared by backends.
#pragma once

#include "shardc/comm/CollectiveKernels.h"
#include "shardc/comm/Communicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Backend.h"
#include "shardc/runtime/HostTensor.h"
#include "shardc/runtime/StreamSchedule.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace shardc::rt {

// Whether `inputs` fit the artifact: each input exactly once by name and no extras, dtype and
// shape as recorded (i32 given for i64 is accepted and widened by Executor::run; a sharded
// input is given whole, in its global shape, and each rank takes its chunk). Returns ""
// or one line naming the inputs at fault, e.g. "input 'input_ids': expected i64 2x64, given
// i64 2x65". Needs no executor, so callers can check before binding weights.
[[nodiscard]] std::string checkInputs(const Artifact &artifact, const std::vector<HostTensor> &inputs);

// CPU offload's copies between device and host memory (the executor runs them through the
// backend: ExecutorHost.cpp).
inline constexpr std::string_view kCopyToHostStep = "copy_to_host";
inline constexpr std::string_view kCopyToDeviceStep = "copy_to_device";

struct ExecutorOptions {
  // Benchmarks of shapes whose weights are not at hand: every weight is filled with
  // deterministic pseudo-random values (uniform in [-0.05, 0.05), per rank and buffer) instead
  // of being read, and the weight files are neither opened nor checked.
  bool randomWeights = false;
  // A Hugging Face checkpoint (a .safetensors file, or a directory of shards with
  // model.safetensors.index.json): each Weight buffer whose module path is a parameter name is
  // read from it instead of the artifact's weight file (Safetensors.h, bindSafetensors).
  std::string weights;
};

class Executor {
public:
  // Checks that `backend` has a kernel for every step (naming the op and the step's loc when
  // not), then allocates the arena and binds weights (reading only the referenced bytes of
  // each weight file, after checking it exists with the recorded size) and constants.
  // `artifact` and `backend` must outlive the executor. This form runs single-rank artifacts
  // (collective steps on groups of one are allowed).
  [[nodiscard]] static std::string create(const Artifact &artifact, Backend &backend,
                                          std::unique_ptr<Executor> &out);
  // One rank of a multi-rank artifact: `comm` must have the artifact's mesh; its rank picks
  // the weight and input chunks. Collective steps are checked against their group's size, and
  // their groups are made in step order (collectively, for MPI) before weights are read.
  // `comm` must outlive the executor.
  [[nodiscard]] static std::string create(const Artifact &artifact, Backend &backend,
                                          Communicator &comm, std::unique_ptr<Executor> &out,
                                          const ExecutorOptions &options = {});

  // Copies `inputs` into the arena (after checkInputs), runs every step
  // in order and returns the outputs in manifest order. Errors in a step start with
  // "step N (op @ loc): ". Not reentrant: one arena serves every run.
  [[nodiscard]] std::string run(const std::vector<HostTensor> &inputs,
                                std::vector<HostTensor> &outputs);
  // Timing (shardc-run --repeat): makes sure two runs happened (the first, and on a backend
  // that records graphs the one that captures), then times `count` runs alone
  // (Backend::timeRun: device events around a graph replay on a GPU; the inputs' copy before
  // each run is not timed) and copies the outputs out once at the end. `ms` gets each timed
  // run's milliseconds.
  [[nodiscard]] std::string runTimed(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs,
                                     int64_t count, std::vector<double> &ms);

  // Runs so far (each advances a training state once).
  uint64_t runCount() const { return runs_; }
  int64_t rank() const { return comm_->rank(); }
  Communicator &communicator() const { return *comm_; }

  // Test hook (shardc-run-testhooks' SHARDC_TEST_EXIT_AT_STEP): called before each step with its index;
  // a non-empty result stops run() with that error before the step starts.
  void setBeforeStep(std::function<std::string(size_t)> hook) { beforeStep_ = std::move(hook); }
  // Test hook (shardc-run-testhooks' SHARDC_TEST_PERTURB_MODULE): called after each step with its
  // index and output views, which it may modify.
  void setAfterStep(std::function<void(size_t, const std::vector<TensorView> &)> hook) { afterStep_ = std::move(hook); }

  // Per-step marks that survive graph capture (a device communicator's watchdog): `mark(i)`
  // is called right after step i is enqueued, in runs that enqueue their steps (the marks a
  // graph captures replay with it); `beginRun(replay)` before every run's steps, `replay`
  // telling that a recorded graph will run them without calling `mark`. Unlike setAfterStep,
  // these leave runs capturable. Either returns "" or an error that stops the run.
  // `mark` also gets the stream the step was enqueued on (0 on a one-stream schedule), which is
  // the backend's current stream while it is called.
  void setStepMarks(std::function<std::string(size_t, int)> mark, std::function<std::string(bool replay)> beginRun) {
    stepMark_ = std::move(mark);
    beginRun_ = std::move(beginRun);
  }

  // Step profiles: while on, every run marks the backend before the first step and after each
  // step (Backend::mark; the run is not captured as a graph, so each step is timed alone) and
  // adds each step's time; stepMilliseconds() is the mean per profiled run, by step index.
  void setProfiling(bool on) { profiling_ = on; }
  std::vector<double> stepMilliseconds() const;
  uint64_t profiledRuns() const { return profiledRuns_; }

  // The two-stream schedule (StreamSchedule.h), planned at create when the backend has two
  // streams and the communicator takes device pointers (NCCL); nullptr when the steps run on
  // one stream.
  const StreamSchedule *streamSchedule() const { return twoStreams_ ? &schedule_ : nullptr; }
  // Test hook: plan without the waits between the streams (a test shows that a run then
  // differs, i.e. that its waits are needed).
  void dropStreamWaitsForTest() { std::fill(schedule_.waitOn.begin(), schedule_.waitOn.end(), StreamSchedule::kNone); }

  // The arena's high-water mark: the end of its furthest buffer (<= arena_bytes).
  uint64_t arenaPeakBytes() const { return arenaPeakBytes_; }
  // How many times the last run() waited for the device between its first and last step
  // (staged host collectives). 0 means the steps were enqueued without the host blocking,
  // which is what lets a device backend capture the whole step as one graph.
  uint64_t hostBlockingCallsInSteps() const { return hostBlockingInSteps_; }
  // Bytes held for weights (ranges that several buffers share are held once).
  // (0 once the load steps made persistent copies of every weight the run reads.)
  uint64_t weightBytes() const { return weights_.size(); }
  // Notes from binding ExecutorOptions::weights (dtype conversions, checkpoint tensors the
  // graph does not use), one line each, for the caller to print once.
  const std::vector<std::string> &weightNotes() const { return weightNotes_; }
  // Bytes of the persistent block the load steps wrote (parameters in param_dtype, ...).
  uint64_t persistentBytes() const { return artifact_.persistentBytes; }
  // CPU offload: bytes of the host persistent block (host training state) and host arena.
  uint64_t hostPersistentBytes() const { return artifact_.hostPersistentBytes; }
  uint64_t hostArenaBytes() const { return artifact_.hostArenaBytes; }

  // Training state: this rank's bytes of State buffer `id` (its local shape), copied out of or
  // into the persistent block through the backend's copyOut/copyIn. Call between runs (after
  // create, which ran the load steps). "" or a one-line error naming the buffer.
  [[nodiscard]] std::string readState(int64_t id, std::vector<uint8_t> &bytes);
  [[nodiscard]] std::string writeState(int64_t id, const void *data, size_t bytes);

private:
  struct PreparedStep {
    KernelFn kernel = nullptr;
    KernelArgs args;
    const FusedKernel *fused = nullptr; // a generated kernel, instead of `kernel`
    std::vector<void *> fusedArgs;      // its inputs' then outputs' data
    std::string fusedLaunch;            // the step's launch shape
    int64_t fusedCount = 0;
    const CollectiveKernel *collective = nullptr; // instead of `kernel`
    CollectiveArgs collectiveArgs;
    uint64_t scratchBytes = 0; // of the shared collective scratch this collective packs through
    bool processIndex = false; // kProcessIndexStep: writes `rankIndex` to its output
    int64_t rankIndex = 0;
    int copy = 0;      // CPU offload: 1 copy_to_host, 2 copy_to_device (through the backend)
    bool host = false; // CPU offload: a host step (CPU kernels on host buffers)
  };

  Executor(const Artifact &artifact, Backend &backend, Communicator &comm)
      : artifact_(artifact), backend_(backend), comm_(&comm) {}
  // Resolves kernels and collectives and checks collective shapes, then makes the groups.
  std::string prepareSteps(uint64_t &scratchBytes);
  // A process_index step: checks it and records the rank's index (load steps only).
  std::string prepareProcessIndex(const Step &step, PreparedStep &prepared, bool atLoad);
  // Checks the weight files (and binds ExecutorOptions::weights), then allocates the arena and
  // the weights and reads them in (ExecutorWeights.cpp).
  std::string allocateStorage();
  std::string copyInputs(const std::vector<HostTensor> &inputs);
  // One run of the steps on the inputs in the arena, waited for (timed when `timedMs`).
  std::string runSteps(double *timedMs);
  std::string copyOutputs(std::vector<HostTensor> &outputs);
  // Runs the load steps once, then drops the weights nothing else reads.
  std::string runLoadSteps();
  // Runs (or enqueues) one prepared step.
  std::string runStep(const PreparedStep &step);
  // Host staging for backends whose memory the host cannot address.
  std::string stageIn(void *device, const void *host, size_t bytes);
  std::vector<uint8_t> collectiveIn_, collectiveOut_; // a host collective's staged data
  std::string stepPrefix(size_t index) const;
  // CPU offload (ExecutorHost.cpp): host kernels, host storage, host and copy steps.
  bool hasHostSteps() const;
  std::string prepareHostKernels();
  bool prepareHostStep(const Step &step, PreparedStep &prepared, std::string &err);
  std::string allocateHostStorage();
  uint8_t *hostBufferData(const BufferDesc &b) const;
  TensorView hostStepView(int64_t id) const;
  std::string runHostStep(const PreparedStep &step);
  Backend *hostKernels_ = nullptr;               // the CPU kernels of host steps
  std::unique_ptr<CpuBackend> ownHostKernels_;   // on a non-CPU backend
  MemoryBlock hostArena_, hostPersistent_;       // host memory (pinned on CUDA)

  const Artifact &artifact_;
  Backend &backend_;
  ExecutorOptions options_;
  std::vector<std::string> weightNotes_;
  Communicator *comm_;
  std::unique_ptr<Communicator> ownComm_; // the one-rank communicator of the first create()
  std::function<std::string(size_t)> beforeStep_;
  std::function<void(size_t, const std::vector<TensorView> &)> afterStep_;
  MemoryBlock arena_;
  MemoryBlock scratch_; // collective packing, shared by the steps (they run one at a time)
  MemoryBlock weights_;
  MemoryBlock persistent_; // zero-filled; Persistent buffers written by the load steps, State by any
  MemoryBlock constants_;  // a device backend's copy of the blob's constants
  std::vector<PreparedStep> loadSteps_;
  std::vector<TensorView> views_; // by buffer id
  std::vector<PreparedStep> steps_;
  uint64_t arenaPeakBytes_ = 0;
  uint64_t hostBlockingInSteps_ = 0;
  uint64_t runs_ = 0, lastRunBlocked_ = 0; // for Backend::runCaptured
  bool profiling_ = false, marksReady_ = false;
  bool twoStreams_ = false;
  std::function<std::string(size_t, int)> stepMark_;
  std::function<std::string(bool)> beginRun_;
  StreamSchedule schedule_;
  std::vector<bool> recordAfter_; // steps another stream waits for
  // Plans schedule_ from the steps' byte ranges (after storage is bound).
  std::string planTwoStreams();
  std::vector<double> stepMsTotal_; // by step, summed over profiled runs
  uint64_t profiledRuns_ = 0;
};

} // namespace shardc::rt
