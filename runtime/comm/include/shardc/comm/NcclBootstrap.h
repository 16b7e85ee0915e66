// How a process finds its rank, the job's size, its GPU and NCCL's unique id before any NCCL
// call: from MPI under mpirun, else from torchrun-style environment variables with a TCP
// rendezvous. Plain C++ (the unique id is an opaque blob made by a callback), so all of it
// but the MPI path is unit-tested without a GPU.
#pragma once

#include "shardc/comm/DeviceMesh.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shardc::rt {

// The torchrun-style launch variables, parsed and checked.
struct TorchrunEnv {
  int64_t rank = 0, worldSize = 1, localRank = 0;
  std::string masterAddr;
  int masterPort = 0;
  // Where rank 0 hands out the NCCL id: SHARDC_BOOTSTRAP_PORT when set; else MASTER_PORT + 1
  // under torchrun's elastic agent (TORCHELASTIC_USE_AGENT_STORE=True: the agent's TCPStore
  // holds MASTER_PORT on rank 0's host for the whole run); else MASTER_PORT.
  int bootstrapPort = 0;
  std::string bootstrapPortFrom; // "MASTER_PORT", "MASTER_PORT+1" or "SHARDC_BOOTSTRAP_PORT"
};

// Looks a variable up; nullptr when unset (std::getenv in production, a map in tests).
using EnvLookup = std::function<const char *(const char *name)>;
EnvLookup processEnv();

// Whether any of RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT is set.
bool torchrunEnvPresent(const EnvLookup &env);
// All five must be set and consistent. One-line errors: "RANK is not set", "WORLD_SIZE=abc is
// not a number", "RANK=4 is not below WORLD_SIZE=4", "MASTER_PORT=70000 is not a TCP port
// (1-65535)"; SHARDC_BOOTSTRAP_PORT likewise when set.
[[nodiscard]] std::string parseTorchrunEnv(const EnvLookup &env, TorchrunEnv &out);

// What the bootstrap found. `uniqueId` is the blob rank 0 made, identical on every rank.
struct NcclBootstrap {
  int64_t rank = 0, worldSize = 1, localRank = 0;
  std::string launcher; // "mpi", "torchrun" or "single" (no launcher: one process)
  std::vector<uint8_t> uniqueId;
};

// Makes the blob on rank 0 (ncclGetUniqueId); "" or a one-line error.
using BlobMaker = std::function<std::string(std::vector<uint8_t> &blob)>;

// Torchrun-style: parse `env`, then rank 0 listens on the bootstrap port (TorchrunEnv) and
// hands its blob to every peer, which connects to MASTER_ADDR there with retries until
// `timeout`. With none of
// the five variables set the process is a job of one ("single"). If rank 0 cannot make the
// blob its peers fail at once with its reason.
[[nodiscard]] std::string bootstrapFromEnv(const EnvLookup &env, const BlobMaker &make,
                                           std::chrono::milliseconds timeout,
                                           NcclBootstrap &out);
// MPI: initialises MPI if needed, rank and size from MPI_COMM_WORLD, the local rank from the
// ranks sharing this host name, the blob broadcast from rank 0 (nonblocking calls polled
// against `timeout`). Only when the runtime is built with MPI (else an error).
[[nodiscard]] std::string bootstrapFromMpi(const BlobMaker &make,
                                           std::chrono::milliseconds timeout,
                                           NcclBootstrap &out);
// Whether this build has the MPI bootstrap.
bool bootstrapHasMpi();
// bootstrapFromMpi under an MPI launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE set),
// else bootstrapFromEnv on the process environment.
[[nodiscard]] std::string bootstrap(const BlobMaker &make, std::chrono::milliseconds timeout,
                                    NcclBootstrap &out);

// The NCCL split of a group: groups over the same axes partition the world, and `color` is
// the index of `rank`'s group among them (row-major over the mesh axes not in `axes`, in mesh
// order), so colors are 0..numGroups-1. The key is the group index, which makes the rank in
// the split communicator equal the group index. `axes` must pass mesh.checkAxes.
int64_t meshGroupColor(const DeviceMesh &mesh, int64_t rank, const std::vector<std::string> &axes);

} // namespace shardc::rt
