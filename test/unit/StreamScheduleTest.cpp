// The two-stream schedule (StreamSchedule.h): the planner on hand-made accesses, and the
// executor running sharded artifacts on StreamSimBackend (queued kernels and collectives run
// in adversarial orders) against the one-stream CPU run, bit for bit. Without the planned
// waits the runs differ, so these tests can fail.
//
// Also a driver for real compiled artifacts (e2e.streams.*):
//   shardc-stream-schedule-tests --artifact m.shardc --inputs in.npz
#include "StreamSimBackend.h"
#include "TempDir.h"
#include "TpMlpArtifact.h"

#include "ManifestJson.h"
#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/Npz.h"
#include "shardc/runtime/StreamSchedule.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

namespace {

using namespace shardc::rt;
using test_backends::DeferredCommunicator;
using test_backends::StreamSimBackend;

StepAccess access(std::vector<ByteRange> reads, std::vector<ByteRange> writes, int stream) {
  return StepAccess{std::move(reads), std::move(writes), stream};
}

TEST(StreamSchedule, WaitsForConflictsOnTheOtherStreamOnly) {
  // 0: compute writes A. 1: comm reads A (read after write: waits for 0). 2: compute writes
  // B. 3: compute overwrites A, which comm step 1 reads (write after read: waits for 1).
  // 4: comm writes C (no conflict). 5: compute reads C (read after write: waits for 4).
  // 6: comm writes B, which compute step 2 wrote (write after write: comm waited for compute
  // step 0 only so far, so it waits for 2, the latest compute step it conflicts with).
  const ByteRange A{0, 0, 64}, B{0, 64, 128}, C{0, 128, 192};
  StreamSchedule s = planStreams({access({}, {A}, 0), access({A}, {}, 1), access({}, {B}, 0), access({}, {A}, 0),
                                  access({}, {C}, 1), access({C}, {}, 0), access({}, {B}, 1)});
  const size_t none = StreamSchedule::kNone;
  EXPECT_EQ(s.stream, (std::vector<int>{0, 1, 0, 0, 1, 0, 1}));
  EXPECT_EQ(s.waitOn, (std::vector<size_t>{none, 0, none, 1, none, 4, 2}));
  EXPECT_EQ(s.waits, 4u);
  EXPECT_EQ(s.communicationSteps, 3u);
  // What each comm step may run beside: step 1, compute step 2 (3 waits for it); step 4,
  // compute steps 2 and 3 enqueued before it (its stream waited only for step 0), 5 waits;
  // step 6 (waited for 2), compute steps 3 and 5.
  EXPECT_EQ(s.overlap, (std::vector<size_t>{1, 2, 2}));
  EXPECT_EQ(s.describe(), "3 of 7 steps on the communication stream, 4 waits between the streams; "
                          "overlap (compute steps) min 1, median 2, max 2");
}

TEST(StreamSchedule, AnEarlierWaitCoversLaterConflicts) {
  // Comm step 2 waits for compute step 1, which covers compute step 0 as well: comm step 3,
  // reading what step 0 wrote, needs no wait of its own. Disjoint regions never conflict.
  const ByteRange A{0, 0, 8}, B{0, 8, 16}, other{1, 0, 16};
  StreamSchedule s = planStreams({access({}, {A}, 0), access({}, {B}, 0), access({B}, {other}, 1),
                                  access({A}, {}, 1), access({other}, {}, 0)});
  const size_t none = StreamSchedule::kNone;
  EXPECT_EQ(s.waitOn, (std::vector<size_t>{none, none, 1, none, 2}));
}

// A sharded artifact on in-process ranks: the CPU one-stream run, or StreamSimBackend under
// `policy` with the deferred communicator (optionally without the planned waits).
struct RankResults {
  std::vector<std::vector<HostTensor>> outputs;
  std::vector<std::string> errors;
  std::string schedule; // rank 0's, described
};

RankResults runOnRanks(const Artifact &a, const std::vector<HostTensor> &inputs, bool streams,
                       StreamSimBackend::Policy policy = StreamSimBackend::Policy::CommunicationLate,
                       uint32_t seed = 1, bool dropWaits = false) {
  const int64_t n = a.deviceMesh.worldSize();
  auto world = std::make_shared<LocalWorld>(a.deviceMesh);
  RankResults r;
  r.outputs.resize(size_t(n));
  r.errors.resize(size_t(n));
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < n; ++rank)
    threads.emplace_back([&, rank] {
      std::string &err = r.errors[size_t(rank)];
      std::unique_ptr<Communicator> comm;
      if (streams)
        comm = std::make_unique<DeferredCommunicator>(world, rank);
      else
        comm = std::make_unique<LocalCommunicator>(world, rank);
      comm->setTimeout(std::chrono::seconds(60));
      CpuBackend cpu;
      StreamSimBackend sim(policy, seed + uint32_t(rank));
      Backend &backend = streams ? static_cast<Backend &>(sim) : cpu;
      std::unique_ptr<Executor> ex;
      err = Executor::create(a, backend, *comm, ex);
      if (err.empty() && streams && !ex->streamSchedule())
        err = "no two-stream schedule";
      if (err.empty() && streams && dropWaits)
        ex->dropStreamWaitsForTest();
      if (err.empty() && rank == 0 && streams)
        r.schedule = ex->streamSchedule()->describe();
      // Two runs: the second replays (offered for capture), with the arena as the first left it.
      for (int run = 0; run < 2 && err.empty(); ++run)
        err = ex->run(inputs, r.outputs[size_t(rank)]);
      if (!err.empty())
        world->abort(rank, err);
    });
  for (auto &t : threads)
    t.join();
  return r;
}

// "" when every rank's outputs are the reference's bit for bit, else the first difference.
std::string sameBits(const RankResults &got, const RankResults &want) {
  for (size_t r = 0; r < want.outputs.size(); ++r) {
    if (!got.errors[r].empty())
      return "rank " + std::to_string(r) + ": " + got.errors[r];
    for (size_t k = 0; k < want.outputs[r].size(); ++k)
      if (k >= got.outputs[r].size() || got.outputs[r][k].data != want.outputs[r][k].data)
        return "rank " + std::to_string(r) + " output " + std::to_string(k) + " differs";
  }
  return "";
}

const StreamSimBackend::Policy kPolicies[] = {StreamSimBackend::Policy::CommunicationLate,
                                              StreamSimBackend::Policy::CommunicationEarly,
                                              StreamSimBackend::Policy::Random};

// Runs every policy (and random seeds) against the CPU; then without the waits, which must
// change some result. "" or what went wrong.
std::string checkArtifact(const Artifact &a, const std::vector<HostTensor> &inputs, std::string &schedule) {
  RankResults reference = runOnRanks(a, inputs, false);
  for (const std::string &e : reference.errors)
    if (!e.empty())
      return "the CPU run failed: " + e;
  for (auto policy : kPolicies)
    for (uint32_t seed = 1; seed <= (policy == StreamSimBackend::Policy::Random ? 4u : 1u); ++seed) {
      RankResults streams = runOnRanks(a, inputs, true, policy, seed);
      if (std::string d = sameBits(streams, reference); !d.empty())
        return "policy " + std::to_string(int(policy)) + " seed " + std::to_string(seed) + ": " + d;
      schedule = streams.schedule;
    }
  bool differs = false;
  for (auto policy : kPolicies) {
    RankResults unsafe = runOnRanks(a, inputs, true, policy, 7, /*dropWaits=*/true);
    differs |= !sameBits(unsafe, reference).empty();
  }
  return differs ? "" : "dropping the schedule's waits changed nothing: the test could not fail";
}

TEST(StreamSchedule, TensorAndDataParallelMlpMatchesOneStreamBitForBit) {
  for (auto [dp, tp] : {std::pair<int64_t, int64_t>{2, 2}, {1, 2}, {2, 1}}) {
    fixtures::TpMlpArtifact t = fixtures::makeTpMlpArtifact(dp, tp);
    TempDir dir;
    std::ofstream(dir.file("w.bin"), std::ios::binary) << t.weights;
    Artifact a;
    ASSERT_EQ(parseArtifact(encodeJsonArtifact(t.manifest, ""), dir.file("m.shardc"), a), "");
    std::string schedule;
    EXPECT_EQ(checkArtifact(a, t.inputs, schedule), "") << dp << "x" << tp;
    EXPECT_NE(schedule.find("on the communication stream"), std::string::npos) << schedule;
  }
}

} // namespace

// With --artifact and --inputs: the same check on a compiled artifact (e2e.streams.*);
// otherwise the gtest suite.
int main(int argc, char **argv) {
  std::string artifact, inputs;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--artifact")
      artifact = argv[i + 1];
    if (std::string(argv[i]) == "--inputs")
      inputs = argv[i + 1];
  }
  if (artifact.empty()) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
  }
  Artifact a;
  std::vector<HostTensor> in;
  std::string err = loadArtifact(artifact, a);
  if (err.empty())
    err = readNpz(inputs, in);
  std::string schedule;
  if (err.empty())
    err = checkArtifact(a, in, schedule);
  if (!err.empty()) {
    std::fprintf(stderr, "FAIL %s: %s\n", artifact.c_str(), err.c_str());
    return 1;
  }
  std::printf("PASS %s: bit-identical to one stream under every policy; without the waits the results change\n"
              "schedule (rank 0): %s\n",
              artifact.c_str(), schedule.c_str());
  // With --waits: each communication step, what it waits for and what it may run beside.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--waits") {
      CpuBackend cpu;
      StreamSimBackend sim(StreamSimBackend::Policy::CommunicationLate);
      auto world = std::make_shared<LocalWorld>(a.deviceMesh);
      DeferredCommunicator comm(world, 0);
      std::unique_ptr<Executor> ex;
      if (Executor::create(a, sim, comm, ex).empty() && ex->streamSchedule()) {
        const StreamSchedule &s = *ex->streamSchedule();
        size_t k = 0;
        for (size_t j = 0; j < s.stream.size(); ++j) {
          if (s.stream[j] != 1)
            continue;
          std::string w = s.waitOn[j] == StreamSchedule::kNone ? "nothing"
                                                                : "step " + std::to_string(s.waitOn[j]) + " (" +
                                                                      a.steps[s.waitOn[j]].op + ")";
          std::printf("  step %zu (%s) waits for %s; beside %zu compute steps\n", j, a.steps[j].op.c_str(),
                      w.c_str(), s.overlap[k++]);
        }
      }
    }
  return 0;
}
