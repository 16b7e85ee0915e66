// The TCP rendezvous behind torchrun-style launches. Wire format (big-endian):
//   peer -> rank 0: magic, version (u32 each), rank, world size (u64 each)
//   rank 0 -> peer: magic, status (u32: 0 ok, 1 error), length (u64), payload (blob or text)
// Every socket is nonblocking and every wait is a poll() bounded by the caller's deadline, so
// no rank hangs on a peer that never comes.
#include "shardc/comm/Rendezvous.h"

#include "shardc/comm/Communicator.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shardc::rt {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kMagic = 0x53485256; // "SHRV"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kStatusOk = 0, kStatusError = 1;
constexpr size_t kHelloBytes = 24, kReplyHeaderBytes = 16;
constexpr uint64_t kMaxPayload = 1 << 20; // anything larger is not our peer talking
// A peer sends its hello right after connecting; one that does not within this time is a
// stray connection and must not hold up the others.
constexpr std::chrono::milliseconds kHelloTimeout{10000};

void putU32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8)
    p[i] = static_cast<uint8_t>(v);
}
void putU64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8)
    p[i] = static_cast<uint8_t>(v);
}
uint32_t getU32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = v << 8 | p[i];
  return v;
}
uint64_t getU64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = v << 8 | p[i];
  return v;
}

int msUntil(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

std::string errnoText(int err) { return std::strerror(err); }

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
};

// Waits for `events` on fd until the deadline: "" when ready, "timeout", or an errno text.
std::string waitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, msUntil(deadline));
    if (rc > 0)
      return "";
    if (rc == 0)
      return "timeout";
    if (errno != EINTR)
      return errnoText(errno);
  }
}

std::string sendAll(int fd, const uint8_t *data, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL);
    if (k > 0) {
      data += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (std::string err = waitFd(fd, POLLOUT, deadline); !err.empty())
        return err;
      continue;
    }
    return errnoText(errno);
  }
  return "";
}

std::string recvAll(int fd, uint8_t *data, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    ssize_t k = ::recv(fd, data, n, 0);
    if (k > 0) {
      data += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k == 0)
      return "connection closed";
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (std::string err = waitFd(fd, POLLIN, deadline); !err.empty())
        return err;
      continue;
    }
    return errnoText(errno);
  }
  return "";
}

std::string hostPort(const std::string &host, int port) {
  // An IPv6 literal needs brackets to be read back unambiguously.
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

} // namespace

RendezvousServer::~RendezvousServer() { close(); }

void RendezvousServer::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

std::string RendezvousServer::listen(int port) {
  close();
  if (port < 0 || port > 65535)
    return "port " + std::to_string(port) + " is not a TCP port (1-65535)";
  int lastErr = 0;
  // IPv6 dual-stack first (it also accepts IPv4 peers); hosts without IPv6 fall back to IPv4.
  for (int family : {AF_INET6, AF_INET}) {
    Fd s(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (s.fd < 0) {
      lastErr = errno;
      continue;
    }
    int one = 1, zero = 0;
    // A restarted job must not wait out the previous one's TIME_WAIT connections.
    ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (family == AF_INET6) {
      ::setsockopt(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      rc = ::bind(s.fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(static_cast<uint16_t>(port));
      rc = ::bind(s.fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    }
    if (rc != 0) {
      lastErr = errno;
      if (lastErr == EADDRINUSE || lastErr == EACCES)
        break; // IPv4 would fail the same way; say so now
      continue;
    }
    if (::listen(s.fd, SOMAXCONN) != 0) {
      lastErr = errno;
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(s.fd, reinterpret_cast<sockaddr *>(&bound), &len);
    port_ = ntohs(bound.ss_family == AF_INET6
                      ? reinterpret_cast<sockaddr_in6 *>(&bound)->sin6_port
                      : reinterpret_cast<sockaddr_in *>(&bound)->sin_port);
    fd_ = s.fd;
    s.fd = -1;
    return "";
  }
  return "rank 0 cannot listen on port " + std::to_string(port) + ": " + errnoText(lastErr);
}

std::string RendezvousServer::serve(const std::vector<uint8_t> &blob, int64_t worldSize,
                                    std::chrono::milliseconds timeout) {
  return serveReply(kStatusOk, blob, worldSize, timeout);
}

void RendezvousServer::serveError(const std::string &error, int64_t worldSize,
                                  std::chrono::milliseconds timeout) {
  std::vector<uint8_t> text(error.begin(), error.end());
  (void)serveReply(kStatusError, text, worldSize, timeout);
}

std::string RendezvousServer::serveReply(uint32_t status, const std::vector<uint8_t> &payload,
                                         int64_t worldSize, std::chrono::milliseconds timeout) {
  if (fd_ < 0)
    return "the rendezvous server is not listening";
  if (payload.size() > kMaxPayload)
    return "the rendezvous blob has " + std::to_string(payload.size()) + " bytes (at most " +
           std::to_string(kMaxPayload) + ")";
  const Clock::time_point deadline = Clock::now() + timeout;
  std::vector<bool> served(static_cast<size_t>(std::max<int64_t>(worldSize, 1)), false);
  served[0] = true;
  int64_t left = worldSize - 1;

  auto reply = [&](int fd, uint32_t st, const std::vector<uint8_t> &body,
                   Clock::time_point until) {
    std::vector<uint8_t> msg(kReplyHeaderBytes + body.size());
    putU32(msg.data(), kMagic);
    putU32(msg.data() + 4, st);
    putU64(msg.data() + 8, body.size());
    std::copy(body.begin(), body.end(), msg.begin() + kReplyHeaderBytes);
    return sendAll(fd, msg.data(), msg.size(), until);
  };
  auto text = [](const std::string &s) { return std::vector<uint8_t>(s.begin(), s.end()); };

  while (left > 0) {
    std::string waited = waitFd(fd_, POLLIN, deadline);
    if (waited == "timeout") {
      std::vector<int64_t> missing;
      for (size_t r = 1; r < served.size(); ++r)
        if (!served[r])
          missing.push_back(static_cast<int64_t>(r));
      return "rendezvous on port " + std::to_string(port_) + " timed out after " +
             formatDuration(timeout) + ": " + (missing.size() == 1 ? "rank " : "ranks ") +
             rankList(missing) + " did not connect";
    }
    if (!waited.empty())
      return "rendezvous on port " + std::to_string(port_) + ": " + waited;
    Fd conn(::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (conn.fd < 0)
      continue; // EAGAIN (the peer went away), EINTR, ECONNABORTED: keep listening
    int one = 1;
    ::setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Clock::time_point until = std::min(deadline, Clock::now() + kHelloTimeout);
    uint8_t hello[kHelloBytes];
    if (!recvAll(conn.fd, hello, sizeof hello, until).empty() || getU32(hello) != kMagic ||
        getU32(hello + 4) != kVersion)
      continue; // not one of ours (a port scan, a stale client): ignore it
    int64_t rank = static_cast<int64_t>(getU64(hello + 8));
    int64_t theirWorld = static_cast<int64_t>(getU64(hello + 16));
    if (status == kStatusError) {
      (void)reply(conn.fd, status, payload, until);
    } else if (theirWorld != worldSize) {
      std::string err = "rank " + std::to_string(rank) + " has WORLD_SIZE=" +
                        std::to_string(theirWorld) + ", rank 0 has WORLD_SIZE=" +
                        std::to_string(worldSize);
      (void)reply(conn.fd, kStatusError, text(err), until);
      return err;
    } else if (rank <= 0 || rank >= worldSize) {
      std::string err = rank == 0 ? "two processes claim RANK=0"
                                  : "a peer claims RANK=" + std::to_string(rank) +
                                        " outside 0.." + std::to_string(worldSize - 1);
      (void)reply(conn.fd, kStatusError, text(err), until);
      return err;
    } else if (!reply(conn.fd, status, payload, until).empty()) {
      continue; // the peer went away; it fails on its side and is named if it never returns
    }
    if (rank > 0 && rank < static_cast<int64_t>(served.size()) &&
        !served[static_cast<size_t>(rank)]) {
      served[static_cast<size_t>(rank)] = true;
      --left;
    }
  }
  return "";
}

std::string fetchBlob(const std::string &host, int port, int64_t rank, int64_t worldSize,
                      std::chrono::milliseconds timeout, std::vector<uint8_t> &blob) {
  const std::string where = "rank 0 at " + hostPort(host, port) + " (MASTER_ADDR:MASTER_PORT)";
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string lastError = "no answer";
  auto backoff = std::chrono::milliseconds(20);

  for (;;) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *found = nullptr;
    int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    Fd conn;
    if (gai != 0) {
      lastError = std::string("cannot resolve '") + host + "': " + ::gai_strerror(gai);
    } else {
      for (addrinfo *ai = found; ai && conn.fd < 0; ai = ai->ai_next) {
        Fd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol));
        if (s.fd < 0) {
          lastError = errnoText(errno);
          continue;
        }
        int rc = ::connect(s.fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno != EINPROGRESS) {
          lastError = errnoText(errno);
          continue;
        }
        if (rc != 0) {
          // One attempt must not eat the whole budget when a SYN is silently dropped.
          Clock::time_point attempt = std::min(deadline, Clock::now() + std::chrono::seconds(2));
          std::string waited = waitFd(s.fd, POLLOUT, attempt);
          int err = 0;
          socklen_t len = sizeof err;
          if (waited.empty())
            ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (!waited.empty() || err != 0) {
            lastError = waited == "timeout" ? "connection attempt timed out"
                                            : (waited.empty() ? errnoText(err) : waited);
            continue;
          }
        }
        conn.fd = s.fd;
        s.fd = -1;
      }
      ::freeaddrinfo(found);
    }

    if (conn.fd >= 0) {
      int one = 1;
      ::setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      uint8_t hello[kHelloBytes];
      putU32(hello, kMagic);
      putU32(hello + 4, kVersion);
      putU64(hello + 8, static_cast<uint64_t>(rank));
      putU64(hello + 16, static_cast<uint64_t>(worldSize));
      uint8_t header[kReplyHeaderBytes];
      std::string err = sendAll(conn.fd, hello, sizeof hello, deadline);
      if (err.empty())
        err = recvAll(conn.fd, header, sizeof header, deadline);
      if (err == "timeout")
        return where + " accepted rank " + std::to_string(rank) + " but sent nothing within " +
               formatDuration(timeout);
      if (!err.empty())
        return "lost the connection to " + where + ": " + err;
      uint64_t length = getU64(header + 8);
      if (getU32(header) != kMagic || length > kMaxPayload)
        return where + " is not a shardc rendezvous (another program on that port?)";
      std::vector<uint8_t> payload(static_cast<size_t>(length));
      if (length > 0)
        err = recvAll(conn.fd, payload.data(), payload.size(), deadline);
      if (!err.empty())
        return "lost the connection to " + where + ": " + err;
      if (getU32(header + 4) != kStatusOk)
        return where + " refused rank " + std::to_string(rank) + ": " +
               std::string(payload.begin(), payload.end());
      blob = std::move(payload);
      return "";
    }

    // Rank 0 may simply not be listening yet: retry with a growing pause until the deadline.
    Clock::time_point now = Clock::now();
    if (now >= deadline)
      return "could not reach " + where + " within " + formatDuration(timeout) + ": " +
             lastError;
    std::this_thread::sleep_for(std::min<Clock::duration>(backoff, deadline - now));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

} // namespace shardc::rt
