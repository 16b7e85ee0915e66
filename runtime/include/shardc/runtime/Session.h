// The runtime's library API: one rank of a compiled .shardc artifact, its weights bound on a
// backend, ready to run on named host tensors. shardc-run is a command line over it
// (runtime/tools); a program that embeds the runtime uses it the same way:
//
//   std::unique_ptr<Session> s;
//   if (std::string err = Session::open("m.shardc", {}, s); !err.empty()) ...   // world size 1
//   std::vector<HostTensor> inputs, outputs;
//   if (std::string err = readInputsNpz(s->artifact(), "in.npz", inputs); !err.empty()) ...
//   if (std::string err = s->run(inputs, outputs); !err.empty()) ...
//
// Several ranks in one process share one loaded Artifact (loadArtifact) and bind one Session
// each over their own Communicator (Session::bind). Every failure is a one-line message.
#pragma once

#include "shardc/comm/Communicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Backend.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/HostTensor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shardc::rt {

struct SessionOptions {
  // "cpu", or "cuda" where the build has the CUDA backend (else bind() says so).
  std::string backend = "cpu";
  int device = 0; // cuda: the GPU
  // Benchmarks of shapes whose weights are not at hand: every weight is filled with
  // deterministic pseudo-random values instead of being read (ExecutorOptions::randomWeights).
  bool randomWeights = false;
  // A Hugging Face safetensors checkpoint (file or directory) to read the parameters from,
  // bound by name (ExecutorOptions::weights).
  std::string weights;
  // An artifact of several shape sets (`shardc compile --shapes`): which program open()
  // loads (an index into Artifact::programs; matchProgram finds it from input shapes).
  int64_t program = 0;
};

class Session {
public:
  // A whole artifact of world size 1 in this process: loads `path` (manifest, blob; weight
  // files are read by reference) and binds its weights on the backend `options` names.
  [[nodiscard]] static std::string open(const std::string &path, const SessionOptions &options,
                                        std::unique_ptr<Session> &out);
  // One rank of `artifact` (loaded once, shared by the process's ranks; it must outlive the
  // session) over `comm`, whose mesh is the artifact's: binds the rank's weight chunks. The
  // backend is `backend` when given (it must outlive the session), else made from `options`.
  // The error is the executor's or the backend's, without the artifact's path.
  [[nodiscard]] static std::string bind(const Artifact &artifact, Communicator &comm,
                                        const SessionOptions &options, std::unique_ptr<Session> &out,
                                        Backend *backend = nullptr);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  // One run: `inputs` named as the artifact's inputs (checkInputs; sharded inputs are given
  // whole), `outputs` in manifest order. The first run binds and warms; later runs reuse the
  // arena (a device backend may replay them as one graph).
  [[nodiscard]] std::string run(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs);
  // `count` more runs timed alone (Executor::runTimed: after the first run and the graph
  // capture, inputs copied in once, outputs out once at the end): each run's ms.
  [[nodiscard]] std::string runTimed(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs,
                                     int64_t count, std::vector<double> &ms);

  // Step profiles (Executor::setProfiling): while on, every step of a run is timed alone.
  void setProfiling(bool on) { executor_->setProfiling(on); }
  // Mean ms per step over the profiled runs, and how many runs were profiled.
  std::vector<double> stepMilliseconds() const { return executor_->stepMilliseconds(); }
  uint64_t profiledRuns() const { return executor_->profiledRuns(); }

  // Figures (shardc-run --verbose): the arena's high-water mark, bytes held for weights, and
  // the two-stream schedule described ("" when the steps run on one stream).
  uint64_t arenaPeakBytes() const { return executor_->arenaPeakBytes(); }
  uint64_t weightBytes() const { return executor_->weightBytes(); }
  // SessionOptions::weights: the binding's notes (conversions, unused tensors), one line each.
  const std::vector<std::string> &weightNotes() const { return executor_->weightNotes(); }
  std::string streams() const;

  const Artifact &artifact() const { return *artifact_; }
  Backend &backend() const { return *backend_; }
  int64_t rank() const { return executor_->rank(); }
  int64_t worldSize() const { return executor_->communicator().worldSize(); }
  // The executor, for hooks around steps (Executor::setBeforeStep, setAfterStep, setStepMarks).
  Executor &executor() const { return *executor_; }

private:
  Session() = default;
  // Destroyed in reverse order: the executor before its backend, both before the
  // communicator and the artifact.
  std::unique_ptr<Artifact> ownArtifact_; // open(): the artifact this session loaded
  const Artifact *artifact_ = nullptr;
  std::unique_ptr<Communicator> ownComm_; // open(): the one-rank communicator
  std::unique_ptr<Backend> ownBackend_; // made from SessionOptions, unless given
  Backend *backend_ = nullptr;
  std::unique_ptr<Executor> executor_;
};

// Reads an artifact's inputs from an .npz and checks them (checkInputs) before any binding;
// a mismatch is "PATH: input 'x': expected ...".
[[nodiscard]] std::string readInputsNpz(const Artifact &artifact, const std::string &path,
                                        std::vector<HostTensor> &inputs);
// Writes `outputs` to an .npz, f16/bf16 widened to f32 (as shardc-run --outputs).
[[nodiscard]] std::string writeOutputsNpz(const std::string &path, const std::vector<HostTensor> &outputs);

} // namespace shardc::rt
