// Session: an artifact's rank bound on a backend (Session.h). Built with the CUDA backend
// where there is one (SHARDC_HAVE_CUDA), so that SessionOptions::backend "cuda" can make it.
#include "shardc/runtime/Session.h"

#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Npz.h"

#include <algorithm>
#include <chrono>

#if defined(SHARDC_HAVE_CUDA)
#include "CudaBackend.h"
#endif

namespace shardc::rt {

Session::~Session() = default;

std::string Session::bind(const Artifact &artifact, Communicator &comm, const SessionOptions &options,
                          std::unique_ptr<Session> &out, Backend *backend) {
  out.reset();
  std::unique_ptr<Session> s(new Session());
  s->artifact_ = &artifact;
  if (backend) {
    s->backend_ = backend;
  } else if (options.backend == "cpu") {
    s->ownBackend_ = std::make_unique<CpuBackend>();
  } else if (options.backend == "cuda") {
#if defined(SHARDC_HAVE_CUDA)
    std::unique_ptr<shardc::cuda::CudaBackend> cuda;
    if (std::string err = shardc::cuda::CudaBackend::create(options.device, cuda); !err.empty())
      return err;
    s->ownBackend_ = std::move(cuda);
#else
    return "--backend cuda: this runtime was built without CUDA";
#endif
  } else {
    return "unknown backend '" + options.backend + "' (cpu or cuda)";
  }
  if (!s->backend_)
    s->backend_ = s->ownBackend_.get();
  ExecutorOptions executorOptions;
  executorOptions.randomWeights = options.randomWeights;
  executorOptions.weights = options.weights;
  if (std::string err = Executor::create(artifact, *s->backend_, comm, s->executor_, executorOptions);
      !err.empty())
    return err;
  out = std::move(s);
  return "";
}

std::string Session::open(const std::string &path, const SessionOptions &options, std::unique_ptr<Session> &out) {
  out.reset();
  auto artifact = std::make_unique<Artifact>();
  if (std::string err = loadArtifact(path, *artifact, options.program); !err.empty())
    return err;
  if (artifact->worldSize != 1)
    return path + ": the artifact is compiled for " + std::to_string(artifact->worldSize) + " ranks (mesh " +
           artifact->deviceMesh.describe() + "): bind one session per rank (Session::bind) or run it with "
           "shardc-run --threads " + std::to_string(artifact->worldSize);
  // A world of one rank; the session keeps the communicator (and the artifact) past its executor.
  auto comm = std::make_unique<LocalCommunicator>(std::make_shared<LocalWorld>(artifact->deviceMesh), 0);
  std::unique_ptr<Session> s;
  if (std::string err = bind(*artifact, *comm, options, s); !err.empty())
    return path + ": " + err;
  s->ownArtifact_ = std::move(artifact);
  s->ownComm_ = std::move(comm);
  out = std::move(s);
  return "";
}

std::string Session::run(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs) {
  return executor_->run(inputs, outputs);
}

std::string Session::runTimed(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs,
                              int64_t count, std::vector<double> &ms) {
  return executor_->runTimed(inputs, outputs, count, ms);
}

std::string Session::streams() const {
  const StreamSchedule *schedule = executor_->streamSchedule();
  return schedule ? schedule->describe() : "";
}

std::string readInputsNpz(const Artifact &artifact, const std::string &path, std::vector<HostTensor> &inputs) {
  if (std::string err = readNpz(path, inputs); !err.empty())
    return err;
  if (std::string err = checkInputs(artifact, inputs); !err.empty())
    return path + ": " + err;
  return "";
}

std::string writeOutputsNpz(const std::string &path, const std::vector<HostTensor> &outputs) {
  std::vector<HostTensor> wide;
  wide.reserve(outputs.size());
  for (const HostTensor &t : outputs)
    wide.push_back(widenToF32(t));
  return writeNpz(path, wide);
}

} // namespace shardc::rt
