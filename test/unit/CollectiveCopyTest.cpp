// The collective steps' packing through the backend's copy hook (Backend::copy2D), on the CPU:
// every step kind along inner dims gives the same results through the hook as with memcpy, and
// the hook is what moves the bytes (a copier that drops them breaks the results). Then the
// executor's path for a communicator that takes device pointers (NCCL's), with a simulated
// device: scratch and packing stay in device memory and nothing is staged through the host.
#include "CollectivesArtifact.h"
#include "DeviceSimBackend.h"
#include "TpMlpArtifact.h" // compareTensors

#include "ManifestJson.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

using namespace shardc::rt;

namespace {

// Host memory with a copy hook that records every 2-D copy and, unless told to drop them,
// performs it.
class RecordingCopier final : public Backend {
public:
  struct Copy {
    size_t dpitch, spitch, width, height;
  };
  const char *name() const override { return "recording"; }
  KernelFn lookupKernel(std::string_view op) const override { return lookupCpuKernel(op); }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
  std::string loadKernels(const Artifact &) override { return ""; }
  const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
  std::string copy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                     size_t height) override {
    std::lock_guard<std::mutex> lock(mu);
    copies.push_back({dpitch, spitch, width, height});
    return drop ? "" : Backend::copy2D(dst, dpitch, src, spitch, width, height);
  }
  size_t bytes() const {
    size_t n = 0;
    for (const Copy &c : copies)
      n += c.width * c.height;
    return n;
  }
  bool drop = false;
  std::mutex mu;
  std::vector<Copy> copies;
};

// Runs one collective step on the 2 ranks of a tp=2 mesh, each rank's input distinct; returns
// each rank's output. `copiers` (one per rank, or empty for memcpy) go into CollectiveArgs.
std::vector<std::vector<float>> runStep(const char *op, const Attrs &attrs,
                                        const std::vector<int64_t> &inShape,
                                        const std::vector<int64_t> &outShape,
                                        std::vector<RecordingCopier> *copiers) {
  DeviceMesh mesh({{"tp", 2}});
  auto world = std::make_shared<LocalWorld>(mesh);
  std::vector<std::vector<float>> outs(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      LocalCommunicator comm(world, r);
      comm.setTimeout(std::chrono::seconds(20));
      const CommGroup *g = nullptr;
      std::string &err = errors[static_cast<size_t>(r)];
      if (err = comm.group({"tp"}, g); !err.empty())
        return;
      TensorView in{nullptr, DType::F32, inShape}, out{nullptr, DType::F32, outShape};
      std::vector<float> x(static_cast<size_t>(in.numel()));
      for (size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(r * 1000 + static_cast<int64_t>(i));
      std::vector<float> &y = outs[static_cast<size_t>(r)];
      y.assign(static_cast<size_t>(out.numel()), -1);
      in.data = x.data();
      out.data = y.data();
      const CollectiveKernel *k = lookupCollectiveKernel(op);
      uint64_t scratchBytes = 0;
      if (err = k->check(in, out, attrs, 2, scratchBytes); !err.empty())
        return;
      MemoryBlock scratch = MemoryBlock::allocateHost(scratchBytes);
      CollectiveArgs args{in, out, &attrs, &comm, g, scratch.data()};
      args.copier = copiers ? &(*copiers)[static_cast<size_t>(r)] : nullptr;
      err = k->run(args);
    });
  for (auto &t : threads)
    t.join();
  for (size_t r = 0; r < errors.size(); ++r)
    EXPECT_EQ(errors[r], "") << op << " rank " << r;
  return outs;
}

struct Case {
  const char *op;
  std::vector<std::pair<const char *, int64_t>> ints;
  std::vector<int64_t> in, out;
  size_t packedBytes; // what the hook must move per rank (f32)
  size_t height;      // rows of each 2-D copy: the product of the dims before the packed dim
};

TEST(CollectiveCopyHook, EveryStepKindMovesItsChunksThroughTheHook) {
  const std::vector<Case> cases = {
      // gathered into scratch, then each member's chunk inserted along dim 1 / dim 2
      {"all_gather", {{"dim", 1}}, {2, 2, 3}, {2, 4, 3}, 2 * 12 * 4, 2},
      {"all_gather", {{"dim", 2}}, {2, 3, 2}, {2, 3, 4}, 2 * 12 * 4, 6},
      {"all_gather", {{"dim", -1}}, {3, 2}, {3, 4}, 2 * 6 * 4, 3},
      // each member's chunk along dim 1 extracted into scratch first
      {"reduce_scatter", {{"dim", 1}}, {2, 4, 3}, {2, 2, 3}, 24 * 4, 2},
      {"reduce_scatter", {{"dim", 2}}, {3, 2, 4}, {3, 2, 2}, 24 * 4, 6},
      // packed along split_dim, unpacked along concat_dim
      {"all_to_all", {{"split_dim", 2}, {"concat_dim", 1}}, {2, 3, 4}, {2, 6, 2}, 2 * 24 * 4, 0},
      {"all_to_all", {{"split_dim", 0}, {"concat_dim", 2}}, {4, 3, 2}, {2, 3, 4}, 2 * 24 * 4, 0},
      {"all_to_all", {{"split_dim", 1}, {"concat_dim", 0}}, {2, 4}, {4, 2}, 2 * 8 * 4, 0},
      // no packing at all
      {"all_reduce", {}, {2, 3}, {2, 3}, 0, 0},
      {"all_gather", {{"dim", 0}}, {2, 3}, {4, 3}, 0, 0},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(std::string(c.op) + " " + shapeString(c.in) + " -> " + shapeString(c.out));
    Attrs attrs;
    for (auto [key, value] : c.ints)
      attrs.set(key, value);
    attrs.set("axes", std::vector<std::string>{"tp"});
    auto reference = runStep(c.op, attrs, c.in, c.out, nullptr);
    std::vector<RecordingCopier> copiers(2);
    auto hooked = runStep(c.op, attrs, c.in, c.out, &copiers);
    EXPECT_EQ(hooked, reference);
    for (size_t r = 0; r < 2; ++r) {
      EXPECT_EQ(copiers[r].bytes(), c.packedBytes) << "rank " << r;
      for (const auto &copy : copiers[r].copies) {
        if (c.height)
          EXPECT_EQ(copy.height, c.height) << "rank " << r;
        EXPECT_GE(copy.dpitch, copy.width);
        EXPECT_GE(copy.spitch, copy.width);
      }
    }
    if (c.packedBytes == 0)
      continue;
    // The kernels move nothing themselves: with the hook dropping its copies the results differ.
    std::vector<RecordingCopier> dropping(2);
    for (auto &d : dropping)
      d.drop = true;
    auto dropped = runStep(c.op, attrs, c.in, c.out, &dropping);
    EXPECT_NE(dropped, reference);
  }
}

// What a copier's error becomes: the step's error, naming the chunk.
TEST(CollectiveCopyHook, ACopyErrorFailsTheStep) {
  class Failing final : public Backend {
  public:
    const char *name() const override { return "failing"; }
    KernelFn lookupKernel(std::string_view) const override { return nullptr; }
    MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
    std::string loadKernels(const Artifact &) override { return ""; }
    const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
    std::string copy2D(void *, size_t, const void *, size_t, size_t, size_t) override {
      return "the copy failed";
    }
  } failing;
  std::vector<float> x(12), y(12);
  Attrs attrs;
  attrs.set("dim", int64_t(1));
  DeviceMesh mesh({{"tp", 1}});
  auto world = std::make_shared<LocalWorld>(mesh);
  LocalCommunicator comm(world, 0);
  const CommGroup *g = nullptr;
  ASSERT_EQ(comm.group({"tp"}, g), "");
  std::vector<uint8_t> scratch(48);
  CollectiveArgs args{{x.data(), DType::F32, {3, 4}}, {y.data(), DType::F32, {3, 4}}, &attrs, &comm, g,
                      scratch.data()};
  args.copier = &failing;
  EXPECT_EQ(lookupCollectiveKernel("reduce_scatter")->run(args), "packing chunk 0: the copy failed");
}

// A communicator that takes device pointers, like NCCL's, on the local one: it checks that
// every buffer it is given is the simulated device's memory, then moves the data (the
// simulation's device memory is host memory).
class DeviceComm final : public Communicator {
public:
  DeviceComm(std::shared_ptr<LocalWorld> world, int64_t rank, test_backends::DeviceSimBackend &device)
      : Communicator(world->mesh(), rank), inner_(world, rank), device_(device) {}
  const char *name() const override { return "device-sim"; }
  bool takesDevicePointers() const override { return true; }
  std::string allReduce(const CommGroup &g, const void *in, void *out, int64_t count, DType dtype,
                        ReduceOp op) override {
    size_t n = static_cast<size_t>(count) * dtypeSize(dtype);
    return check(in, n, out, n) + inner_.allReduce(g, in, out, count, dtype, op);
  }
  std::string allGather(const CommGroup &g, const void *in, void *out, int64_t count,
                        DType dtype) override {
    size_t n = static_cast<size_t>(count) * dtypeSize(dtype);
    return check(in, n, out, n * static_cast<size_t>(g.size())) +
           inner_.allGather(g, in, out, count, dtype);
  }
  std::string reduceScatter(const CommGroup &g, const void *in, void *out, int64_t count,
                            DType dtype, ReduceOp op) override {
    size_t n = static_cast<size_t>(count) * dtypeSize(dtype);
    return check(in, n * static_cast<size_t>(g.size()), out, n) +
           inner_.reduceScatter(g, in, out, count, dtype, op);
  }
  std::string allToAll(const CommGroup &g, const void *in, void *out, int64_t count,
                       DType dtype) override {
    size_t n = static_cast<size_t>(count) * dtypeSize(dtype) * static_cast<size_t>(g.size());
    return check(in, n, out, n) + inner_.allToAll(g, in, out, count, dtype);
  }
  std::string allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts, void *out,
                        const int64_t *recvCounts, DType dtype) override {
    size_t sent = 0, received = 0;
    for (int64_t j = 0; j < g.size(); ++j) {
      sent += static_cast<size_t>(sendCounts[j]) * dtypeSize(dtype);
      received += static_cast<size_t>(recvCounts[j]) * dtypeSize(dtype);
    }
    return check(in, sent, out, received) + inner_.allToAllV(g, in, sendCounts, out, recvCounts, dtype);
  }
  std::string barrier(const CommGroup &g) override { return inner_.barrier(g); }
  void abort(const std::string &reason) override { inner_.abort(reason); }
  std::atomic<int> calls{0};

private:
  std::string check(const void *in, size_t inBytes, const void *out, size_t outBytes) {
    ++calls;
    if (!device_.isDevice(in, inBytes) || !device_.isDevice(out, outBytes))
      return "a collective got host memory: ";
    return "";
  }
  LocalCommunicator inner_;
  test_backends::DeviceSimBackend &device_;
};

TEST(CollectiveCopyHook, DeviceCommunicatorPacksInDeviceMemory) {
  for (int64_t tp : {1, 2, 3}) {
    SCOPED_TRACE("tp=" + std::to_string(tp));
    fixtures::CollectivesArtifact t = fixtures::makeCollectivesArtifact(tp);
    Artifact a;
    ASSERT_EQ(parseArtifact(encodeJsonArtifact(t.manifest, ""), "collectives.shardc", a), "");
    auto world = std::make_shared<LocalWorld>(a.deviceMesh);
    std::vector<std::vector<HostTensor>> outputs(static_cast<size_t>(tp));
    std::vector<std::string> errors(static_cast<size_t>(tp));
    std::vector<uint64_t> copied2D(static_cast<size_t>(tp)), synchronizations(static_cast<size_t>(tp));
    std::vector<int> calls(static_cast<size_t>(tp));
    std::vector<std::thread> threads;
    for (int64_t r = 0; r < tp; ++r)
      threads.emplace_back([&, r] {
        size_t i = static_cast<size_t>(r);
        test_backends::DeviceSimBackend device;
        DeviceComm comm(world, r, device);
        comm.setTimeout(std::chrono::seconds(20));
        std::unique_ptr<Executor> ex;
        errors[i] = Executor::create(a, device, comm, ex);
        if (errors[i].empty())
          errors[i] = ex->run(t.inputs, outputs[i]);
        if (!errors[i].empty())
          comm.abort(errors[i]);
        else if (ex->hostBlockingCallsInSteps() != 0)
          errors[i] = "the host waited inside the steps";
        copied2D[i] = device.copied2D;
        synchronizations[i] = device.synchronizations;
        calls[i] = comm.calls;
      });
    for (auto &th : threads)
      th.join();
    for (size_t r = 0; r < static_cast<size_t>(tp); ++r) {
      ASSERT_EQ(errors[r], "") << "rank " << r;
      EXPECT_EQ(fixtures::compareTensors(outputs[r], t.expected, 0), "") << "rank " << r;
      // all_gather dim 1 (g x 24), reduce_scatter 24T, all_to_all 2 x 24: every packing
      // byte went through copy2D on device memory.
      const uint64_t floats = 24 * tp + 24 * tp + 48;
      EXPECT_EQ(copied2D[r], floats * 4) << "rank " << r;
      EXPECT_EQ(calls[r], 5) << "rank " << r; // the 5 communicating steps, none staged
      EXPECT_EQ(synchronizations[r], 1u) << "rank " << r; // only before reading the outputs
    }
  }
}

} // namespace
