// Rank discovery for the NCCL communicator: torchrun-style variables and the TCP rendezvous,
// the choice between them and MPI, and the split colors of mesh-axis groups.
#include "shardc/comm/NcclBootstrap.h"

#include "shardc/comm/Rendezvous.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace shardc::rt {

namespace {

constexpr const char *kTorchrunVars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                         "MASTER_PORT"};

const char *lookup(const EnvLookup &env, const char *name) {
  const char *v = env(name);
  return v && *v ? v : nullptr; // an empty variable is as good as unset
}

// "" and `value`, or a one-line error naming the variable.
std::string envInt(const EnvLookup &env, const char *name, int64_t &value) {
  const char *text = lookup(env, name);
  if (!text)
    return std::string(name) + " is not set";
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size())
    return std::string(name) + "=" + text + " is not a number";
  if (value < 0)
    return std::string(name) + "=" + text + " is negative";
  return "";
}

// Whether the process was started by an MPI launcher (the same variables launchedByMpi()
// reads; repeated here because builds without MPI lack that function).
bool mpiLauncherVisible() {
  for (const char *var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (const char *v = std::getenv(var); v && *v)
      return true;
  return false;
}

} // namespace

EnvLookup processEnv() {
  return [](const char *name) -> const char * { return std::getenv(name); };
}

bool torchrunEnvPresent(const EnvLookup &env) {
  return std::any_of(std::begin(kTorchrunVars), std::end(kTorchrunVars),
                     [&](const char *name) { return lookup(env, name) != nullptr; });
}

std::string parseTorchrunEnv(const EnvLookup &env, TorchrunEnv &out) {
  TorchrunEnv t;
  int64_t port = 0;
  if (std::string err = envInt(env, "RANK", t.rank); !err.empty())
    return err;
  if (std::string err = envInt(env, "WORLD_SIZE", t.worldSize); !err.empty())
    return err;
  if (std::string err = envInt(env, "LOCAL_RANK", t.localRank); !err.empty())
    return err;
  if (const char *addr = lookup(env, "MASTER_ADDR"))
    t.masterAddr = addr;
  else
    return "MASTER_ADDR is not set";
  if (std::string err = envInt(env, "MASTER_PORT", port); !err.empty())
    return err;
  if (t.worldSize < 1)
    return "WORLD_SIZE=" + std::to_string(t.worldSize) + " must be at least 1";
  if (t.rank >= t.worldSize)
    return "RANK=" + std::to_string(t.rank) + " is not below WORLD_SIZE=" +
           std::to_string(t.worldSize);
  if (t.localRank >= t.worldSize)
    return "LOCAL_RANK=" + std::to_string(t.localRank) + " is not below WORLD_SIZE=" +
           std::to_string(t.worldSize);
  if (port < 1 || port > 65535)
    return "MASTER_PORT=" + std::to_string(port) + " is not a TCP port (1-65535)";
  t.masterPort = static_cast<int>(port);
  t.bootstrapPort = t.masterPort;
  t.bootstrapPortFrom = "MASTER_PORT";
  if (lookup(env, "SHARDC_BOOTSTRAP_PORT")) {
    int64_t own = 0;
    if (std::string err = envInt(env, "SHARDC_BOOTSTRAP_PORT", own); !err.empty())
      return err;
    if (own < 1 || own > 65535)
      return "SHARDC_BOOTSTRAP_PORT=" + std::to_string(own) + " is not a TCP port (1-65535)";
    t.bootstrapPort = static_cast<int>(own);
    t.bootstrapPortFrom = "SHARDC_BOOTSTRAP_PORT";
  } else if (const char *agent = lookup(env, "TORCHELASTIC_USE_AGENT_STORE");
             agent && std::string_view(agent) == "True") {
    // torchrun's agent serves its TCPStore on MASTER_PORT: take the next port.
    if (t.masterPort == 65535)
      return "MASTER_PORT=65535 is torchrun's store and leaves no port above it: set "
             "SHARDC_BOOTSTRAP_PORT";
    t.bootstrapPort = t.masterPort + 1;
    t.bootstrapPortFrom = "MASTER_PORT+1";
  }
  out = t;
  return "";
}

std::string bootstrapFromEnv(const EnvLookup &env, const BlobMaker &make,
                             std::chrono::milliseconds timeout, NcclBootstrap &out) {
  NcclBootstrap b;
  if (!torchrunEnvPresent(env)) {
    b.launcher = "single";
    if (std::string err = make(b.uniqueId); !err.empty())
      return err;
    out = std::move(b);
    return "";
  }
  TorchrunEnv t;
  if (std::string err = parseTorchrunEnv(env, t); !err.empty())
    return err;
  b.rank = t.rank;
  b.worldSize = t.worldSize;
  b.localRank = t.localRank;
  b.launcher = "torchrun";
  if (t.rank == 0) {
    RendezvousServer server;
    // Listen before making the blob: peers that arrive early wait in the backlog.
    if (t.worldSize > 1)
      if (std::string err = server.listen(t.bootstrapPort); !err.empty())
        return err + " (" + t.bootstrapPortFrom + "; set SHARDC_BOOTSTRAP_PORT to a free port)";
    if (std::string err = make(b.uniqueId); !err.empty()) {
      // Peers would otherwise wait out their whole timeout; tell those that come soon.
      if (t.worldSize > 1)
        server.serveError("rank 0 failed: " + err, t.worldSize,
                          std::min(timeout, std::chrono::milliseconds(30000)));
      return err;
    }
    if (t.worldSize > 1)
      if (std::string err = server.serve(b.uniqueId, t.worldSize, timeout); !err.empty())
        return err;
  } else if (std::string err = fetchBlob(t.masterAddr, t.bootstrapPort, t.rank, t.worldSize,
                                         timeout, b.uniqueId);
             !err.empty()) {
    if (t.bootstrapPortFrom != "MASTER_PORT")
      if (size_t at = err.find("(MASTER_ADDR:MASTER_PORT)"); at != std::string::npos)
        err.replace(at, 25, "(MASTER_ADDR:" + t.bootstrapPortFrom + ")");
    return "rank " + std::to_string(t.rank) + ": " + err;
  }
  out = std::move(b);
  return "";
}

#ifndef SHARDC_BOOTSTRAP_HAVE_MPI
bool bootstrapHasMpi() { return false; }

std::string bootstrapFromMpi(const BlobMaker &, std::chrono::milliseconds, NcclBootstrap &) {
  return "this runtime was built without MPI";
}
#endif

std::string bootstrap(const BlobMaker &make, std::chrono::milliseconds timeout,
                      NcclBootstrap &out) {
  EnvLookup env = processEnv();
  if (mpiLauncherVisible()) {
    if (bootstrapHasMpi())
      return bootstrapFromMpi(make, timeout, out);
    if (!torchrunEnvPresent(env))
      return "started by an MPI launcher, but this runtime was built without MPI: set RANK, "
             "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, or rebuild with MPI";
  }
  return bootstrapFromEnv(env, make, timeout, out);
}

int64_t meshGroupColor(const DeviceMesh &mesh, int64_t rank,
                       const std::vector<std::string> &axes) {
  std::vector<int64_t> c = mesh.coords(rank);
  int64_t color = 0;
  for (size_t i = 0; i < mesh.axes().size(); ++i)
    if (std::find(axes.begin(), axes.end(), mesh.axes()[i].name) == axes.end())
      color = color * mesh.axes()[i].size + c[i];
  return color;
}

} // namespace shardc::rt
