// A one-shot TCP rendezvous: rank 0 hands one opaque byte blob (NCCL's unique id) to every
// other rank of the job. POSIX sockets only, so that torchrun-style launches need no MPI; it
// knows nothing of NCCL and is unit-tested on the CPU.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace shardc::rt {

// Rank 0's side. Listen first (peers retry until then), then serve.
class RendezvousServer {
public:
  RendezvousServer() = default;
  ~RendezvousServer();
  RendezvousServer(const RendezvousServer &) = delete;
  RendezvousServer &operator=(const RendezvousServer &) = delete;

  // Binds every local address (IPv6 dual-stack where available, else IPv4) on `port`;
  // port 0 picks a free one (tests), port() then says which.
  [[nodiscard]] std::string listen(int port);
  int port() const { return port_; }

  // Sends `blob` to each of ranks 1..worldSize-1 as it connects and returns once every one has
  // it, or a one-line error: "rendezvous on port 29500 timed out after 10s: ranks 2, 3 did not
  // connect". A peer that reports another world size fails it (the job is inconsistent).
  [[nodiscard]] std::string serve(const std::vector<uint8_t> &blob, int64_t worldSize,
                                  std::chrono::milliseconds timeout);
  // Rank 0 could not make the blob: each peer that connects within `timeout` gets `error`
  // (so it fails at once, naming rank 0's reason) instead of waiting for its own timeout.
  void serveError(const std::string &error, int64_t worldSize, std::chrono::milliseconds timeout);

  void close();

private:
  std::string serveReply(uint32_t status, const std::vector<uint8_t> &payload, int64_t worldSize,
                         std::chrono::milliseconds timeout);
  int fd_ = -1;
  int port_ = 0;
};

// A peer's side: connects to rank 0 at host:port, retrying while it is not listening yet,
// and receives the blob. Errors are one line and name host:port and the timeout: "could not
// reach rank 0 at 10.0.0.1:29500 (MASTER_ADDR:MASTER_PORT) within 10s: Connection refused".
[[nodiscard]] std::string fetchBlob(const std::string &host, int port, int64_t rank,
                                    int64_t worldSize, std::chrono::milliseconds timeout,
                                    std::vector<uint8_t> &blob);

} // namespace shardc::rt
