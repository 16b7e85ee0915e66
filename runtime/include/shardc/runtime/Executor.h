// Runs an artifact's step list on one backend: one arena, weights bound by reference, constants
// in the blob, inputs copied in and outputs copied out. Shared by every backend.
#pragma once

#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Backend.h"
#include "shardc/runtime/HostTensor.h"

#include <memory>
#include <string>
#include <vector>

namespace shardc::rt {

// Whether `inputs` fit the artifact: each input exactly once by name and no extras, dtype and
// shape as recorded (i32 given for i64 is accepted and widened by Executor::run). Returns ""
// or one line naming the inputs at fault, e.g. "input 'input_ids': expected i64 2x64, given
// i64 2x65". Needs no executor, so callers can check before binding weights.
[[nodiscard]] std::string checkInputs(const Artifact &artifact, const std::vector<HostTensor> &inputs);

class Executor {
public:
  // Checks that `backend` has a kernel for every step (naming the op and the step's loc when
  // not), then allocates the arena and binds weights (reading only the referenced bytes of
  // each weight file, after checking it exists with the recorded size) and constants.
  // `artifact` and `backend` must outlive the executor.
  [[nodiscard]] static std::string create(const Artifact &artifact, Backend &backend,
                                          std::unique_ptr<Executor> &out);

  // Copies `inputs` into the arena (after checkInputs), runs every step
  // in order and returns the outputs in manifest order. Errors in a step start with
  // "step N (op @ loc): ". Not reentrant: one arena serves every run.
  [[nodiscard]] std::string run(const std::vector<HostTensor> &inputs,
                                std::vector<HostTensor> &outputs);

  // The arena's high-water mark: the end of its furthest buffer (<= arena_bytes).
  uint64_t arenaPeakBytes() const { return arenaPeakBytes_; }
  // Bytes held for weights (ranges that several buffers share are held once).
  uint64_t weightBytes() const { return weights_.size(); }

private:
  struct PreparedStep {
    KernelFn kernel = nullptr;
    KernelArgs args;
  };

  Executor(const Artifact &artifact, Backend &backend) : artifact_(artifact), backend_(backend) {}
  // Checks the weight files, then allocates the arena and the weights and reads them in.
  std::string allocateStorage();
  std::string copyInputs(const std::vector<HostTensor> &inputs);
  std::string stepPrefix(size_t index) const;

  const Artifact &artifact_;
  Backend &backend_;
  MemoryBlock arena_;
  MemoryBlock weights_;
  std::vector<TensorView> views_; // by buffer id
  std::vector<PreparedStep> steps_;
  uint64_t arenaPeakBytes_ = 0;
};

} // namespace shardc::rt
