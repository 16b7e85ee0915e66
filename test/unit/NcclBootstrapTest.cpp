// Unit tests of the NCCL communicator's GPU-free parts: the TCP rendezvous (rank 0 and its
// peers as threads on a free localhost port), torchrun-style variables and their errors, the
// split colors of mesh-axis groups, and the watchdog's stall decision and thread.
#include "shardc/comm/NcclBootstrap.h"
#include "shardc/comm/ProgressWatchdog.h"
#include "shardc/comm/Rendezvous.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace shardc::rt;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A localhost port nobody listens on right now (bound, read back, closed).
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<uint8_t> idBlob() {
  std::vector<uint8_t> blob(128);
  for (size_t i = 0; i < blob.size(); ++i)
    blob[i] = static_cast<uint8_t>(i * 7 + 3);
  return blob;
}

using Env = std::map<std::string, std::string>;

EnvLookup lookupIn(const Env &env) {
  return [&env](const char *name) -> const char * {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

Env torchrunEnv(int64_t rank, int64_t world, int port) {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(port)}};
}

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

// ---------------------------------------------------------------------------------------
// Rendezvous

TEST(Rendezvous, RankZeroHandsTheBlobToEveryPeer) {
  RendezvousServer server;
  ASSERT_EQ(server.listen(0), "");
  ASSERT_GT(server.port(), 0);
  const std::vector<uint8_t> blob = idBlob();
  std::vector<std::vector<uint8_t>> got(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> peers;
  for (int64_t r = 1; r < 4; ++r)
    peers.emplace_back([&, r] {
      errors[r] = fetchBlob("127.0.0.1", server.port(), r, 4, 10s, got[r]);
    });
  EXPECT_EQ(server.serve(blob, 4, 10s), "");
  for (auto &t : peers)
    t.join();
  for (int64_t r = 1; r < 4; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(got[r], blob) << "rank " << r;
  }
}

TEST(Rendezvous, PeersRetryUntilRankZeroListens) {
  const int port = freePort();
  const std::vector<uint8_t> blob = idBlob();
  std::vector<std::vector<uint8_t>> got(3);
  std::vector<std::string> errors(3);
  std::vector<std::thread> peers;
  for (int64_t r = 1; r < 3; ++r)
    peers.emplace_back([&, r] {
      errors[r] = fetchBlob("localhost", port, r, 3, 10s, got[r]);
    });
  std::this_thread::sleep_for(300ms); // the peers meet a closed port first
  RendezvousServer server;
  ASSERT_EQ(server.listen(port), "");
  EXPECT_EQ(server.serve(blob, 3, 10s), "");
  for (auto &t : peers)
    t.join();
  for (int64_t r = 1; r < 3; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(got[r], blob) << "rank " << r;
  }
}

TEST(Rendezvous, PeerTimesOutWithoutRankZero) {
  const int port = freePort();
  std::vector<uint8_t> got;
  auto start = Clock::now();
  std::string err = fetchBlob("127.0.0.1", port, 2, 4, 300ms, got);
  auto took = Clock::now() - start;
  EXPECT_EQ(err, "could not reach rank 0 at 127.0.0.1:" + std::to_string(port) +
                     " (MASTER_ADDR:MASTER_PORT) within 300ms: Connection refused");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(got.empty());
}

TEST(Rendezvous, RankZeroNamesThePeersThatNeverCame) {
  RendezvousServer server;
  ASSERT_EQ(server.listen(0), "");
  const std::vector<uint8_t> blob = idBlob();
  std::vector<std::vector<uint8_t>> got(4);
  std::vector<std::thread> peers;
  for (int64_t r : {1, 3})
    peers.emplace_back([&, r] { (void)fetchBlob("127.0.0.1", server.port(), r, 4, 10s, got[r]); });
  std::string err = server.serve(blob, 4, 2s); // long enough for 1 and 3 on a busy machine
  for (auto &t : peers)
    t.join();
  EXPECT_EQ(err, "rendezvous on port " + std::to_string(server.port()) +
                     " timed out after 2s: rank 2 did not connect");
  EXPECT_EQ(got[1], blob); // those that came were served
  EXPECT_EQ(got[3], blob);
}

TEST(Rendezvous, WorldSizeMismatchFailsBothSides) {
  RendezvousServer server;
  ASSERT_EQ(server.listen(0), "");
  std::vector<uint8_t> got;
  std::string peerErr;
  std::thread peer([&] { peerErr = fetchBlob("127.0.0.1", server.port(), 1, 8, 10s, got); });
  std::string err = server.serve(idBlob(), 4, 10s);
  peer.join();
  EXPECT_EQ(err, "rank 1 has WORLD_SIZE=8, rank 0 has WORLD_SIZE=4");
  EXPECT_TRUE(contains(peerErr, "refused rank 1: rank 1 has WORLD_SIZE=8, rank 0 has WORLD_SIZE=4"))
      << peerErr;
  EXPECT_TRUE(got.empty());
}

TEST(Rendezvous, RankZeroErrorReachesPeersAtOnce) {
  RendezvousServer server;
  ASSERT_EQ(server.listen(0), "");
  std::vector<std::string> errors(3);
  std::vector<std::thread> peers;
  auto start = Clock::now();
  for (int64_t r = 1; r < 3; ++r)
    peers.emplace_back([&, r] {
      std::vector<uint8_t> got;
      errors[r] = fetchBlob("127.0.0.1", server.port(), r, 3, 30s, got);
    });
  server.serveError("rank 0 failed: no id", 3, 10s);
  for (auto &t : peers)
    t.join();
  EXPECT_LT(Clock::now() - start, 5s);
  for (int64_t r = 1; r < 3; ++r)
    EXPECT_TRUE(contains(errors[r], "refused rank " + std::to_string(r) + ": rank 0 failed: no id"))
        << errors[r];
}

TEST(Rendezvous, StrayConnectionsAreIgnored) {
  RendezvousServer server;
  ASSERT_EQ(server.listen(0), "");
  // Something that connects and speaks garbage (a port scan) must not break the rendezvous.
  std::thread stray([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(server.port()));
    if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0) {
      const char junk[] = "GET / HTTP/1.0\r\n\r\n    ";
      (void)!::write(fd, junk, sizeof junk);
    }
    ::close(fd);
  });
  std::vector<uint8_t> got;
  std::string peerErr;
  std::thread peer([&] {
    std::this_thread::sleep_for(100ms);
    peerErr = fetchBlob("127.0.0.1", server.port(), 1, 2, 10s, got);
  });
  EXPECT_EQ(server.serve(idBlob(), 2, 10s), "");
  stray.join();
  peer.join();
  EXPECT_EQ(peerErr, "");
  EXPECT_EQ(got, idBlob());
}

TEST(Rendezvous, PortInUseIsAClearError) {
  RendezvousServer first, second;
  ASSERT_EQ(first.listen(0), "");
  EXPECT_EQ(second.listen(first.port()),
            "rank 0 cannot listen on port " + std::to_string(first.port()) +
                ": Address already in use");
}

// ---------------------------------------------------------------------------------------
// Torchrun-style variables

TEST(TorchrunEnv, ParsesTheFiveVariables) {
  Env env = {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
             {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"}};
  EXPECT_TRUE(torchrunEnvPresent(lookupIn(env)));
  TorchrunEnv t;
  ASSERT_EQ(parseTorchrunEnv(lookupIn(env), t), "");
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.worldSize, 8);
  EXPECT_EQ(t.localRank, 1);
  EXPECT_EQ(t.masterAddr, "node0");
  EXPECT_EQ(t.masterPort, 29500);
  EXPECT_FALSE(torchrunEnvPresent(lookupIn(Env{})));
  EXPECT_FALSE(torchrunEnvPresent(lookupIn(Env{{"RANK", ""}}))); // empty is unset
}

TEST(TorchrunEnv, MissingOrMalformedVariablesAreClearErrors) {
  const Env good = {{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                    {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  struct Case {
    std::string var, value; // value "<unset>" removes the variable
    std::string error;
  };
  const std::vector<Case> cases = {
      {"RANK", "<unset>", "RANK is not set"},
      {"WORLD_SIZE", "<unset>", "WORLD_SIZE is not set"},
      {"LOCAL_RANK", "<unset>", "LOCAL_RANK is not set"},
      {"MASTER_ADDR", "<unset>", "MASTER_ADDR is not set"},
      {"MASTER_PORT", "<unset>", "MASTER_PORT is not set"},
      {"RANK", "", "RANK is not set"},
      {"WORLD_SIZE", "abc", "WORLD_SIZE=abc is not a number"},
      {"RANK", "1 ", "RANK=1  is not a number"},
      {"RANK", "0x1", "RANK=0x1 is not a number"},
      {"RANK", "99999999999999999999", "RANK=99999999999999999999 is not a number"},
      {"LOCAL_RANK", "-1", "LOCAL_RANK=-1 is negative"},
      {"WORLD_SIZE", "0", "WORLD_SIZE=0 must be at least 1"},
      {"RANK", "4", "RANK=4 is not below WORLD_SIZE=4"},
      {"LOCAL_RANK", "9", "LOCAL_RANK=9 is not below WORLD_SIZE=4"},
      {"MASTER_PORT", "70000", "MASTER_PORT=70000 is not a TCP port (1-65535)"},
      {"MASTER_PORT", "0", "MASTER_PORT=0 is not a TCP port (1-65535)"},
      {"MASTER_PORT", "http", "MASTER_PORT=http is not a number"},
  };
  for (const Case &c : cases) {
    Env env = good;
    if (c.value == "<unset>")
      env.erase(c.var);
    else
      env[c.var] = c.value;
    TorchrunEnv t;
    EXPECT_EQ(parseTorchrunEnv(lookupIn(env), t), c.error) << c.var << "=" << c.value;
  }
}

// ---------------------------------------------------------------------------------------
// The bootstrap over the rendezvous

TEST(NcclBootstrap, TorchrunRanksAllGetRankZerosBlob) {
  const int port = freePort();
  const int64_t world = 4;
  std::atomic<int> made{0};
  BlobMaker make = [&](std::vector<uint8_t> &blob) {
    ++made;
    blob = idBlob();
    return std::string();
  };
  std::vector<Env> envs;
  for (int64_t r = 0; r < world; ++r)
    envs.push_back(torchrunEnv(r, world, port));
  std::vector<NcclBootstrap> boots(world);
  std::vector<std::string> errors(world);
  std::vector<std::thread> ranks;
  for (int64_t r = world - 1; r >= 0; --r) // rank 0 last: the peers retry until it listens
    ranks.emplace_back([&, r] {
      errors[r] = bootstrapFromEnv(lookupIn(envs[r]), make, 20s, boots[r]);
    });
  for (auto &t : ranks)
    t.join();
  EXPECT_EQ(made.load(), 1); // only rank 0 makes the id
  for (int64_t r = 0; r < world; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(boots[r].rank, r);
    EXPECT_EQ(boots[r].worldSize, world);
    EXPECT_EQ(boots[r].localRank, r);
    EXPECT_EQ(boots[r].launcher, "torchrun");
    EXPECT_EQ(boots[r].uniqueId, idBlob()) << "rank " << r;
  }
}

// Under torchrun's elastic agent (TORCHELASTIC_USE_AGENT_STORE=True) MASTER_PORT is the
// agent's TCPStore, busy on rank 0's host for the whole run: the id goes over MASTER_PORT + 1,
// or over SHARDC_BOOTSTRAP_PORT when set.
TEST(TorchrunEnv, TheBootstrapPortAvoidsTorchrunsStore) {
  Env env = torchrunEnv(1, 2, 29500);
  TorchrunEnv t;
  ASSERT_EQ(parseTorchrunEnv(lookupIn(env), t), "");
  EXPECT_EQ(t.bootstrapPort, 29500);
  env["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  ASSERT_EQ(parseTorchrunEnv(lookupIn(env), t), "");
  EXPECT_EQ(t.bootstrapPort, 29500);
  env["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  ASSERT_EQ(parseTorchrunEnv(lookupIn(env), t), "");
  EXPECT_EQ(t.bootstrapPort, 29501);
  EXPECT_EQ(t.bootstrapPortFrom, "MASTER_PORT+1");
  env["SHARDC_BOOTSTRAP_PORT"] = "40000";
  ASSERT_EQ(parseTorchrunEnv(lookupIn(env), t), "");
  EXPECT_EQ(t.bootstrapPort, 40000);
  env["SHARDC_BOOTSTRAP_PORT"] = "70000";
  EXPECT_EQ(parseTorchrunEnv(lookupIn(env), t), "SHARDC_BOOTSTRAP_PORT=70000 is not a TCP port (1-65535)");
  env["SHARDC_BOOTSTRAP_PORT"] = "x";
  EXPECT_EQ(parseTorchrunEnv(lookupIn(env), t), "SHARDC_BOOTSTRAP_PORT=x is not a number");
  env.erase("SHARDC_BOOTSTRAP_PORT");
  env["MASTER_PORT"] = "65535";
  EXPECT_EQ(parseTorchrunEnv(lookupIn(env), t),
            "MASTER_PORT=65535 is torchrun's store and leaves no port above it: set "
            "SHARDC_BOOTSTRAP_PORT");
}

TEST(NcclBootstrap, TorchrunsStoreOnMasterPortIsLeftAlone) {
  // A listener on MASTER_PORT stands for the agent's store; the ranks meet one port above.
  RendezvousServer store;
  int port = 0;
  for (int tries = 0; tries < 20 && !port; ++tries) {
    int candidate = freePort();
    RendezvousServer probe;
    if (candidate < 65535 && probe.listen(candidate + 1).empty()) {
      probe.close();
      if (store.listen(candidate).empty())
        port = candidate;
    }
  }
  ASSERT_NE(port, 0);
  BlobMaker make = [](std::vector<uint8_t> &blob) {
    blob = idBlob();
    return std::string();
  };
  std::vector<Env> envs = {torchrunEnv(0, 2, port), torchrunEnv(1, 2, port)};
  for (Env &e : envs)
    e["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  std::vector<NcclBootstrap> boots(2);
  std::vector<std::string> errors(2);
  std::thread peer([&] { errors[1] = bootstrapFromEnv(lookupIn(envs[1]), make, 20s, boots[1]); });
  errors[0] = bootstrapFromEnv(lookupIn(envs[0]), make, 20s, boots[0]);
  peer.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_EQ(boots[1].uniqueId, idBlob());
  // Without the agent variable rank 0 finds MASTER_PORT busy and says what to do.
  NcclBootstrap boot;
  EXPECT_EQ(bootstrapFromEnv(lookupIn(torchrunEnv(0, 2, port)), make, 1s, boot),
            "rank 0 cannot listen on port " + std::to_string(port) +
                ": Address already in use (MASTER_PORT; set SHARDC_BOOTSTRAP_PORT to a free port)");
}

TEST(NcclBootstrap, NoVariablesMeansOneProcess) {
  NcclBootstrap boot;
  Env none;
  ASSERT_EQ(bootstrapFromEnv(lookupIn(none),
                             [](std::vector<uint8_t> &b) {
                               b = idBlob();
                               return std::string();
                             },
                             1s, boot),
            "");
  EXPECT_EQ(boot.launcher, "single");
  EXPECT_EQ(boot.rank, 0);
  EXPECT_EQ(boot.worldSize, 1);
  EXPECT_EQ(boot.uniqueId, idBlob());
}

TEST(NcclBootstrap, PartialVariablesAreAnError) {
  NcclBootstrap boot;
  Env env = {{"RANK", "0"}};
  EXPECT_EQ(bootstrapFromEnv(lookupIn(env), [](std::vector<uint8_t> &) { return std::string(); },
                             1s, boot),
            "WORLD_SIZE is not set");
}

TEST(NcclBootstrap, RankZerosFailureReachesItsPeers) {
  const int port = freePort();
  std::vector<Env> envs;
  for (int64_t r = 0; r < 3; ++r)
    envs.push_back(torchrunEnv(r, 3, port));
  BlobMaker fails = [](std::vector<uint8_t> &) {
    return std::string("ncclGetUniqueId failed: system error");
  };
  std::vector<std::string> errors(3);
  std::vector<std::thread> ranks;
  auto start = Clock::now();
  for (int64_t r = 0; r < 3; ++r)
    ranks.emplace_back([&, r] {
      NcclBootstrap boot;
      errors[r] = bootstrapFromEnv(lookupIn(envs[r]), fails, 20s, boot);
    });
  for (auto &t : ranks)
    t.join();
  EXPECT_LT(Clock::now() - start, 10s); // nobody waited out the 20s timeout
  EXPECT_EQ(errors[0], "ncclGetUniqueId failed: system error");
  for (int64_t r = 1; r < 3; ++r)
    EXPECT_TRUE(contains(errors[r], "rank " + std::to_string(r) + ": rank 0 at 127.0.0.1:" +
                                        std::to_string(port)) &&
                contains(errors[r], "rank 0 failed: ncclGetUniqueId failed: system error"))
        << errors[r];
}

TEST(NcclBootstrap, PeerNamesUnreachableMasterAndTimeout) {
  const int port = freePort();
  Env env = torchrunEnv(2, 4, port);
  NcclBootstrap boot;
  std::string err = bootstrapFromEnv(lookupIn(env),
                                     [](std::vector<uint8_t> &) { return std::string(); },
                                     250ms, boot);
  EXPECT_EQ(err, "rank 2: could not reach rank 0 at 127.0.0.1:" + std::to_string(port) +
                     " (MASTER_ADDR:MASTER_PORT) within 250ms: Connection refused");
}

// ---------------------------------------------------------------------------------------
// Split colors

TEST(NcclBootstrap, GroupColorsIndexTheGroupsOverTheAxes) {
  DeviceMesh m({{"dp_replicate", 1}, {"dp_shard", 2}, {"cp", 1}, {"tp", 2}});
  EXPECT_EQ(meshGroupColor(m, 0, {"tp"}), 0);
  EXPECT_EQ(meshGroupColor(m, 1, {"tp"}), 0);
  EXPECT_EQ(meshGroupColor(m, 2, {"tp"}), 1);
  EXPECT_EQ(meshGroupColor(m, 3, {"tp"}), 1);
  EXPECT_EQ(meshGroupColor(m, 1, {"dp_shard"}), 1);
  EXPECT_EQ(meshGroupColor(m, 3, {"dp_shard"}), 1);
  EXPECT_EQ(meshGroupColor(m, 2, {"dp_shard"}), 0);
  EXPECT_EQ(meshGroupColor(m, 3, {"tp", "dp_shard"}), 0);
  EXPECT_EQ(meshGroupColor(m, 3, {}), 3);

  // Every axis list of a 3-D mesh: members share a color, groups differ, colors are dense.
  DeviceMesh big({{"a", 2}, {"b", 3}, {"c", 2}});
  const std::vector<std::vector<std::string>> lists = {
      {}, {"a"}, {"b"}, {"c"}, {"a", "b"}, {"c", "a"}, {"b", "c"}, {"c", "b", "a"}};
  for (const auto &axes : lists) {
    std::set<int64_t> colors;
    for (int64_t r = 0; r < big.worldSize(); ++r) {
      int64_t color = meshGroupColor(big, r, axes);
      for (int64_t member : big.groupRanks(r, axes))
        EXPECT_EQ(meshGroupColor(big, member, axes), color) << axesString(axes);
      colors.insert(color);
    }
    int64_t groups = big.worldSize() / big.groupSize(axes);
    EXPECT_EQ(static_cast<int64_t>(colors.size()), groups) << axesString(axes);
    EXPECT_EQ(*colors.begin(), 0);
    EXPECT_EQ(*colors.rbegin(), groups - 1);
  }
}

// ---------------------------------------------------------------------------------------
// Watchdog: the decision on synthetic time, then the thread on a fake progress word

TEST(StallDetector, FiresOnceWhenTheOldestStepStops) {
  StallDetector d(2, 10s);
  const Clock::time_point t0 = Clock::now();
  d.enqueued(1, 3, "matmul @ m.up", t0);
  d.enqueued(2, 4, "all_reduce @ m.down", t0 + 1s);
  EXPECT_EQ(d.observe(0, t0 + 9s), std::nullopt);
  EXPECT_EQ(d.observe(1, t0 + 9500ms), std::nullopt); // step 3 done: step 4's clock starts
  EXPECT_EQ(d.pending(), 1u);
  EXPECT_EQ(d.observe(1, t0 + 19500ms), std::nullopt); // exactly the timeout: not yet
  std::optional<std::string> report = d.observe(1, t0 + 19501ms);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(*report, "rank 2 stuck at step 4 (all_reduce @ m.down) on the compute stream: not done after 10s "
                     "(last done: step 3; a peer rank may have died or be waiting elsewhere)");
  EXPECT_TRUE(d.fired());
  EXPECT_EQ(d.observe(1, t0 + 60s), std::nullopt); // reported once
}

TEST(StallDetector, FirstStepStuckSaysNoStepDone) {
  StallDetector d(0, 500ms);
  const Clock::time_point t0 = Clock::now();
  d.enqueued(1, 0, "all_gather", t0);
  std::optional<std::string> report = d.observe(0, t0 + 501ms);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(*report, "rank 0 stuck at step 0 (all_gather) on the compute stream: not done after 500ms (no step done "
                     "yet; a peer rank may have died or be waiting elsewhere)");
}

TEST(StallDetector, AnIdleRankIsNeverStuck) {
  StallDetector d(1, 10s);
  const Clock::time_point t0 = Clock::now();
  d.enqueued(1, 0, "a", t0);
  EXPECT_EQ(d.observe(1, t0 + 1s), std::nullopt);
  EXPECT_EQ(d.observe(1, t0 + 1h), std::nullopt); // nothing pending: the host is busy elsewhere
  // Work enqueued onto the idle stream starts its clock when it is enqueued.
  d.enqueued(2, 1, "b", t0 + 1h);
  EXPECT_EQ(d.observe(1, t0 + 1h + 10s), std::nullopt);
  EXPECT_TRUE(d.observe(1, t0 + 1h + 11s).has_value());
}

// A CUDA graph replays the same marker writes every run: each run starts again from marker
// 1 with the word set back to 0, and a stall in the second run is still named.
TEST(StallDetector, RunsThatStartAgainFromMarkerOne) {
  StallDetector d(3, 5s);
  const Clock::time_point t0 = Clock::now();
  for (uint32_t m = 1; m <= 3; ++m)
    d.enqueued(m, m - 1, "step " + std::to_string(m - 1), t0);
  EXPECT_EQ(d.observe(3, t0 + 1s), std::nullopt);
  EXPECT_EQ(d.pending(), 0u);
  d.reset(); // the word is 0 again
  for (uint32_t m = 1; m <= 3; ++m)
    d.enqueued(m, m - 1, "step " + std::to_string(m - 1), t0 + 2s);
  // Without the reset, marker 3 from the last run would count these as done.
  EXPECT_EQ(d.observe(0, t0 + 3s), std::nullopt);
  EXPECT_EQ(d.pending(), 3u);
  EXPECT_EQ(d.observe(1, t0 + 4s), std::nullopt);
  std::optional<std::string> report = d.observe(1, t0 + 9001ms);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(*report, "rank 3 stuck at step 1 (step 1) on the compute stream: not done after 5s (last done: step 0; a peer rank "
                     "may have died or be waiting elsewhere)");
}

// Two streams, one word each: the communication stream running ahead of a hung compute
// kernel does not hide it, and a stall on either is named with its stream.
TEST(StallDetector, EachStreamHasItsOwnWord) {
  StallDetector d(1, 2s);
  const Clock::time_point t0 = Clock::now();
  d.enqueued(0, 1, 0, "linear @ m.q_proj", t0);
  d.enqueued(1, 1, 1, "all_gather @ m.layers.1", t0);
  d.enqueued(0, 2, 2, "attention @ m.attn", t0);
  d.enqueued(1, 2, 3, "all_gather @ m.layers.2", t0);
  // The communication stream finished both of its steps; compute is stuck in its first.
  EXPECT_EQ(d.observe(StallDetector::Words{0, 2}, t0 + 1s), std::nullopt);
  EXPECT_EQ(d.pending(), 2u);
  std::optional<std::string> report = d.observe(StallDetector::Words{0, 2}, t0 + 2001ms);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(*report, "rank 1 stuck at step 0 (linear @ m.q_proj) on the compute stream: not done after 2s "
                     "(last done: step 3; a peer rank may have died or be waiting elsewhere)");

  StallDetector c(0, 2s);
  c.enqueued(0, 1, 0, "linear", t0);
  c.enqueued(1, 1, 1, "reduce_scatter @ m.layers.0", t0);
  c.enqueued(0, 2, 2, "linear", t0);
  EXPECT_EQ(c.observe(StallDetector::Words{2, 0}, t0 + 1s), std::nullopt); // compute done, comm waits
  report = c.observe(StallDetector::Words{2, 0}, t0 + 3s);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->find("stuck at step 1 (reduce_scatter @ m.layers.0) on the communication stream") !=
              std::string::npos)
      << *report;
}

TEST(StallDetector, SteadyProgressNeverFires) {
  // 50 steps of 0.9s each with a 1s timeout: 45s in all, never stuck.
  StallDetector d(0, 1s);
  Clock::time_point t = Clock::now();
  d.enqueued(1, 1, "step", t);
  for (uint32_t m = 1; m <= 50; ++m) {
    d.enqueued(m + 1, m + 1, "step", t); // always one more queued behind
    t += 900ms;
    EXPECT_EQ(d.observe(m, t), std::nullopt) << m;
  }
  EXPECT_FALSE(d.fired());
}

TEST(StallDetector, MarkersWrapAround) {
  StallDetector d(0, 1s);
  const Clock::time_point t0 = Clock::now();
  d.enqueued(0xfffffffeu, 1, "a", t0);
  d.enqueued(0xffffffffu, 2, "b", t0);
  d.enqueued(0u, 3, "c", t0);
  EXPECT_EQ(d.observe(0xfffffffdu, t0), std::nullopt);
  EXPECT_EQ(d.pending(), 3u);
  EXPECT_EQ(d.observe(0xffffffffu, t0), std::nullopt);
  EXPECT_EQ(d.pending(), 1u);
  EXPECT_EQ(d.observe(0u, t0), std::nullopt);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(ProgressWatchdog, ReportsTheStuckStepAndCallsOnStall) {
  std::atomic<uint32_t> word{0};
  std::mutex mutex;
  std::condition_variable fired;
  std::vector<std::string> reports;
  ProgressWatchdog w(
      5, 200ms, [&] { return word.load(); },
      [&](const std::string &r) {
        std::lock_guard<std::mutex> lock(mutex);
        reports.push_back(r);
        fired.notify_all();
      });
  uint32_t first = w.enqueue(6, "matmul");
  w.enqueue(7, "all_reduce @ m.down");
  word = first; // step 6 finished, step 7 never does
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(fired.wait_for(lock, 10s, [&] { return !reports.empty(); }));
  EXPECT_TRUE(contains(reports[0], "rank 5 stuck at step 7 (all_reduce @ m.down) on the compute stream: not done "
                                   "after 200ms (last done: step 6"))
      << reports[0];
  lock.unlock();
  EXPECT_EQ(w.report(), reports[0]);
  std::this_thread::sleep_for(300ms);
  lock.lock();
  EXPECT_EQ(reports.size(), 1u); // once
}

TEST(ProgressWatchdog, QuietWhileTheWordAdvances) {
  std::atomic<uint32_t> word{0};
  std::atomic<int> stalls{0};
  ProgressWatchdog w(0, 1s, [&] { return word.load(); },
                     [&](const std::string &) { ++stalls; });
  for (int step = 0; step < 20; ++step) { // 20 steps of 100ms: longer than the timeout in all
    uint32_t marker = w.enqueue(step, "step");
    std::this_thread::sleep_for(100ms);
    word = marker;
  }
  std::this_thread::sleep_for(1500ms); // idle afterwards: still not stuck
  EXPECT_EQ(stalls.load(), 0);
  EXPECT_EQ(w.report(), "");
}

TEST(ProgressWatchdog, AnAsynchronousErrorFiresToo) {
  std::atomic<uint32_t> word{0};
  std::atomic<bool> broken{false};
  std::mutex mutex;
  std::condition_variable fired;
  std::string report;
  ProgressWatchdog w(
      1, 10s, [&] { return word.load(); },
      [&](const std::string &r) {
        std::lock_guard<std::mutex> lock(mutex);
        report = r;
        fired.notify_all();
      },
      [&] { return broken ? std::string("NCCL error on group [tp] (ranks 0,1): remote error")
                          : std::string(); });
  std::this_thread::sleep_for(50ms);
  broken = true;
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(fired.wait_for(lock, 10s, [&] { return !report.empty(); }));
  EXPECT_EQ(report, "rank 1: NCCL error on group [tp] (ranks 0,1): remote error");
}

} // namespace
