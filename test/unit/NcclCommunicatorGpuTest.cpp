// GPU tests of the NCCL communicator on a one-rank world (one GPU): every collective as the
// copy it degenerates to, aliasing through the stream-ordered scratch, progress marks, and the
// watchdog firing on a stream held by cuStreamWaitValue32. Built wherever NCCL is found, run
// only with -DSHARDC_ENABLE_GPU_TESTS=ON on a machine with a GPU.
#include "shardc/comm/NcclCommunicator.h"

#include <gtest/gtest.h>

#include <cuda.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <thread>

using namespace shardc::rt;
using namespace std::chrono_literals;

namespace {

class NcclGpu : public ::testing::Test {
protected:
  void SetUp() override {
    int n = 0;
    // Registered only with -DSHARDC_ENABLE_GPU_TESTS=ON, i.e. where a GPU is expected: a
    // missing device is a failure, not a skip.
    ASSERT_TRUE(cudaGetDeviceCount(&n) == cudaSuccess && n > 0) << "no CUDA device";
    ncclUniqueId id;
    ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
    boot_.launcher = "single";
    boot_.uniqueId.assign(id.internal, id.internal + sizeof id.internal);
  }

  std::unique_ptr<NcclCommunicator> make(std::chrono::milliseconds timeout) {
    NcclOptions options;
    options.timeout = timeout;
    std::unique_ptr<NcclCommunicator> comm;
    std::string err = NcclCommunicator::create(mesh_, boot_, options, comm);
    EXPECT_EQ(err, "");
    return comm;
  }

  DeviceMesh mesh_{{{"dp_shard", 1}, {"tp", 1}}};
  NcclBootstrap boot_;
};

TEST_F(NcclGpu, EveryCollectiveOnOneRankIsACopy) {
  auto comm = make(30s);
  ASSERT_TRUE(comm);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  comm->setStream(stream);
  const CommGroup *tp = nullptr, *world = nullptr;
  ASSERT_EQ(comm->group({"tp"}, tp), "");
  ASSERT_EQ(comm->group({"dp_shard", "tp"}, world), "");

  const int64_t n = 1024;
  std::vector<float> host(n), back(n);
  for (int64_t i = 0; i < n; ++i)
    host[i] = static_cast<float>(i) * 0.5f - 7.0f;
  float *in = nullptr, *out = nullptr;
  ASSERT_EQ(cudaMalloc(&in, 2 * n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&out, n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(in, host.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);

  auto expectCopy = [&](const float *src, const char *what) {
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << what;
    ASSERT_EQ(cudaMemcpy(back.data(), src, n * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    EXPECT_EQ(std::memcmp(back.data(), host.data(), n * sizeof(float)), 0) << what;
  };
  EXPECT_EQ(comm->allReduce(*tp, in, out, n, DType::F32, ReduceOp::Sum), "");
  EXPECT_EQ(comm->markStep(0, "all_reduce"), "");
  expectCopy(out, "all_reduce");
  EXPECT_EQ(comm->allGather(*world, in, out, n, DType::F32), "");
  EXPECT_EQ(comm->markStep(1, "all_gather"), "");
  expectCopy(out, "all_gather");
  EXPECT_EQ(comm->reduceScatter(*tp, in, out, n, DType::F32, ReduceOp::Max), "");
  expectCopy(out, "reduce_scatter");
  EXPECT_EQ(comm->allToAll(*tp, in, out, n, DType::F32), "");
  expectCopy(out, "all_to_all");
  EXPECT_EQ(comm->allReduce(*tp, in, in, n, DType::F32, ReduceOp::Sum), ""); // in place
  expectCopy(in, "all_reduce in place");
  // Overlapping but not identical: goes through the scratch copy.
  EXPECT_EQ(comm->allToAll(*tp, in, in + 3, n, DType::F32), "");
  expectCopy(in + 3, "all_to_all overlapping");
  EXPECT_EQ(comm->barrier(*world), "");
  EXPECT_EQ(comm->markStep(2, "barrier"), "");
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(comm->allReduce(*tp, in, out, n, DType::Bool, ReduceOp::Sum),
            "all_reduce of bool is not supported (f32, f64, bf16, f16, i64, i32)");
  EXPECT_EQ(comm->health(), "");
  cudaFree(in);
  cudaFree(out);
  comm.reset();
  cudaStreamDestroy(stream);
}

TEST_F(NcclGpu, WatchdogReportsAStreamThatStopped) {
  auto comm = make(500ms);
  ASSERT_TRUE(comm);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  comm->setStream(stream);
  const CommGroup *tp = nullptr;
  ASSERT_EQ(comm->group({"tp"}, tp), "");

  // A host-mapped gate the stream waits on: the step behind it never finishes until opened.
  void *gateHost = nullptr, *gateDev = nullptr;
  ASSERT_EQ(cudaHostAlloc(&gateHost, sizeof(uint32_t), cudaHostAllocMapped), cudaSuccess);
  *static_cast<volatile uint32_t *>(gateHost) = 0;
  ASSERT_EQ(cudaHostGetDevicePointer(&gateDev, gateHost, 0), cudaSuccess);
  EXPECT_EQ(comm->markStep(0, "fine"), "");
  ASSERT_EQ(cuStreamWaitValue32(reinterpret_cast<CUstream>(stream),
                                reinterpret_cast<CUdeviceptr>(gateDev), 1,
                                CU_STREAM_WAIT_VALUE_GEQ),
            CUDA_SUCCESS);
  EXPECT_EQ(comm->markStep(7, "all_reduce @ blocked"), "");

  std::string health;
  for (int i = 0; i < 200 && health.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    health = comm->health();
  }
  EXPECT_NE(health.find("rank 0 stuck at step 7 (all_reduce @ blocked) on the communication stream: not "
                        "done after 500ms (last done: step 0"),
            std::string::npos)
      << health;
  // Aborted: collectives now refuse to start, naming the report.
  float *buf = nullptr;
  ASSERT_EQ(cudaMalloc(&buf, 16), cudaSuccess);
  std::string err = comm->allReduce(*tp, buf, buf, 4, DType::F32, ReduceOp::Sum);
  EXPECT_NE(err.find("an earlier failure stopped this communicator (rank 0 stuck at step 7"),
            std::string::npos)
      << err;

  *static_cast<volatile uint32_t *>(gateHost) = 1; // let the stream drain
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  comm.reset();
  cudaFree(buf);
  cudaFreeHost(gateHost);
  cudaStreamDestroy(stream);
}

// The marks of compute steps go to the compute stream's own word: a compute kernel that never
// ends is named although the communication stream keeps finishing its steps.
TEST_F(NcclGpu, WatchdogNamesAStuckComputeStream) {
  auto comm = make(500ms);
  ASSERT_TRUE(comm);
  cudaStream_t compute, communication;
  ASSERT_EQ(cudaStreamCreate(&compute), cudaSuccess);
  ASSERT_EQ(cudaStreamCreate(&communication), cudaSuccess);
  comm->setStream(communication);
  void *gateHost = nullptr, *gateDev = nullptr;
  ASSERT_EQ(cudaHostAlloc(&gateHost, sizeof(uint32_t), cudaHostAllocMapped), cudaSuccess);
  *static_cast<volatile uint32_t *>(gateHost) = 0;
  ASSERT_EQ(cudaHostGetDevicePointer(&gateDev, gateHost, 0), cudaSuccess);
  EXPECT_EQ(comm->markStep(0, "linear @ fine", compute, 0), "");
  ASSERT_EQ(cuStreamWaitValue32(reinterpret_cast<CUstream>(compute), reinterpret_cast<CUdeviceptr>(gateDev), 1,
                                CU_STREAM_WAIT_VALUE_GEQ),
            CUDA_SUCCESS);
  EXPECT_EQ(comm->markStep(1, "attention @ hung", compute, 0), "");
  EXPECT_EQ(comm->markStep(2, "all_gather @ next layer", communication, 1), "");
  std::string health;
  for (int i = 0; i < 200 && health.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    health = comm->health();
  }
  EXPECT_NE(health.find("rank 0 stuck at step 1 (attention @ hung) on the compute stream"), std::string::npos)
      << health;
  *static_cast<volatile uint32_t *>(gateHost) = 1;
  EXPECT_EQ(cudaStreamSynchronize(compute), cudaSuccess);
  comm.reset();
  cudaFreeHost(gateHost);
  cudaStreamDestroy(compute);
  cudaStreamDestroy(communication);
}

} // namespace
