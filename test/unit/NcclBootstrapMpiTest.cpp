// The MPI path of the NCCL bootstrap under mpirun -np 3 (ctest unit.mpi.nccl_bootstrap): ranks
// and local ranks from MPI, rank 0's blob on every rank, rank 0's failure reaching the others.
#include "shardc/comm/MpiCommunicator.h"
#include "shardc/comm/NcclBootstrap.h"

#include <gtest/gtest.h>

#include <cstdio>

using namespace shardc::rt;

namespace {

int64_t gRank = 0, gSize = 0;

std::vector<uint8_t> rankZerosBlob() {
  std::vector<uint8_t> blob(128);
  for (size_t i = 0; i < blob.size(); ++i)
    blob[i] = static_cast<uint8_t>(255 - i);
  return blob;
}

TEST(NcclBootstrapMpi, EveryRankGetsRankZerosBlob) {
  int made = 0;
  BlobMaker make = [&](std::vector<uint8_t> &blob) {
    ++made;
    blob = rankZerosBlob();
    return std::string();
  };
  NcclBootstrap boot;
  // bootstrap() picks MPI: mpirun set OMPI_COMM_WORLD_SIZE.
  ASSERT_EQ(bootstrap(make, std::chrono::seconds(20), boot), "");
  EXPECT_EQ(boot.launcher, "mpi");
  EXPECT_EQ(boot.rank, gRank);
  EXPECT_EQ(boot.worldSize, gSize);
  EXPECT_EQ(boot.localRank, gRank); // one host
  EXPECT_EQ(boot.uniqueId, rankZerosBlob());
  EXPECT_EQ(made, gRank == 0 ? 1 : 0);
}

TEST(NcclBootstrapMpi, RankZerosFailureReachesTheOthers) {
  BlobMaker fails = [](std::vector<uint8_t> &) { return std::string("no unique id today"); };
  NcclBootstrap boot;
  std::string err = bootstrapFromMpi(fails, std::chrono::seconds(20), boot);
  EXPECT_EQ(err, gRank == 0 ? "no unique id today"
                            : "rank 0 failed to make the NCCL unique id (see its error)");
}

} // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (std::string err = initMpi(gRank, gSize); !err.empty()) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return 1;
  }
  if (gRank != 0) {
    auto &listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  finalizeMpi(std::chrono::seconds(20));
  return rc;
}
