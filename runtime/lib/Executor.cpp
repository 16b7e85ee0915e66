// The step-list executor behind Executor.h: kernel and collective resolution and validation
// before any allocation, input checks and chunking, and step errors located by index and loc.
// Weight binding (allocateStorage) is in ExecutorWeights.cpp.
#include "shardc/runtime/Executor.h"

#include "shardc/comm/CollectiveKernels.h"

#include "shardc/comm/LocalCommunicator.h"

#include <algorithm>
#include <cstring>
#include <exception>

namespace shardc::rt {

namespace {

std::string quotedList(const std::vector<std::string> &names) {
  std::string s;
  for (const std::string &n : names)
    s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

std::string typeString(DType dtype, const std::vector<int64_t> &shape) {
  return std::string(dtypeName(dtype)) + " " + shapeString(shape);
}

} // namespace

std::string Executor::stepPrefix(size_t index) const {
  const Step &step = artifact_.steps[index];
  std::string where = "step " + std::to_string(index) + " (" + step.op;
  if (!step.loc.empty())
    where += " @ " + step.loc;
  return where + "): ";
}

std::string Executor::create(const Artifact &artifact, Backend &backend,
                             std::unique_ptr<Executor> &out) {
  if (artifact.worldSize != 1)
    return "the artifact is compiled for " + std::to_string(artifact.worldSize) + " ranks (" +
           artifact.deviceMesh.describe() + "); run it with a communicator of as many ranks "
           "(shardc-run: mpirun -np " + std::to_string(artifact.worldSize) + ", --nproc " +
           std::to_string(artifact.worldSize) + " or --threads " +
           std::to_string(artifact.worldSize) + ")";
  auto self = std::make_unique<LocalCommunicator>(
      std::make_shared<LocalWorld>(artifact.deviceMesh), 0);
  if (std::string err = create(artifact, backend, *self, out); !err.empty())
    return err;
  out->ownComm_ = std::move(self);
  return "";
}

std::string Executor::create(const Artifact &artifact, Backend &backend, Communicator &comm,
                             std::unique_ptr<Executor> &out, const ExecutorOptions &options) {
  if (comm.mesh() != artifact.deviceMesh)
    return "the communicator's mesh (" + comm.mesh().describe() + ") differs from the "
           "artifact's (" + artifact.deviceMesh.describe() + ")";
  std::unique_ptr<Executor> ex(new Executor(artifact, backend, comm));
  ex->options_ = options;
  ex->views_.resize(artifact.buffers.size());
  for (const BufferDesc &b : artifact.buffers)
    ex->views_[static_cast<size_t>(b.id)] = TensorView{nullptr, b.dtype, b.shape};
  // Everything that can be checked is checked before the arena and weights are allocated.
  if (std::string err = backend.loadKernels(artifact); !err.empty())
    return err;
  if (std::string err = ex->prepareHostKernels(); !err.empty())
    return err;
  uint64_t scratchBytes = 0;
  if (std::string err = ex->prepareSteps(scratchBytes); !err.empty())
    return err;
  if (std::string err = ex->allocateStorage(); !err.empty())
    return err;
  if (std::string err = ex->allocateHostStorage(); !err.empty())
    return err;
  // Collectives pack in device memory when the communicator takes device pointers (NCCL).
  bool deviceCollectives = !backend.hostAddressable() && comm.takesDevicePointers();
  ex->scratch_ = deviceCollectives ? backend.allocate(scratchBytes) : MemoryBlock::allocateHost(scratchBytes);
  if (!ex->scratch_)
    return "cannot allocate " + std::to_string(scratchBytes) + " bytes of collective scratch";
  // allocateStorage placed the weights; arena, persistent and constant buffers sit at
  // recorded offsets.
  for (const BufferDesc &b : artifact.buffers) {
    TensorView &view = ex->views_[static_cast<size_t>(b.id)];
    if (b.host) {
      view.data = ex->hostBufferData(b);
    } else if (b.storage == Storage::Arena) {
      view.data = ex->arena_.data() + b.offset;
      ex->arenaPeakBytes_ = std::max(ex->arenaPeakBytes_, b.offset + b.bytes);
    } else if (b.storage == Storage::Persistent || b.storage == Storage::State) {
      view.data = ex->persistent_.data() + b.offset;
    } else if (b.storage == Storage::Constant && backend.hostAddressable()) {
      view.data = const_cast<uint8_t *>(artifact.constantData(b));
    }
  }
  // A device backend gets its own copy of the constants.
  if (!backend.hostAddressable()) {
    uint64_t total = 0;
    for (const BufferDesc &b : artifact.buffers)
      if (b.storage == Storage::Constant)
        total += (b.bytes + 63) / 64 * 64;
    ex->constants_ = backend.allocate(total);
    if (!ex->constants_)
      return "cannot allocate " + std::to_string(total) + " bytes for the constants";
    uint64_t at = 0;
    for (const BufferDesc &b : artifact.buffers)
      if (b.storage == Storage::Constant) {
        if (std::string err = backend.copyIn(ex->constants_.data() + at, artifact.constantData(b), b.bytes); !err.empty())
          return "constant '" + b.name + "': " + err;
        ex->views_[static_cast<size_t>(b.id)].data = ex->constants_.data() + at;
        at += (b.bytes + 63) / 64 * 64;
      }
  }

  for (size_t i = 0; i < artifact.loadSteps.size() + artifact.steps.size(); ++i) {
    bool load = i < artifact.loadSteps.size();
    size_t k = load ? i : i - artifact.loadSteps.size();
    const Step &step = load ? artifact.loadSteps[k] : artifact.steps[k];
    PreparedStep &prepared = load ? ex->loadSteps_[k] : ex->steps_[k];
    KernelArgs &args = prepared.args;
    for (int64_t id : step.in)
      args.in.push_back(prepared.host ? ex->hostStepView(id) : ex->views_[static_cast<size_t>(id)]);
    for (int64_t id : step.out)
      args.out.push_back(ex->views_[static_cast<size_t>(id)]);
    args.attrs = &step.attrs;
    if (prepared.fused) {
      for (const TensorView &v : args.in)
        prepared.fusedArgs.push_back(v.data);
      for (const TensorView &v : args.out)
        prepared.fusedArgs.push_back(v.data);
    }
    if (prepared.collective) {
      prepared.collectiveArgs.in = args.in[0];
      prepared.collectiveArgs.out = args.out[0];
      prepared.collectiveArgs.ins = args.in;
      prepared.collectiveArgs.outs = args.out;
      prepared.collectiveArgs.attrs = &step.attrs;
      prepared.collectiveArgs.comm = &comm;
      prepared.collectiveArgs.scratch = ex->scratch_.data();
      prepared.collectiveArgs.copier = &backend;
    }
  }
  if (std::string err = ex->runLoadSteps(); !err.empty())
    return err;
  if (std::string err = ex->planTwoStreams(); !err.empty())
    return err;
  out = std::move(ex);
  return "";
}

std::string Executor::planTwoStreams() {
  twoStreams_ = false;
  if (backend_.streamCount() < 2 || !comm_->takesDevicePointers())
    return "";
  bool any = false;
  std::vector<StepAccess> access(steps_.size());
  auto range = [](const TensorView &v) {
    auto at = reinterpret_cast<uintptr_t>(v.data);
    return ByteRange{0, uint64_t(at), uint64_t(at + v.bytes())};
  };
  const ByteRange scratch{0, uint64_t(reinterpret_cast<uintptr_t>(scratch_.data())),
                          uint64_t(reinterpret_cast<uintptr_t>(scratch_.data()) + scratch_.size())};
  for (size_t i = 0; i < steps_.size(); ++i) {
    const PreparedStep &p = steps_[i];
    StepAccess &a = access[i];
    for (const TensorView &v : p.args.in)
      a.reads.push_back(range(v));
    for (const TensorView &v : p.args.out)
      a.writes.push_back(range(v));
    if (p.collective) {
      if (p.scratchBytes > 0) { // packing through the shared scratch block
        a.reads.push_back(ByteRange{0, scratch.begin, scratch.begin + p.scratchBytes});
        a.writes.push_back(a.reads.back());
      }
      if (communicatesBetweenRanks(artifact_.steps[i].op)) {
        a.stream = 1;
        any = true;
      }
    }
  }
  if (!any)
    return "";
  schedule_ = planStreams(access);
  recordAfter_.assign(steps_.size(), false);
  for (size_t w : schedule_.waitOn)
    if (w != StreamSchedule::kNone)
      recordAfter_[w] = true;
  if (std::string err = backend_.prepareEvents(steps_.size() + 2); !err.empty())
    return "two streams: " + err;
  twoStreams_ = true;
  return "";
}

std::string Executor::runLoadSteps() {
  for (size_t i = 0; i < loadSteps_.size(); ++i) {
    PreparedStep &step = loadSteps_[i];
    std::string err;
    try {
      err = runStep(step);
    } catch (const std::exception &e) {
      err = e.what();
    }
    if (!err.empty())
      return "load step " + std::to_string(i) + " (" + artifact_.loadSteps[i].op + " @ " +
             artifact_.loadSteps[i].loc + "): " + err;
  }
  // The weights only the load steps read (parameters cast to param_dtype) are not needed
  // any more: the persistent copies serve every run.
  bool weightsRead = false;
  for (const Step &s : artifact_.steps)
    for (int64_t id : s.in)
      weightsRead |= artifact_.buffers[static_cast<size_t>(id)].storage == Storage::Weight;
  if (!loadSteps_.empty() && !weightsRead) {
    // The load steps may still be in flight on a device: they read these weights.
    if (std::string err = backend_.synchronize(); !err.empty())
      return "load steps: " + err;
    weights_ = MemoryBlock();
    for (const BufferDesc &b : artifact_.buffers)
      if (b.storage == Storage::Weight)
        views_[static_cast<size_t>(b.id)].data = nullptr;
  }
  return "";
}

std::string Executor::prepareSteps(uint64_t &scratchBytes) {
  // Load steps first, then the run's steps, resolved the same way. Load steps compute on
  // weights, constants and the rank's process_index: no collective runs among them.
  loadSteps_.resize(artifact_.loadSteps.size());
  steps_.resize(artifact_.steps.size());
  size_t total = loadSteps_.size() + steps_.size();
  std::vector<std::vector<std::string>> axesOf(total);
  auto at = [&](size_t i) -> std::pair<const Step &, PreparedStep &> {
    if (i < loadSteps_.size())
      return {artifact_.loadSteps[i], loadSteps_[i]};
    return {artifact_.steps[i - loadSteps_.size()], steps_[i - loadSteps_.size()]};
  };
  auto prefix = [&](size_t i) {
    if (i < loadSteps_.size()) {
      const Step &s = artifact_.loadSteps[i];
      return "load step " + std::to_string(i) + " (" + s.op + " @ " + s.loc + "): ";
    }
    return stepPrefix(i - loadSteps_.size());
  };
  for (size_t i = 0; i < total; ++i) {
    auto [step, prepared] = at(i);
    std::string hostErr;
    if (prepareHostStep(step, prepared, hostErr)) {
      if (!hostErr.empty())
        return prefix(i) + hostErr;
      continue;
    }
    prepared.collective = lookupCollectiveKernel(step.op);
    if (step.op == "fused") {
      std::string name = step.attrs.getString("kernel");
      prepared.fused = backend_.lookupFused(name);
      if (!prepared.fused)
        return prefix(i) + "the " + backend_.name() + " backend has no fused kernel '" + name +
               "' (the artifact's kernel module does not define it)";
      prepared.fusedLaunch = step.attrs.getString("launch", "elements");
      prepared.fusedCount = step.attrs.getInt("count", 0);
      continue;
    }
    if (step.op == kProcessIndexStep) {
      if (std::string err = prepareProcessIndex(step, prepared, i < loadSteps_.size()); !err.empty())
        return prefix(i) + err;
      continue;
    }
    if (!prepared.collective) {
      prepared.kernel = backend_.lookupKernel(step.op);
      if (!prepared.kernel)
        return prefix(i) + "the " + backend_.name() + " backend has no kernel for op '" + step.op + "'";
      continue;
    }
    if (i < loadSteps_.size())
      return prefix(i) + "a collective cannot run at load";
    const int wantIn = prepared.collective->inputs, wantOut = prepared.collective->outputs;
    if (step.in.size() != size_t(wantIn) || step.out.size() != size_t(wantOut))
      return prefix(i) +
             (wantIn == 1 && wantOut == 1 ? std::string("a collective step takes one input and one output")
                                          : step.op + " takes " + std::to_string(wantIn) + " inputs and " +
                                                std::to_string(wantOut) + " outputs") +
             ", not " + std::to_string(step.in.size()) + " and " + std::to_string(step.out.size());
    std::string err;
    axesOf[i] = collectiveAxes(step.attrs, err);
    if (err.empty())
      err = artifact_.deviceMesh.checkAxes(axesOf[i]);
    uint64_t scratch = 0;
    if (err.empty())
      err = prepared.collective->check(views_[static_cast<size_t>(step.in[0])],
                                       views_[static_cast<size_t>(step.out[0])], step.attrs,
                                       artifact_.deviceMesh.groupSize(axesOf[i]), scratch);
    if (!err.empty())
      return prefix(i) + err;
    prepared.scratchBytes = scratch;
    scratchBytes = std::max(scratchBytes, scratch);
  }
  // Every rank runs this same loop over the same steps, so groups are made in one order.
  for (size_t i = 0; i < total; ++i) {
    auto [step, prepared] = at(i);
    (void)step;
    if (prepared.collective)
      if (std::string err = comm_->group(axesOf[i], prepared.collectiveArgs.group); !err.empty())
        return prefix(i) + err;
  }
  return "";
}

// The rank's index over the step's axes, known before anything is allocated; run() writes it.
std::string Executor::prepareProcessIndex(const Step &step, PreparedStep &prepared, bool atLoad) {
  if (!atLoad)
    return "process_index must be a load step (it reads nothing; the emitter hoists it)";
  if (!step.in.empty() || step.out.size() != 1)
    return "process_index takes no input and one output";
  const TensorView &out = views_[static_cast<size_t>(step.out[0])];
  if (out.dtype != DType::I64 || out.numel() != 1)
    return "process_index writes one i64, not " + typeString(out.dtype, out.shape);
  std::string err;
  std::vector<std::string> axes = collectiveAxes(step.attrs, err);
  if (err.empty())
    err = artifact_.deviceMesh.checkAxes(axes);
  if (!err.empty())
    return err;
  prepared.processIndex = true;
  prepared.rankIndex = artifact_.deviceMesh.groupIndex(comm_->rank(), axes);
  return "";
}

std::string checkInputs(const Artifact &artifact, const std::vector<HostTensor> &inputs) {
  std::vector<std::string> missing, unexpected, expectedNames;
  for (const IoBinding &in : artifact.inputs) {
    expectedNames.push_back(in.name);
    if (std::none_of(inputs.begin(), inputs.end(),
                     [&](const HostTensor &t) { return t.name == in.name; }))
      missing.push_back(in.name);
  }
  for (const HostTensor &t : inputs)
    if (std::none_of(artifact.inputs.begin(), artifact.inputs.end(),
                     [&](const IoBinding &in) { return in.name == t.name; }))
      unexpected.push_back(t.name);
  if (!missing.empty() || !unexpected.empty()) {
    std::string err;
    if (!missing.empty())
      err = "missing input" + std::string(missing.size() > 1 ? "s " : " ") + quotedList(missing);
    if (!unexpected.empty())
      err += (err.empty() ? "" : "; ") + std::string("unexpected input") +
             (unexpected.size() > 1 ? "s " : " ") + quotedList(unexpected);
    return err + " (the artifact's inputs: " + quotedList(expectedNames) + ")";
  }

  for (const IoBinding &in : artifact.inputs) {
    const BufferDesc &b = artifact.buffers[static_cast<size_t>(in.buffer)];
    const HostTensor &t =
        *std::find_if(inputs.begin(), inputs.end(), [&](const HostTensor &x) { return x.name == in.name; });
    bool widenI32 = b.dtype == DType::I64 && t.dtype == DType::I32;
    if ((t.dtype != b.dtype && !widenI32) || t.shape != b.globalShape)
      return "input '" + in.name + "': expected " + typeString(b.dtype, b.globalShape) + ", given " +
             typeString(t.dtype, t.shape);
    if (t.data.size() != static_cast<uint64_t>(t.numel()) * dtypeSize(t.dtype))
      return "input '" + in.name + "': holds " + std::to_string(t.data.size()) + " bytes, " +
             typeString(t.dtype, t.shape) + " needs " +
             std::to_string(t.numel() * dtypeSize(t.dtype));
  }
  return "";
}

std::string Executor::copyInputs(const std::vector<HostTensor> &inputs) {
  if (std::string err = checkInputs(artifact_, inputs); !err.empty())
    return err;
  for (const IoBinding &in : artifact_.inputs) {
    const BufferDesc &b = artifact_.buffers[static_cast<size_t>(in.buffer)];
    const HostTensor &t =
        *std::find_if(inputs.begin(), inputs.end(), [&](const HostTensor &x) { return x.name == in.name; });
    // Written in place, or staged on the host for a backend whose memory the host cannot
    // address.
    std::vector<uint8_t> staging;
    uint8_t *dst = arena_.data() + b.offset;
    if (!backend_.hostAddressable()) {
      staging.resize(b.bytes);
      dst = staging.data();
    }
    // Element offsets of the rank's chunk (the whole tensor when unsharded), then bytes.
    std::vector<int64_t> start = chunkStart(b, artifact_.deviceMesh, comm_->rank());
    size_t from = dtypeSize(t.dtype), to = dtypeSize(b.dtype);
    forEachChunkRun(b.globalShape, start, b.shape, 1, [&](uint64_t at, uint64_t into, uint64_t n) {
      if (t.dtype == b.dtype) { // checkInputs allows only i32 given for i64 otherwise
        std::memcpy(dst + into * to, t.data.data() + at * from, n * to);
        return;
      }
      for (uint64_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, t.data.data() + (at + i) * 4, 4);
        int64_t w = v;
        std::memcpy(dst + (into + i) * 8, &w, 8);
      }
    });
    if (!staging.empty())
      if (std::string err = backend_.copyIn(arena_.data() + b.offset, staging.data(), b.bytes); !err.empty())
        return "input '" + in.name + "': " + err;
  }
  return "";
}

std::string Executor::run(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs) {
  outputs.clear();
  if (std::string err = copyInputs(inputs); !err.empty())
    return err;
  if (std::string err = runSteps(nullptr); !err.empty())
    return err;
  return copyOutputs(outputs);
}

std::string Executor::runTimed(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs,
                               int64_t count, std::vector<double> &ms) {
  outputs.clear();
  ms.clear();
  // Untimed: the first run (binds, warms) and, on a backend that records graphs, the run that
  // captures; the timed runs are then replays of the same graph. Profiled runs are never
  // captured, so they need only the first. The inputs are copied in before every run (the
  // arena may reuse their bytes once read), outside the timed part.
  while (runs_ < (profiling_ ? 1u : 2u)) {
    if (std::string err = copyInputs(inputs); !err.empty())
      return err;
    if (std::string err = runSteps(nullptr); !err.empty())
      return err;
  }
  for (int64_t i = 0; i < count; ++i) {
    double one = 0;
    if (std::string err = copyInputs(inputs); !err.empty())
      return err;
    if (std::string err = runSteps(&one); !err.empty())
      return err;
    ms.push_back(one);
  }
  return copyOutputs(outputs);
}

std::string Executor::runSteps(double *timedMs) {
  if (profiling_ && !marksReady_) {
    if (std::string err = backend_.prepareMarks(steps_.size() + 1); !err.empty())
      return "profiling: " + err;
    marksReady_ = true;
  }
  auto steps = [this]() -> std::string {
    hostBlockingInSteps_ = 0;
    const uint64_t kernelWaits = backend_.kernelHostWaits();
    // Two streams: the communication stream starts behind what the compute stream has
    // (the inputs' copies); each step goes to its stream after its wait. A profiled run
    // serialises the streams (each step waits for the one before it), so that each step's
    // marks time it alone.
    const size_t n = steps_.size(), fork = n, join = n + 1;
    int previous = 0;
    if (twoStreams_) {
      if (std::string err = backend_.recordEvent(0, fork); !err.empty())
        return "two streams: " + err;
      if (std::string err = backend_.waitEvent(1, fork); !err.empty())
        return "two streams: " + err;
    }
    if (profiling_)
      if (std::string err = backend_.mark(0); !err.empty())
        return "profiling: " + err;
    for (size_t i = 0; i < steps_.size(); ++i) {
      if (twoStreams_) {
        const int stream = schedule_.stream[i];
        size_t waitOn = schedule_.waitOn[i];
        if (profiling_ && i > 0 && stream != previous)
          waitOn = i - 1;
        if (waitOn != StreamSchedule::kNone)
          if (std::string err = backend_.waitEvent(stream, waitOn); !err.empty())
            return stepPrefix(i) + "two streams: " + err;
        if (std::string err = backend_.useStream(stream); !err.empty())
          return stepPrefix(i) + "two streams: " + err;
        previous = stream;
      }
      if (beforeStep_)
        if (std::string err = beforeStep_(i); !err.empty())
          return err;
      std::string err;
      // Kernels report errors as strings; an exception (bad_alloc in a scratch buffer) must
      // still end as a located error rather than an abort.
      try {
        err = runStep(steps_[i]);
      } catch (const std::exception &e) {
        err = std::string("kernel threw: ") + e.what();
      }
      if (!err.empty())
        return stepPrefix(i) + err;
      if (twoStreams_ && (recordAfter_[i] || profiling_))
        if (std::string err = backend_.recordEvent(schedule_.stream[i], i); !err.empty())
          return stepPrefix(i) + "two streams: " + err;
      if (profiling_)
        if (std::string err = backend_.mark(i + 1); !err.empty())
          return stepPrefix(i) + "profiling: " + err;
      if (stepMark_)
        if (std::string err = stepMark_(i, twoStreams_ ? schedule_.stream[i] : 0); !err.empty())
          return stepPrefix(i) + err;
      if (afterStep_)
        afterStep_(i, steps_[i].collective ? steps_[i].collectiveArgs.outs : steps_[i].args.out);
    }
    // The compute stream (where outputs are read and captures end) takes the communication
    // stream's work in.
    if (twoStreams_) {
      if (std::string err = backend_.recordEvent(1, join); !err.empty())
        return "two streams: " + err;
      if (std::string err = backend_.waitEvent(0, join); !err.empty())
        return "two streams: " + err;
      if (std::string err = backend_.useStream(0); !err.empty())
        return "two streams: " + err;
    }
    hostBlockingInSteps_ += backend_.kernelHostWaits() - kernelWaits;
    return "";
  };
  // A device backend may record the steps once as a graph and replay it: only when the last
  // run enqueued them without the host waiting (no staged collective) and no test hook
  // watches individual steps.
  bool capturable = runs_ > 0 && lastRunBlocked_ == 0 && !beforeStep_ && !afterStep_ && !profiling_;
  if (beginRun_)
    if (std::string err = beginRun_(capturable && backend_.replaysCapture()); !err.empty())
      return err;
  auto launch = [&]() { return capturable ? backend_.runCaptured(steps) : steps(); };
  std::string err = timedMs ? backend_.timeRun(launch, *timedMs) : launch();
  if (twoStreams_ && !err.empty())
    (void)backend_.useStream(0); // a failed step may have left the communication stream current
  if (!err.empty())
    return err;
  if (!capturable)
    lastRunBlocked_ = hostBlockingInSteps_;
  ++runs_;
  if (std::string err = backend_.synchronize(); !err.empty())
    return err;
  if (profiling_) {
    stepMsTotal_.resize(steps_.size(), 0.0);
    for (size_t i = 0; i < steps_.size(); ++i)
      stepMsTotal_[i] += backend_.elapsedMs(i, i + 1);
    ++profiledRuns_;
  }
  return "";
}

std::string Executor::copyOutputs(std::vector<HostTensor> &outputs) {
  outputs.clear();
  for (const IoBinding &o : artifact_.outputs) {
    const BufferDesc &b = artifact_.buffers[static_cast<size_t>(o.buffer)];
    HostTensor t;
    t.name = o.name;
    t.dtype = b.dtype;
    t.shape = b.shape;
    t.data.resize(b.bytes);
    if (std::string err = backend_.copyOut(t.data.data(), arena_.data() + b.offset, b.bytes); !err.empty())
      return "output '" + o.name + "': " + err;
    outputs.push_back(std::move(t));
  }
  return "";
}

static std::string stateBuffer(const Artifact &a, int64_t id, const BufferDesc *&out) {
  if (id < 0 || id >= static_cast<int64_t>(a.buffers.size()) ||
      a.buffers[static_cast<size_t>(id)].storage != Storage::State)
    return "buffer " + std::to_string(id) + " is not a state buffer";
  out = &a.buffers[static_cast<size_t>(id)];
  return "";
}

std::string Executor::readState(int64_t id, std::vector<uint8_t> &bytes) {
  const BufferDesc *b = nullptr;
  if (std::string err = stateBuffer(artifact_, id, b); !err.empty())
    return err;
  if (std::string err = backend_.synchronize(); !err.empty())
    return "state '" + b->name + "': " + err;
  bytes.resize(b->bytes);
  if (b->host) { // CPU offload: host memory
    if (b->bytes)
      std::memcpy(bytes.data(), hostBufferData(*b), b->bytes);
    return "";
  }
  if (std::string err = backend_.copyOut(bytes.data(), persistent_.data() + b->offset, b->bytes); !err.empty())
    return "state '" + b->name + "': " + err;
  return "";
}

std::string Executor::writeState(int64_t id, const void *data, size_t bytes) {
  const BufferDesc *b = nullptr;
  if (std::string err = stateBuffer(artifact_, id, b); !err.empty())
    return err;
  if (bytes != b->bytes)
    return "state '" + b->name + "': " + std::to_string(bytes) + " bytes given, the buffer has " +
           std::to_string(b->bytes);
  if (b->host) { // CPU offload: host memory (no copy is in flight between runs)
    if (bytes)
      std::memcpy(hostBufferData(*b), data, bytes);
    return "";
  }
  if (std::string err = backend_.copyIn(persistent_.data() + b->offset, data, bytes); !err.empty())
    return "state '" + b->name + "': " + err;
  if (std::string err = backend_.synchronize(); !err.empty())
    return "state '" + b->name + "': " + err;
  return "";
}

std::vector<double> Executor::stepMilliseconds() const {
  std::vector<double> mean(stepMsTotal_);
  for (double &ms : mean)
    ms /= double(std::max<uint64_t>(profiledRuns_, 1));
  return mean;
}

std::string Executor::runStep(const PreparedStep &step) {
  if (step.processIndex) // the same on every backend: one i64 through the backend's copy
    return backend_.copyIn(step.args.out[0].data, &step.rankIndex, sizeof(int64_t));
  if (step.host || step.copy)
    return runHostStep(step);
  if (step.fused)
    return step.fused->run(step.fusedArgs.data(), step.fusedLaunch, step.fusedCount);
  if (!step.collective)
    return step.kernel(step.args);
  if (backend_.hostAddressable() || comm_->takesDevicePointers())
    return step.collective->run(step.collectiveArgs);
  // A host communicator on device memory: the input comes to the host, the collective runs
  // there, the output goes back. The host waits for the device here (counted).
  const CollectiveArgs &args = step.collectiveArgs;
  if (args.ins.size() != 1 || args.outs.size() != 1)
    return "a host communicator on device memory runs only one-input collectives (use NCCL)";
  ++hostBlockingInSteps_;
  if (std::string err = backend_.synchronize(); !err.empty())
    return err;
  collectiveIn_.resize(args.in.bytes());
  collectiveOut_.resize(args.out.bytes());
  if (std::string err = backend_.copyOut(collectiveIn_.data(), args.in.data, args.in.bytes()); !err.empty())
    return err;
  CollectiveArgs host = args;
  host.in.data = collectiveIn_.data();
  host.out.data = collectiveOut_.data();
  host.ins = {host.in};
  host.outs = {host.out};
  host.copier = nullptr; // host memory: memcpy
  if (std::string err = step.collective->run(host); !err.empty())
    return err;
  return backend_.copyIn(args.out.data, collectiveOut_.data(), args.out.bytes());
}

} // namespace shardc::rt
