// Unit tests of multi-rank execution on the local communicator: mesh arithmetic, every
// collective on 1-D and 2-D meshes against serial references, shard specs (weights, inputs),
// an end-to-end TP artifact, and timeouts that name the missing rank and the step.
#include "AllToAllVCheck.h"
#include "TempDir.h"
#include "DeviceSimBackend.h"
#include "TpMlpArtifact.h"

#include "ManifestJson.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/Json.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unistd.h>

using namespace shardc::rt;

namespace {

DeviceMesh mesh2d(int64_t dp, int64_t tp) {
  return DeviceMesh({{"dp_replicate", 1}, {"dp_shard", dp}, {"cp", 1}, {"tp", tp}});
}

// Runs fn(comm) on one thread per rank of `mesh`; returns each rank's error ("" when fine).
std::vector<std::string> onRanks(const DeviceMesh &mesh,
                                 const std::function<std::string(LocalCommunicator &)> &fn,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto world = std::make_shared<LocalWorld>(mesh);
  std::vector<std::string> errors(static_cast<size_t>(mesh.worldSize()));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < mesh.worldSize(); ++r)
    threads.emplace_back([&, r] {
      LocalCommunicator comm(world, r);
      comm.setTimeout(timeout);
      errors[static_cast<size_t>(r)] = fn(comm);
    });
  for (auto &t : threads)
    t.join();
  return errors;
}

void expectAllOk(const std::vector<std::string> &errors) {
  for (size_t r = 0; r < errors.size(); ++r)
    EXPECT_EQ(errors[r], "") << "rank " << r;
}

// A value that differs per rank and element and whose float sums depend on order.
float valueOf(int64_t rank, int64_t i) {
  return static_cast<float>(std::pow(10.0, double((rank * 3 + i) % 7) - 3)) *
         ((rank + i) % 3 == 0 ? -1.0f : 1.0f);
}

// ---------------------------------------------------------------------------------------
// Mesh arithmetic

TEST(DeviceMesh, CoordinatesGroupsAndIndexOrder) {
  DeviceMesh m = mesh2d(2, 2);
  EXPECT_EQ(m.worldSize(), 4);
  EXPECT_EQ(m.coords(3), (std::vector<int64_t>{0, 1, 0, 1})); // dp_shard 1, tp 1 (the doc's example)
  EXPECT_EQ(m.coords(2), (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_EQ(m.rankOf({0, 1, 0, 1}), 3);
  EXPECT_EQ(m.groupRanks(2, {"tp"}), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(m.groupRanks(3, {"dp_shard"}), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(m.groupRanks(1, {"dp_shard", "tp"}), (std::vector<int64_t>{0, 1, 2, 3}));
  // The order of `axes` is the order of the group index: tp outermost here.
  EXPECT_EQ(m.groupRanks(1, {"tp", "dp_shard"}), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(m.groupIndex(1, {"tp", "dp_shard"}), 2);
  EXPECT_EQ(m.groupIndex(1, {"dp_shard", "tp"}), 1);
  EXPECT_EQ(m.groupRanks(2, {}), (std::vector<int64_t>{2}));
  EXPECT_EQ(m.describeRank(3), "dp_shard=1 tp=1");
  EXPECT_EQ(m.checkAxes({"tp", "ep"}),
            "unknown mesh axis 'ep' (the mesh has dp_replicate, dp_shard, cp, tp)");
  EXPECT_EQ(m.checkAxes({"tp", "tp"}), "mesh axis 'tp' is listed twice");
}

TEST(Communicator, ParsesDurations) {
  EXPECT_EQ(parseDuration("10s")->count(), 10000);
  EXPECT_EQ(parseDuration("500ms")->count(), 500);
  EXPECT_EQ(parseDuration("2m")->count(), 120000);
  EXPECT_EQ(parseDuration("1.5")->count(), 1500);
  EXPECT_FALSE(parseDuration("ten"));
  EXPECT_FALSE(parseDuration("0s"));
  EXPECT_FALSE(parseDuration("5x"));
  EXPECT_EQ(formatDuration(std::chrono::milliseconds(2000)), "2s");
  EXPECT_EQ(formatDuration(std::chrono::milliseconds(1500)), "1.5s");
  EXPECT_EQ(formatDuration(std::chrono::milliseconds(250)), "250ms");
}

// ---------------------------------------------------------------------------------------
// Collectives on the local communicator, against serial references

struct GroupCase {
  DeviceMesh mesh;
  std::vector<std::string> axes;
};

std::vector<GroupCase> groupCases() {
  return {{mesh2d(1, 4), {"tp"}},         {mesh2d(2, 3), {"tp"}},
          {mesh2d(2, 3), {"dp_shard"}},   {mesh2d(2, 3), {"dp_shard", "tp"}},
          {mesh2d(2, 3), {"tp", "dp_shard"}}, {mesh2d(2, 2), {}}};
}

TEST(LocalCommunicator, AllReduceSumAndMaxInGroupIndexOrder) {
  for (const GroupCase &c : groupCases()) {
    constexpr int64_t count = 13;
    expectAllOk(onRanks(c.mesh, [&](LocalCommunicator &comm) -> std::string {
      const CommGroup *g = nullptr;
      if (std::string err = comm.group(c.axes, g); !err.empty())
        return err;
      std::vector<float> in(count), sum(count), max(count);
      for (int64_t i = 0; i < count; ++i)
        in[i] = valueOf(comm.rank(), i);
      if (std::string err = comm.allReduce(*g, in.data(), sum.data(), count, DType::F32, ReduceOp::Sum);
          !err.empty())
        return err;
      if (std::string err = comm.allReduce(*g, in.data(), max.data(), count, DType::F32, ReduceOp::Max);
          !err.empty())
        return err;
      for (int64_t i = 0; i < count; ++i) {
        float s = valueOf(g->ranks[0], i), m = s; // serial, in group-index order
        for (size_t j = 1; j < g->ranks.size(); ++j) {
          s += valueOf(g->ranks[j], i);
          m = std::max(m, valueOf(g->ranks[j], i));
        }
        if (std::memcmp(&s, &sum[i], 4) != 0 || m != max[i])
          return "element " + std::to_string(i) + ": sum " + std::to_string(sum[i]) + " vs " +
                 std::to_string(s) + ", max " + std::to_string(max[i]) + " vs " + std::to_string(m);
      }
      // In place, as a planner that reuses bytes may ask.
      if (std::string err = comm.allReduce(*g, in.data(), in.data(), count, DType::F32, ReduceOp::Sum);
          !err.empty())
        return err;
      return std::memcmp(in.data(), sum.data(), count * 4) == 0 ? "" : "in-place sum differs";
    }));
  }
}

TEST(LocalCommunicator, AllReduceHalfTypesInF32AndInt64) {
  expectAllOk(onRanks(mesh2d(1, 4), [&](LocalCommunicator &comm) -> std::string {
    const CommGroup *g = nullptr;
    if (std::string err = comm.group({"tp"}, g); !err.empty())
      return err;
    // bf16: 256 + 1 + 1 + 1 would lose every 1 if rounded per step; reduced in f32 it is 259,
    // which rounds once to 260 in bf16 (8 bits of mantissa).
    uint16_t bf = f32ToBf16(comm.rank() == 0 ? 256.0f : 1.0f), bfOut = 0;
    uint16_t hf = f32ToF16(comm.rank() == 0 ? 2048.0f : 1.0f), hfOut = 0;
    int64_t big = (int64_t(1) << 40) + comm.rank(), bigOut = 0;
    std::string err = comm.allReduce(*g, &bf, &bfOut, 1, DType::BF16, ReduceOp::Sum);
    if (err.empty())
      err = comm.allReduce(*g, &hf, &hfOut, 1, DType::F16, ReduceOp::Sum);
    if (err.empty())
      err = comm.allReduce(*g, &big, &bigOut, 1, DType::I64, ReduceOp::Sum);
    if (!err.empty())
      return err;
    if (bf16ToF32(bfOut) != 260.0f)
      return "bf16 sum " + std::to_string(bf16ToF32(bfOut));
    if (f16ToF32(hfOut) != 2052.0f) // 2051 rounds to even in f16 (spacing 2)
      return "f16 sum " + std::to_string(f16ToF32(hfOut));
    if (bigOut != 4 * (int64_t(1) << 40) + 6)
      return "i64 sum " + std::to_string(bigOut);
    uint8_t u = 1, uo = 0;
    err = comm.allReduce(*g, &u, &uo, 1, DType::U8, ReduceOp::Sum);
    return err == "all_reduce of u8 is not supported (f32, f64, bf16, f16, i64, i32)" ? "" : err;
  }));
}

TEST(LocalCommunicator, AllGatherReduceScatterAllToAllAndBarrier) {
  for (const GroupCase &c : groupCases()) {
    constexpr int64_t count = 3;
    expectAllOk(onRanks(c.mesh, [&](LocalCommunicator &comm) -> std::string {
      const CommGroup *g = nullptr;
      if (std::string err = comm.group(c.axes, g); !err.empty())
        return err;
      const int64_t n = g->size();
      if (g->ranks != c.mesh.groupRanks(comm.rank(), c.axes) || g->ranks[g->index] != comm.rank())
        return "wrong group membership";
      // all_gather: chunk j is member j's input.
      std::vector<int64_t> mine(count), gathered(n * count);
      for (int64_t i = 0; i < count; ++i)
        mine[i] = comm.rank() * 100 + i;
      if (std::string err = comm.allGather(*g, mine.data(), gathered.data(), count, DType::I64);
          !err.empty())
        return err;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < count; ++i)
          if (gathered[j * count + i] != g->ranks[j] * 100 + i)
            return "all_gather chunk " + std::to_string(j);
      // reduce_scatter: chunk `index` of the sum; all_to_all: chunk j from member j.
      std::vector<float> in(n * count), scattered(count), exchanged(n * count);
      for (int64_t i = 0; i < n * count; ++i)
        in[i] = valueOf(comm.rank(), i);
      if (std::string err = comm.reduceScatter(*g, in.data(), scattered.data(), count, DType::F32,
                                               ReduceOp::Sum);
          !err.empty())
        return err;
      for (int64_t i = 0; i < count; ++i) {
        float s = valueOf(g->ranks[0], g->index * count + i);
        for (int64_t j = 1; j < n; ++j)
          s += valueOf(g->ranks[j], g->index * count + i);
        if (std::memcmp(&s, &scattered[i], 4) != 0)
          return "reduce_scatter element " + std::to_string(i);
      }
      if (std::string err = comm.allToAll(*g, in.data(), exchanged.data(), count, DType::F32);
          !err.empty())
        return err;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < count; ++i)
          if (exchanged[j * count + i] != valueOf(g->ranks[j], g->index * count + i))
            return "all_to_all chunk " + std::to_string(j);
      return comm.barrier(*g);
    }));
  }
}

// The step kinds on dims other than the outermost (pack and unpack around the collective).
// Expert parallelism's dispatch: counts, then chunks of those sizes, on every group of a 2x3
// mesh (zero-sized chunks included); a member that expects a different count gets an error
// naming the sender.
TEST(LocalCommunicator, AllToAllVExchangesChunksOfEachMembersSize) {
  for (std::vector<std::string> axes : {std::vector<std::string>{"tp"}, {"dp_shard"}, {"dp_shard", "tp"}, {"tp", "dp_shard"}})
    expectAllOk(onRanks(mesh2d(2, 3), [&](LocalCommunicator &comm) -> std::string {
      const CommGroup *g = nullptr;
      if (std::string err = comm.group(axes, g); !err.empty())
        return err;
      return commtest::checkAllToAllV(comm, *g);
    }));
  auto errors = onRanks(mesh2d(1, 2), [&](LocalCommunicator &comm) -> std::string {
    const CommGroup *g = nullptr;
    if (std::string err = comm.group({"tp"}, g); !err.empty())
      return err;
    std::vector<int64_t> send{1, 1}, recv{1, comm.rank() == 0 ? 2 : 1};
    std::vector<float> in(2, 1.0f), out(3);
    return comm.allToAllV(*g, in.data(), send.data(), out.data(), recv.data(), DType::F32);
  });
  EXPECT_EQ(errors[0], "all_to_all_v on group [tp] (ranks 0,1): rank 1 sends 1 elements to rank 0, which expects 2");
  EXPECT_EQ(errors[1], "");
}

TEST(CollectiveKernels, StepsAlongInnerDims) {
  DeviceMesh mesh = mesh2d(1, 2);
  auto run = [&](const char *op, const Attrs &attrs, std::vector<int64_t> inShape,
                 std::vector<int64_t> outShape) {
    std::vector<std::vector<float>> outs(2);
    expectAllOk(onRanks(mesh, [&](LocalCommunicator &comm) -> std::string {
      const CommGroup *g = nullptr;
      if (std::string err = comm.group({"tp"}, g); !err.empty())
        return err;
      TensorView in{nullptr, DType::F32, inShape}, out{nullptr, DType::F32, outShape};
      std::vector<float> x(static_cast<size_t>(in.numel()));
      for (size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(comm.rank() * 100 + static_cast<int64_t>(i));
      std::vector<float> &y = outs[static_cast<size_t>(comm.rank())];
      y.assign(static_cast<size_t>(out.numel()), -1);
      in.data = x.data();
      out.data = y.data();
      const CollectiveKernel *k = lookupCollectiveKernel(op);
      uint64_t scratchBytes = 0;
      if (std::string err = k->check(in, out, attrs, 2, scratchBytes); !err.empty())
        return err;
      MemoryBlock scratch = MemoryBlock::allocateHost(scratchBytes);
      return k->run(CollectiveArgs{in, out, &attrs, &comm, g, scratch.data()});
    }));
    return outs;
  };
  Attrs dim1;
  dim1.set("dim", int64_t(1));
  // x [2, 2] per rank: rank r holds r*100 + {0, 1, 2, 3}.
  auto gathered = run("all_gather", dim1, {2, 2}, {2, 4});
  EXPECT_EQ(gathered[0], (std::vector<float>{0, 1, 100, 101, 2, 3, 102, 103}));
  EXPECT_EQ(gathered[1], gathered[0]);
  auto scattered = run("reduce_scatter", dim1, {2, 2}, {2, 1});
  EXPECT_EQ(scattered[0], (std::vector<float>{100, 104})); // column 0 of x0 + x1
  EXPECT_EQ(scattered[1], (std::vector<float>{102, 106}));
  Attrs a2a;
  a2a.set("split_dim", int64_t(1));
  a2a.set("concat_dim", int64_t(0));
  // Split columns, concatenate rows: rank j gets column j of every rank, stacked by rank.
  auto exchanged = run("all_to_all", a2a, {2, 2}, {4, 1});
  EXPECT_EQ(exchanged[0], (std::vector<float>{0, 2, 100, 102}));
  EXPECT_EQ(exchanged[1], (std::vector<float>{1, 3, 101, 103}));
}

// Expert parallelism's sub-axes: ep is the inner factor of dp_shard x cp, ep_shard the outer.
TEST(DeviceMesh, ExpertParallelSubAxes) {
  DeviceMesh m = mesh2d(4, 2); // rank = dp_shard * 2 + tp
  EXPECT_EQ(m.setExpertParallel(3), "ep = 3 does not divide dp_shard*cp = 4");
  EXPECT_EQ(m.checkAxes({"ep"}), "unknown mesh axis 'ep' (the mesh has dp_replicate, dp_shard, cp, tp)");
  ASSERT_EQ(m.setExpertParallel(2), "");
  EXPECT_EQ(m.worldSize(), 8);
  EXPECT_EQ(m.axisSize("ep"), 2);
  EXPECT_EQ(m.axisSize("ep_shard"), 2);
  EXPECT_EQ(m.groupRanks(1, {"ep"}), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(m.groupRanks(5, {"ep"}), (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(m.groupRanks(1, {"ep_shard"}), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(m.groupIndex(7, {"ep"}), 1);
  EXPECT_EQ(m.groupIndex(7, {"ep_shard"}), 1);
  EXPECT_EQ(m.groupRanks(2, {"ep_shard", "ep"}), (std::vector<int64_t>{0, 2, 4, 6}));
  EXPECT_EQ(m.groupSize({"ep", "tp"}), 4);
  EXPECT_EQ(m.checkAxes({"ep", "dp_shard"}), "mesh axis 'dp_shard' cannot be grouped with the ep sub-axes that split it");
  EXPECT_EQ(m.checkAxes({"ep", "tp"}), "");
}

// moe_dispatch sends each rank's rows to the ranks of their experts (counts first), and
// moe_combine brings them back: dispatch then combine of the received rows is the identity.
TEST(CollectiveKernels, MoeDispatchAndCombine) {
  DeviceMesh mesh = mesh2d(2, 1);
  ASSERT_EQ(mesh.setExpertParallel(2), "");
  // 3 rows of H = 2 per rank, E = 4 experts (2 per rank): rank 0 routes 1 row to expert 0 and 2
  // to expert 2, rank 1 one row each to experts 1, 2, 3.
  const std::vector<std::vector<int64_t>> counts{{1, 0, 2, 0}, {0, 1, 1, 1}};
  std::vector<std::vector<float>> recvs(2), backs(2);
  std::vector<std::vector<int64_t>> recvCounts(2);
  expectAllOk(onRanks(mesh, [&](LocalCommunicator &comm) -> std::string {
    const CommGroup *g = nullptr;
    if (std::string err = comm.group({"ep"}, g); !err.empty())
      return err;
    const size_t r = size_t(comm.rank());
    std::vector<float> rows(6);
    for (size_t i = 0; i < rows.size(); ++i)
      rows[i] = float(r * 100 + i);
    std::vector<int64_t> cnt = counts[r];
    recvs[r].assign(12, -1.0f);
    recvCounts[r].assign(4, -1);
    backs[r].assign(6, -1.0f);
    TensorView rowsV{rows.data(), DType::F32, {3, 2}}, cntV{cnt.data(), DType::I64, {4}};
    TensorView recvV{recvs[r].data(), DType::F32, {6, 2}}, rcV{recvCounts[r].data(), DType::I64, {4}};
    TensorView backV{backs[r].data(), DType::F32, {3, 2}};
    Attrs attrs;
    attrs.set("axes", std::vector<std::string>{"ep"});
    const CollectiveKernel *d = lookupCollectiveKernel("moe_dispatch"), *c = lookupCollectiveKernel("moe_combine");
    if (!d || !c || d->inputs != 2 || d->outputs != 2 || c->inputs != 3 || c->outputs != 1)
      return "moe_dispatch / moe_combine missing from the collective table";
    CollectiveArgs da{rowsV, recvV, &attrs, &comm, g, nullptr};
    da.ins = {rowsV, cntV};
    da.outs = {recvV, rcV};
    if (std::string err = d->run(da); !err.empty())
      return err;
    CollectiveArgs ca{recvV, backV, &attrs, &comm, g, nullptr};
    ca.ins = {recvV, rcV, cntV};
    ca.outs = {backV};
    return c->run(ca);
  }));
  EXPECT_EQ(recvCounts[0], (std::vector<int64_t>{1, 0, 0, 1})); // [source][local expert]
  EXPECT_EQ(recvCounts[1], (std::vector<int64_t>{2, 0, 1, 1}));
  EXPECT_EQ(std::vector<float>(recvs[0].begin(), recvs[0].begin() + 4), (std::vector<float>{0, 1, 100, 101}));
  EXPECT_EQ(std::vector<float>(recvs[1].begin(), recvs[1].begin() + 8),
            (std::vector<float>{2, 3, 4, 5, 102, 103, 104, 105}));
  EXPECT_EQ(backs[0], (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(backs[1], (std::vector<float>{100, 101, 102, 103, 104, 105}));
  EXPECT_EQ(moeTraffic(0).rowsPerLocalExpert, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(moeTraffic(1).rows, 1u); // rank 1 keeps its experts 2 and 3 rows, sends 1
}

TEST(LocalCommunicator, TimeoutNamesTheMissingRank) {
  auto start = std::chrono::steady_clock::now();
  auto errors = onRanks(
      mesh2d(1, 4),
      [&](LocalCommunicator &comm) -> std::string {
        const CommGroup *g = nullptr;
        if (std::string err = comm.group({"tp"}, g); !err.empty())
          return err;
        if (comm.rank() == 3)
          return "absent"; // never enters the collective
        float x = 1, y = 0;
        return comm.allReduce(*g, &x, &y, 1, DType::F32, ReduceOp::Sum);
      },
      std::chrono::milliseconds(300));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(errors[r], "timed out after 300ms on group [tp] (ranks 0,1,2,3): rank 3 did not arrive");
  EXPECT_LT(seconds, 0.6);
}

TEST(LocalCommunicator, AbortWakesWaitingPeers) {
  auto errors = onRanks(mesh2d(1, 3), [&](LocalCommunicator &comm) -> std::string {
    const CommGroup *g = nullptr;
    if (std::string err = comm.group({"tp"}, g); !err.empty())
      return err;
    if (comm.rank() == 1) {
      comm.abort("step 2 (matmul): bad shape");
      return "aborted";
    }
    return comm.barrier(*g);
  });
  EXPECT_EQ(errors[0], "rank 1 failed: step 2 (matmul): bad shape");
  EXPECT_EQ(errors[2], "rank 1 failed: step 2 (matmul): bad shape");
}

TEST(LocalCommunicator, MismatchedCollectivesAreReported) {
  auto errors = onRanks(mesh2d(1, 2), [&](LocalCommunicator &comm) -> std::string {
    const CommGroup *g = nullptr;
    if (std::string err = comm.group({"tp"}, g); !err.empty())
      return err;
    float x[2] = {1, 2}, y[4];
    return comm.rank() == 0 ? comm.allGather(*g, x, y, 2, DType::F32)
                            : comm.allReduce(*g, x, y, 2, DType::F32, ReduceOp::Sum);
  });
  // Whichever arrives second names both calls; the other learns it through the failure.
  std::string both = errors[0] + " | " + errors[1];
  EXPECT_NE(both.find("collective mismatch on group [tp] (ranks 0,1)"), std::string::npos) << both;
}

// ---------------------------------------------------------------------------------------
// Shard specs: loading, weight chunks, input chunks


void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A global [R, C] f32 weight holding 0, 1, 2, ... row-major, after 8 bytes of padding.
std::string weightBytes(int64_t rows, int64_t cols) {
  std::string bytes(8, '\0');
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = static_cast<float>(i);
    bytes.append(reinterpret_cast<const char *>(&v), 4);
  }
  return bytes;
}

// An artifact that copies its rank's chunk of weight w (global 4x8, split per `shardJson`) and
// of input x (global 4x8, same split) to two outputs.
std::string chunkManifest(const DeviceMesh &mesh, const std::string &shardJson,
                          const std::vector<int64_t> &local) {
  std::string axes, meshObj;
  for (const MeshAxis &a : mesh.axes()) {
    axes += std::string(axes.empty() ? "" : ", ") + "[\"" + a.name + "\", " +
            std::to_string(a.size) + "]";
    meshObj += std::string(meshObj.empty() ? "" : ", ") + "\"" + a.name + "\": " +
               std::to_string(a.size);
  }
  std::string shape = "[" + std::to_string(local[0]) + ", " + std::to_string(local[1]) + "]";
  return R"({"format_version": 4, "mesh": {)" + meshObj + R"(}, "mesh_axes": [)" + axes +
         R"(], "world_size": )" + std::to_string(mesh.worldSize()) +
         R"(, "weight_files": [{"path": "w.bin", "size": 136}], "arena_bytes": 512,
    "buffers": [
      {"id": 0, "dtype": "f32", "shape": )" + shape + R"(, "storage": "weight", "file": 0,
       "file_offset": 8, "shard": )" + shardJson + R"(, "global_shape": [4, 8]},
      {"id": 1, "dtype": "f32", "shape": )" + shape + R"(, "storage": "arena", "offset": 0},
      {"id": 2, "dtype": "f32", "shape": )" + shape + R"(, "storage": "arena", "offset": 128,
       "shard": )" + shardJson + R"(, "global_shape": [4, 8]},
      {"id": 3, "dtype": "f32", "shape": )" + shape + R"(, "storage": "arena", "offset": 256}],
    "inputs": [{"name": "x", "buffer": 2}],
    "outputs": [{"name": "w_chunk", "buffer": 1}, {"name": "x_chunk", "buffer": 3}],
    "steps": [{"op": "copy", "in": [0], "out": [1]}, {"op": "copy", "in": [2], "out": [3]}]})";
}

// Every rank's (weight chunk, input chunk), from executors made one after another.
std::vector<std::vector<float>> chunksOf(const DeviceMesh &mesh, const std::string &shardJson,
                                         const std::vector<int64_t> &local) {
  TempDir dir;
  writeFile(dir.file("w.bin"), weightBytes(4, 8));
  Artifact a;
  std::string manifest = chunkManifest(mesh, shardJson, local);
  EXPECT_EQ(parseArtifact(encodeJsonArtifact(manifest, ""), dir.file("m.shardc"), a), "");
  HostTensor x;
  x.name = "x";
  x.shape = {4, 8};
  for (int i = 0; i < 32; ++i) {
    float v = 1000.0f + static_cast<float>(i);
    x.data.insert(x.data.end(), reinterpret_cast<uint8_t *>(&v), reinterpret_cast<uint8_t *>(&v) + 4);
  }
  auto world = std::make_shared<LocalWorld>(mesh);
  std::vector<std::vector<float>> chunks;
  for (int64_t r = 0; r < mesh.worldSize(); ++r) {
    LocalCommunicator comm(world, r);
    CpuBackend cpu;
    std::unique_ptr<Executor> ex;
    EXPECT_EQ(Executor::create(a, cpu, comm, ex), "");
    if (!ex)
      return {};
    std::vector<HostTensor> outputs;
    EXPECT_EQ(ex->run({x}, outputs), "");
    const float *w = reinterpret_cast<const float *>(outputs[0].data.data());
    const float *xi = reinterpret_cast<const float *>(outputs[1].data.data());
    std::vector<float> both(w, w + outputs[0].numel());
    for (int64_t i = 0; i < outputs[1].numel(); ++i) // input chunk, less the 1000 offset
      EXPECT_EQ(xi[i] - 1000.0f, both[static_cast<size_t>(i)]) << "rank " << r << " element " << i;
    chunks.push_back(both);
  }
  return chunks;
}

TEST(ShardSpecs, WeightAndInputChunksAlongDim0) {
  auto chunks = chunksOf(mesh2d(1, 2), R"([{"dim": 0, "axes": ["tp"]}])", {2, 8});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1], (std::vector<float>{16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                           29, 30, 31}));
}

TEST(ShardSpecs, WeightAndInputChunksAlongDim1) {
  auto chunks = chunksOf(mesh2d(1, 4), R"([{"dim": 1, "axes": ["tp"]}])", {4, 2});
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[2], (std::vector<float>{4, 5, 12, 13, 20, 21, 28, 29})); // one pread per row
}

TEST(ShardSpecs, TwoAxesOnOneDimFollowTheirListedOrder) {
  // [dp_shard, tp] on dim 1: dp_shard is outer, so rank (dp 1, tp 0) = rank 2 takes chunk 2.
  auto chunks = chunksOf(mesh2d(2, 2), R"([{"dim": 1, "axes": ["dp_shard", "tp"]}])", {4, 2});
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[2], (std::vector<float>{4, 5, 12, 13, 20, 21, 28, 29}));
  EXPECT_EQ(chunks[1], (std::vector<float>{2, 3, 10, 11, 18, 19, 26, 27}));
  // [tp, dp_shard]: tp outer, so rank 2 (dp 1, tp 0) takes chunk 1 and rank 1 chunk 2.
  auto swapped = chunksOf(mesh2d(2, 2), R"([{"dim": 1, "axes": ["tp", "dp_shard"]}])", {4, 2});
  ASSERT_EQ(swapped.size(), 4u);
  EXPECT_EQ(swapped[2], chunks[1]);
  EXPECT_EQ(swapped[1], chunks[2]);
}

// What sc-partition makes of a local slice: at load, process_index over [tp, dp_shard] (tp
// outer, the order listed) and the chunk's start from a constant table of starts; in the run,
// a dynamic_slice of the replicated input x [4, 8] along dim 1 from that start.
std::string processIndexManifest(const std::string &indexStep, bool atLoad) {
  std::string load = indexStep + R"(, {"op": "gather", "in": [2, 1], "out": [3], "attrs": {"axis": 0}})";
  std::string slice = R"({"op": "dynamic_slice", "in": [0, 3], "out": [4], "attrs": {"axis": 1}})";
  // Among the run's steps the scalars are arena buffers.
  auto scalar = [atLoad](int offset) {
    return std::string(atLoad ? R"("storage": "persistent", "offset": )" : R"("storage": "arena", "offset": )") +
           std::to_string(atLoad ? offset : 192 + offset);
  };
  return R"({"format_version": 4, "mesh_axes": [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 2]],
    "world_size": 4, "weight_files": [], "arena_bytes": 320, "persistent_bytes": 128,
    "buffers": [
      {"id": 0, "name": "x", "dtype": "f32", "shape": [4, 8], "storage": "arena", "offset": 0},
      {"id": 1, "dtype": "i64", "shape": [], )" + scalar(0) + R"(},
      {"id": 2, "dtype": "i64", "shape": [4], "storage": "constant", "blob_offset": 0},
      {"id": 3, "dtype": "i64", "shape": [], )" + scalar(64) + R"(},
      {"id": 4, "name": "y", "dtype": "f32", "shape": [4, 2], "storage": "arena", "offset": 128}],
    "inputs": [{"name": "x", "buffer": 0}], "outputs": [{"name": "y", "buffer": 4}],
    "load_steps": [)" + (atLoad ? load : "") + R"(],
    "steps": [)" + (atLoad ? slice : load + ", " + slice) + "]}";
}

TEST(ProcessIndex, ChunkStartsFollowTheListedAxes) {
  std::string blob;
  for (int64_t start : {0, 2, 4, 6})
    blob.append(reinterpret_cast<const char *>(&start), 8);
  const std::string indexStep = R"({"op": "process_index", "in": [], "out": [1], "attrs": {"axes": ["tp", "dp_shard"]}})";
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(processIndexManifest(indexStep, true), blob), "m.shardc", a), "");
  HostTensor x;
  x.name = "x";
  x.shape = {4, 8};
  for (int i = 0; i < 32; ++i) {
    float v = static_cast<float>(i);
    x.data.insert(x.data.end(), reinterpret_cast<uint8_t *>(&v), reinterpret_cast<uint8_t *>(&v) + 4);
  }
  DeviceMesh mesh = a.deviceMesh;
  auto world = std::make_shared<LocalWorld>(mesh);
  for (int64_t r = 0; r < 4; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    // Rank r is (dp_shard r / 2, tp r % 2); over [tp, dp_shard] its index is tp * 2 + dp.
    const int64_t index = (r % 2) * 2 + r / 2;
    EXPECT_EQ(mesh.groupIndex(r, {"tp", "dp_shard"}), index);
    LocalCommunicator comm(world, r);
    for (bool device : {false, true}) { // a host backend, and one the host cannot address
      CpuBackend cpu;
      test_backends::DeviceSimBackend sim;
      Backend &backend = device ? static_cast<Backend &>(sim) : cpu;
      std::unique_ptr<Executor> ex;
      ASSERT_EQ(Executor::create(a, backend, comm, ex), "");
      std::vector<HostTensor> outputs;
      ASSERT_EQ(ex->run({x}, outputs), "");
      const float *y = reinterpret_cast<const float *>(outputs[0].data.data());
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 2; ++j)
          EXPECT_EQ(y[i * 2 + j], static_cast<float>(i * 8 + index * 2 + j)) << i << "," << j;
    }
  }
  // A process_index reads nothing: it runs at load, never among the run's steps.
  auto createError = [&](const std::string &manifest) {
    Artifact b;
    std::string err = parseArtifact(encodeJsonArtifact(manifest, blob), "m.shardc", b);
    if (!err.empty())
      return err;
    LocalCommunicator comm(world, 0);
    CpuBackend cpu;
    std::unique_ptr<Executor> ex;
    return Executor::create(b, cpu, comm, ex);
  };
  EXPECT_EQ(createError(processIndexManifest(indexStep, false)),
            "step 0 (process_index): process_index must be a load step (it reads nothing; the "
            "emitter hoists it)");
  std::string unknownAxis = indexStep;
  unknownAxis.replace(unknownAxis.find("\"tp\""), 4, "\"ep\"");
  EXPECT_EQ(createError(processIndexManifest(unknownAxis, true)).rfind(
                "load step 0 (process_index @ ): unknown mesh axis 'ep'", 0),
            0u);
}

TEST(ShardSpecs, BothDimsSplit) {
  auto chunks = chunksOf(mesh2d(2, 2),
                         R"([{"dim": 0, "axes": ["dp_shard"]}, {"dim": 1, "axes": ["tp"]}])", {2, 4});
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[3], (std::vector<float>{20, 21, 22, 23, 28, 29, 30, 31}));
  EXPECT_EQ(chunks[1], (std::vector<float>{4, 5, 6, 7, 12, 13, 14, 15}));
}

TEST(ShardSpecs, ManifestValidation) {
  auto loadError = [](const std::string &manifest) {
    Artifact a;
    return parseArtifact(encodeJsonArtifact(manifest, ""), "m.shardc", a);
  };
  DeviceMesh m = mesh2d(1, 3);
  EXPECT_EQ(loadError(chunkManifest(m, R"([{"dim": 1, "axes": ["tp"]}])", {4, 3})),
            "m.shardc: manifest: buffers[0].global_shape[1]: 8 does not divide into 3 equal chunks");
  DeviceMesh m2 = mesh2d(1, 2);
  EXPECT_EQ(loadError(chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}])", {4, 8})),
            "m.shardc: manifest: buffers[0].shape[1]: 8 is not global_shape[1] 8 / 2");
  EXPECT_EQ(loadError(chunkManifest(m2, R"([{"dim": 1, "axes": ["ep"]}])", {4, 4})),
            "m.shardc: manifest: buffers[0].shard[0].axes: unknown mesh axis 'ep' (the mesh has "
            "dp_replicate, dp_shard, cp, tp)");
  EXPECT_EQ(loadError(chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}, {"dim": 1, "axes": []}])",
                                    {4, 4})),
            "m.shardc: manifest: buffers[0].shard[1].dim: dim 1 is listed twice (list all its "
            "axes in one entry)");
  EXPECT_EQ(loadError(chunkManifest(m2, R"([{"dim": 2, "axes": ["tp"]}])", {4, 4})),
            "m.shardc: manifest: buffers[0].shard[0].dim: 2 is out of range [0, 1]");
  std::string sharedOut = chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}])", {4, 4});
  sharedOut.replace(sharedOut.find("\"buffer\": 3"), 11, "\"buffer\": 2");
  EXPECT_EQ(loadError(sharedOut),
            "m.shardc: manifest: outputs[1].buffer: buffer 2 is sharded; outputs must be "
            "replicated (end the program with an all_gather)");
  // The manifest's mesh is one list of (name, size) axes: they cannot disagree with another
  // spelling of the mesh, but each is checked.
  std::string twice = chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}])", {4, 4});
  twice.replace(twice.find("[\"cp\", 1]"), 9, "[\"tp\", 1]");
  EXPECT_EQ(loadError(twice), "m.shardc: manifest: mesh[3]: axis 'tp' is listed twice");
  std::string zero = chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}])", {4, 4});
  zero.replace(zero.find("[\"cp\", 1]"), 9, "[\"cp\", 0]");
  EXPECT_EQ(loadError(zero), "m.shardc: manifest: mesh[2]: axis size 0 is out of range [1, 1048576]");
  // A weight range is checked against the global tensor.
  std::string tooBig = chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}])", {4, 4});
  tooBig.replace(tooBig.find("\"file_offset\": 8"), 16, "\"file_offset\": 16");
  EXPECT_EQ(loadError(tooBig),
            "m.shardc: manifest: buffers[0]: weight range [16, 144) lies beyond the end of "
            "weight file 0 (136 bytes)");
  // A sharded input is given whole.
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(chunkManifest(m2, R"([{"dim": 1, "axes": ["tp"]}])", {4, 4}), ""),
                          "m.shardc", a),
            "");
  HostTensor chunk;
  chunk.name = "x";
  chunk.shape = {4, 4};
  chunk.data.resize(64);
  EXPECT_EQ(checkInputs(a, {chunk}), "input 'x': expected f32 4x8, given f32 4x4");
}

// ---------------------------------------------------------------------------------------
// The executor: collective steps, end to end

struct TpRun {
  std::vector<std::string> errors;
  std::vector<std::vector<HostTensor>> outputs;
};

uint64_t collectiveSteps(const Artifact &a) {
  uint64_t n = 0;
  for (const Step &s : a.steps)
    n += lookupCollectiveKernel(s.op) != nullptr;
  return n;
}

TpRun runTpMlp(int64_t dp, int64_t tp, int64_t absentRank = -1,
               std::chrono::milliseconds timeout = std::chrono::seconds(20), bool deviceSim = false) {
  fixtures::TpMlpArtifact t = fixtures::makeTpMlpArtifact(dp, tp);
  TempDir dir;
  writeFile(dir.file("w.bin"), t.weights);
  Artifact a;
  EXPECT_EQ(parseArtifact(encodeJsonArtifact(t.manifest, ""), dir.file("m.shardc"), a), "");
  TpRun result;
  result.outputs.resize(static_cast<size_t>(dp * tp));
  result.errors = onRanks(
      a.deviceMesh,
      [&](LocalCommunicator &comm) -> std::string {
        CpuBackend cpu;
        test_backends::DeviceSimBackend device;
        Backend &backend = deviceSim ? static_cast<Backend &>(device) : cpu;
        std::unique_ptr<Executor> ex;
        if (std::string err = Executor::create(a, backend, comm, ex); !err.empty())
          return err;
        if (comm.rank() == absentRank)
          return "absent"; // bound its weights, then never runs
        std::string err = ex->run(t.inputs, result.outputs[static_cast<size_t>(comm.rank())]);
        if (!err.empty())
          comm.abort(err);
        // On device memory each host collective waits for the device once; on the CPU never.
        if (err.empty() && ex->hostBlockingCallsInSteps() != (deviceSim ? collectiveSteps(a) : 0))
          return "host-blocking calls in the steps: " + std::to_string(ex->hostBlockingCallsInSteps());
        return err;
      },
      timeout);
  return result;
}

// On device memory with a host communicator, every collective's data is staged through the
// host, and the results are the same bits as on the CPU.
TEST(MultiRankExecutor, HostCollectivesOnDeviceMemoryAreStaged) {
  for (auto [dp, tp] : {std::pair{1, 2}, {2, 2}}) {
    TpRun cpu = runTpMlp(dp, tp);
    TpRun device = runTpMlp(dp, tp, -1, std::chrono::seconds(20), /*deviceSim=*/true);
    for (int64_t r = 0; r < dp * tp; ++r) {
      ASSERT_EQ(device.errors[static_cast<size_t>(r)], "") << dp << "x" << tp << " rank " << r;
      EXPECT_EQ(device.outputs[static_cast<size_t>(r)][0].data, cpu.outputs[static_cast<size_t>(r)][0].data)
          << dp << "x" << tp << " rank " << r;
    }
  }
}

TEST(MultiRankExecutor, TensorParallelMlpMatchesTheUnshardedComputation) {
  fixtures::TpMlpArtifact reference = fixtures::makeTpMlpArtifact(1, 1);
  TpRun single = runTpMlp(1, 1);
  ASSERT_EQ(single.errors[0], "");
  EXPECT_EQ(fixtures::compareTensors(single.outputs[0], reference.expected, 1e-5), "");
  for (auto [dp, tp] : {std::pair{1, 2}, {2, 2}, {1, 4}, {4, 1}, {2, 4}}) {
    TpRun sharded = runTpMlp(dp, tp);
    for (int64_t r = 0; r < dp * tp; ++r) {
      ASSERT_EQ(sharded.errors[static_cast<size_t>(r)], "") << dp << "x" << tp << " rank " << r;
      EXPECT_EQ(fixtures::compareTensors(sharded.outputs[static_cast<size_t>(r)], single.outputs[0],
                                        1e-5),
                "")
          << dp << "x" << tp << " rank " << r;
      // Every rank holds the same bytes: the reductions ran in one order everywhere.
      EXPECT_EQ(sharded.outputs[static_cast<size_t>(r)][0].data, sharded.outputs[0][0].data);
    }
    // And a second sharded run reproduces the first bit for bit.
    EXPECT_EQ(runTpMlp(dp, tp).outputs[0][0].data, sharded.outputs[0][0].data);
  }
}

TEST(MultiRankExecutor, SingleRankCreateRefusesShardedArtifacts) {
  fixtures::TpMlpArtifact t = fixtures::makeTpMlpArtifact(1, 2);
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(t.manifest, ""), "tp.shardc", a), "");
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  EXPECT_EQ(Executor::create(a, cpu, ex),
            "the artifact is compiled for 2 ranks (dp_replicate=1 dp_shard=1 cp=1 tp=2); run it "
            "with a communicator of as many ranks (shardc-run: mpirun -np 2, --nproc 2 or "
            "--threads 2)");
  auto world = std::make_shared<LocalWorld>(mesh2d(2, 1));
  LocalCommunicator other(world, 0);
  EXPECT_EQ(Executor::create(a, cpu, other, ex),
            "the communicator's mesh (dp_replicate=1 dp_shard=2 cp=1 tp=1) differs from the "
            "artifact's (dp_replicate=1 dp_shard=1 cp=1 tp=2)");
}

TEST(MultiRankExecutor, CollectiveStepsAreCheckedBeforeAllocating) {
  fixtures::TpMlpArtifact t = fixtures::makeTpMlpArtifact(1, 2);
  auto errorOf = [&](const std::function<void(JsonValue &)> &edit,
                     const std::function<void(Artifact &)> &editLoaded = nullptr) {
    JsonValue m;
    EXPECT_EQ(parseJson(t.manifest, m), "");
    edit(m);
    Artifact a;
    EXPECT_EQ(parseArtifact(encodeJsonArtifact(writeJson(m), ""), "tp.shardc", a), "");
    if (editLoaded)
      editLoaded(a);
    auto world = std::make_shared<LocalWorld>(a.deviceMesh);
    LocalCommunicator comm(world, 0);
    CpuBackend cpu;
    std::unique_ptr<Executor> ex;
    return Executor::create(a, cpu, comm, ex);
  };
  auto step = [](JsonValue &m, size_t i) -> JsonValue & { return m.find("steps")->asArray()[i]; };
  EXPECT_EQ(errorOf([&](JsonValue &m) {
              *step(m, 3).find("attrs")->find("axes") = JsonValue(JsonValue::Array{JsonValue("ep")});
            }),
            "step 3 (all_reduce @ reshard @ m.mlp.down): unknown mesh axis 'ep' (the mesh has "
            "dp_replicate, dp_shard, cp, tp)");
  // The schema's enum keeps "mean" out of a manifest; the kernel still checks what it is given.
  EXPECT_EQ(errorOf([&](JsonValue &) {}, [](Artifact &a) { a.steps[3].attrs.set("reduce", std::string("mean")); }),
            "step 3 (all_reduce @ reshard @ m.mlp.down): unknown reduce 'mean' (expected sum or "
            "max)");
  EXPECT_EQ(errorOf([&](JsonValue &m) {
              *step(m, 5).find("attrs")->find("axes") = JsonValue(JsonValue::Array{JsonValue("tp")});
            }),
            "step 5 (all_gather @ output @ m): output is f32 4x5, expected 8x5 from input f32 4x5 "
            "on a group of 2");
  EXPECT_EQ(errorOf([&](JsonValue &m) { step(m, 5).find("attrs")->asObject().clear(); }),
            "step 5 (all_gather @ output @ m): missing attribute 'axes'");
}

TEST(MultiRankExecutor, TimeoutNamesTheAbsentRankAndTheStep) {
  // Four ranks on one tp group; rank 3 never enters step 3 (the all_reduce).
  auto start = std::chrono::steady_clock::now();
  TpRun run = runTpMlp(1, 4, /*absentRank=*/3, std::chrono::milliseconds(500));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int r = 0; r < 3; ++r) {
    const std::string &err = run.errors[static_cast<size_t>(r)];
    EXPECT_NE(err.find("step 3 (all_reduce @ reshard @ m.mlp.down)"), std::string::npos) << err;
    EXPECT_NE(err.find("rank 3 did not arrive"), std::string::npos) << err;
  }
  EXPECT_LT(seconds, 1.0); // within 2x the timeout
}

} // namespace
