// The MPI communicator under mpirun -np 4 (ctest unit.mpi.communicator): every collective on
// a 2x2 mesh against serial references (bit for bit, as the local communicator), the sharded
// executor end to end, and a timeout that names the late rank.
#include "TpMlpArtifact.h"

#include "ManifestJson.h"
#include "AllToAllVCheck.h"
#include "shardc/comm/MpiCommunicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Executor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <thread>
#include <unistd.h>

using namespace shardc::rt;

namespace {

int64_t gRank = 0, gSize = 0;

DeviceMesh mesh2x2() {
  return DeviceMesh({{"dp_replicate", 1}, {"dp_shard", 2}, {"cp", 1}, {"tp", 2}});
}

float valueOf(int64_t rank, int64_t i) {
  return static_cast<float>(std::pow(10.0, double((rank * 3 + i) % 7) - 3)) *
         ((rank + i) % 3 == 0 ? -1.0f : 1.0f);
}

std::unique_ptr<MpiCommunicator> communicator() {
  std::unique_ptr<MpiCommunicator> comm;
  EXPECT_EQ(MpiCommunicator::create(mesh2x2(), comm), "");
  comm->setTimeout(std::chrono::seconds(20));
  return comm;
}

const std::vector<std::vector<std::string>> kGroups = {
    {"tp"}, {"dp_shard"}, {"dp_shard", "tp"}, {"tp", "dp_shard"}, {}};

TEST(MpiCommunicator, AllReduceIsDeterministicInGroupIndexOrder) {
  ASSERT_EQ(gSize, 4) << "run under mpirun -np 4";
  auto comm = communicator();
  for (const auto &axes : kGroups) {
    const CommGroup *g = nullptr;
    ASSERT_EQ(comm->group(axes, g), "");
    ASSERT_EQ(g->ranks, comm->mesh().groupRanks(gRank, axes));
    constexpr int64_t count = 13; // not a multiple of the group size
    std::vector<float> in(count), sum(count), max(count);
    for (int64_t i = 0; i < count; ++i)
      in[i] = valueOf(gRank, i);
    ASSERT_EQ(comm->allReduce(*g, in.data(), sum.data(), count, DType::F32, ReduceOp::Sum), "");
    ASSERT_EQ(comm->allReduce(*g, in.data(), max.data(), count, DType::F32, ReduceOp::Max), "");
    for (int64_t i = 0; i < count; ++i) {
      float s = valueOf(g->ranks[0], i), m = s;
      for (size_t j = 1; j < g->ranks.size(); ++j) {
        s += valueOf(g->ranks[j], i);
        m = std::max(m, valueOf(g->ranks[j], i));
      }
      EXPECT_EQ(std::memcmp(&s, &sum[i], 4), 0) << axesString(axes) << " element " << i;
      EXPECT_EQ(max[i], m);
    }
    uint16_t bf = f32ToBf16(g->index == 0 ? 256.0f : 1.0f), bfOut = 0;
    ASSERT_EQ(comm->allReduce(*g, &bf, &bfOut, 1, DType::BF16, ReduceOp::Sum), "");
    // Reduced in f32, rounded once: 257 ties to even (256), 259 rounds to 260.
    float want = g->size() == 4 ? 260.0f : 256.0f;
    EXPECT_EQ(bf16ToF32(bfOut), want) << axesString(axes);
  }
}

TEST(MpiCommunicator, GatherScatterAllToAllAndBarrier) {
  auto comm = communicator();
  for (const auto &axes : kGroups) {
    const CommGroup *g = nullptr;
    ASSERT_EQ(comm->group(axes, g), "");
    const int64_t n = g->size(), count = 3;
    std::vector<int64_t> mine(count), gathered(n * count);
    for (int64_t i = 0; i < count; ++i)
      mine[i] = gRank * 100 + i;
    ASSERT_EQ(comm->allGather(*g, mine.data(), gathered.data(), count, DType::I64), "");
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < count; ++i)
        EXPECT_EQ(gathered[j * count + i], g->ranks[j] * 100 + i);
    std::vector<float> in(n * count), scattered(count), exchanged(n * count);
    for (int64_t i = 0; i < n * count; ++i)
      in[i] = valueOf(gRank, i);
    ASSERT_EQ(comm->reduceScatter(*g, in.data(), scattered.data(), count, DType::F32, ReduceOp::Sum), "");
    for (int64_t i = 0; i < count; ++i) {
      float s = valueOf(g->ranks[0], g->index * count + i);
      for (int64_t j = 1; j < n; ++j)
        s += valueOf(g->ranks[j], g->index * count + i);
      EXPECT_EQ(std::memcmp(&s, &scattered[i], 4), 0);
    }
    ASSERT_EQ(comm->allToAll(*g, in.data(), exchanged.data(), count, DType::F32), "");
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < count; ++i)
        EXPECT_EQ(exchanged[j * count + i], valueOf(g->ranks[j], g->index * count + i));
    ASSERT_EQ(comm->barrier(*g), "");
  }
}

TEST(MpiCommunicator, AllToAllVExchangesChunksOfEachMembersSize) {
  auto comm = communicator();
  ASSERT_TRUE(comm);
  for (const std::vector<std::string> &axes : kGroups) {
    const CommGroup *g = nullptr;
    ASSERT_EQ(comm->group(axes, g), "");
    EXPECT_EQ(commtest::checkAllToAllV(*comm, *g), "");
  }
}

TEST(MpiCommunicator, ShardedExecutorMatchesTheReference) {
  fixtures::TpMlpArtifact t = fixtures::makeTpMlpArtifact(2, 2);
  // Each rank writes its own copy of the weights: no shared directory is assumed.
  std::string dir = "/tmp/shardc-mpi-test-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  std::ofstream(dir + "/w.bin", std::ios::binary) << t.weights;
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(t.manifest, ""), dir + "/m.shardc", a), "");
  auto comm = communicator();
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(a, cpu, *comm, ex), "");
  std::vector<HostTensor> outputs;
  ASSERT_EQ(ex->run(t.inputs, outputs), "");
  EXPECT_EQ(fixtures::compareTensors(outputs, t.expected, 1e-5), "");
  std::system(("rm -rf " + dir).c_str());
}

TEST(MpiCommunicator, TimeoutNamesTheLateRank) {
  auto comm = communicator();
  comm->setTimeout(std::chrono::milliseconds(500));
  const CommGroup *g = nullptr, *world = nullptr;
  ASSERT_EQ(comm->group({"tp"}, g), "");
  ASSERT_EQ(comm->group({"dp_shard", "tp"}, world), "");
  if (gRank == 3) // late, not absent, so that the job can still finish cleanly
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::string err = comm->barrier(*g);
  if (gRank == 2)
    EXPECT_EQ(err, "timed out after 500ms on group [tp] (ranks 2,3): rank 3 did not arrive");
  else
    EXPECT_EQ(err, "");
  comm->setTimeout(std::chrono::seconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(gRank == 2 ? 1500 : 0));
}

} // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (std::string err = initMpi(gRank, gSize); !err.empty()) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return 1;
  }
  // Only rank 0 reports progress; every rank's failures still print.
  if (gRank != 0) {
    auto &listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  int all = rc;
  finalizeMpi(std::chrono::seconds(20));
  return all;
}
