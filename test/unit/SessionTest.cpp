// The runtime's library API (shardc/runtime/Session.h): open + run a one-rank artifact, bind
// one session per rank over a LocalWorld, timed runs and profiles, and the error lines.
#include "TempDir.h"
#include "TpMlpArtifact.h"

#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Npz.h"
#include "shardc/runtime/Session.h"

#include <gtest/gtest.h>

#include <thread>

using namespace shardc::rt;
using shardc::rt::fixtures::compareTensors;
using shardc::rt::fixtures::writeTpMlpArtifact;

TEST(Session, OpensAndRunsOneRank) {
  TempDir dir;
  ASSERT_EQ(writeTpMlpArtifact(dir.path(), 1, 1), "");
  std::unique_ptr<Session> s;
  ASSERT_EQ(Session::open(dir.file("m.shardc"), {}, s), "");
  EXPECT_EQ(s->rank(), 0);
  EXPECT_EQ(s->worldSize(), 1);
  std::vector<HostTensor> inputs, expected, outputs;
  ASSERT_EQ(readInputsNpz(s->artifact(), dir.file("in.npz"), inputs), "");
  ASSERT_EQ(readNpz(dir.file("expected.npz"), expected), "");
  ASSERT_EQ(s->run(inputs, outputs), "");
  EXPECT_EQ(compareTensors(outputs, expected, 1e-5), "");
  EXPECT_GT(s->arenaPeakBytes(), 0u);
  EXPECT_EQ(s->streams(), ""); // the CPU backend runs one stream

  // Timed runs: one more untimed run first (where a GPU records its graph), then three timed
  // ones; the outputs are copied out once, after them, and are the same.
  std::vector<double> ms;
  outputs.clear();
  ASSERT_EQ(s->runTimed(inputs, outputs, 3, ms), "");
  ASSERT_EQ(ms.size(), 3u);
  for (double m : ms)
    EXPECT_GE(m, 0.0);
  EXPECT_EQ(s->executor().runCount(), 5u);
  EXPECT_EQ(compareTensors(outputs, expected, 1e-5), "");
  s->setProfiling(true);
  ASSERT_EQ(s->run(inputs, outputs), "");
  EXPECT_EQ(s->profiledRuns(), 1u);
  EXPECT_EQ(s->stepMilliseconds().size(), s->artifact().steps.size());

  // writeOutputsNpz round-trips.
  ASSERT_EQ(writeOutputsNpz(dir.file("out.npz"), outputs), "");
  std::vector<HostTensor> back;
  ASSERT_EQ(readNpz(dir.file("out.npz"), back), "");
  EXPECT_EQ(compareTensors(back, expected, 1e-5), "");
}

TEST(Session, OpenRefusesAShardedArtifactAndBadInputs) {
  TempDir dir;
  ASSERT_EQ(writeTpMlpArtifact(dir.path(), 1, 2), "");
  std::unique_ptr<Session> s;
  std::string err = Session::open(dir.file("m.shardc"), {}, s);
  EXPECT_NE(err.find("compiled for 2 ranks"), std::string::npos) << err;
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(Session::open(dir.file("missing.shardc"), {}, s), "");

  TempDir one;
  ASSERT_EQ(writeTpMlpArtifact(one.path(), 1, 1), "");
  ASSERT_EQ(Session::open(one.file("m.shardc"), {}, s), "");
  std::vector<HostTensor> outputs, wrong;
  EXPECT_NE(s->run({}, outputs), ""); // the input x is missing
  // expected.npz holds y, not x: the file is named with the mismatch.
  err = readInputsNpz(s->artifact(), one.file("expected.npz"), wrong);
  EXPECT_EQ(err.rfind(one.file("expected.npz") + ": ", 0), 0u) << err;

  SessionOptions bad;
  bad.backend = "tpu";
  EXPECT_NE(Session::open(one.file("m.shardc"), bad, s).find("unknown backend 'tpu'"), std::string::npos);
}

TEST(Session, BindsOneSessionPerRank) {
  TempDir dir;
  ASSERT_EQ(writeTpMlpArtifact(dir.path(), 2, 2), "");
  Artifact artifact;
  ASSERT_EQ(loadArtifact(dir.file("m.shardc"), artifact), "");
  std::vector<HostTensor> inputs, expected;
  ASSERT_EQ(readNpz(dir.file("in.npz"), inputs), "");
  ASSERT_EQ(readNpz(dir.file("expected.npz"), expected), "");
  auto world = std::make_shared<LocalWorld>(artifact.deviceMesh);
  std::vector<std::string> errors(4);
  std::vector<std::vector<HostTensor>> outputs(4);
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < 4; ++r)
    threads.emplace_back([&, r] {
      LocalCommunicator comm(world, r);
      std::unique_ptr<Session> s;
      errors[r] = Session::bind(artifact, comm, {}, s);
      if (errors[r].empty())
        errors[r] = s->run(inputs, outputs[r]);
    });
  for (std::thread &t : threads)
    t.join();
  for (int64_t r = 0; r < 4; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(compareTensors(outputs[r], expected, 1e-5), "") << "rank " << r;
  }
}
