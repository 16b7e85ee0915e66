// The CUDA backend's launches of the SIMT kernels it shares with the CPU tests
// (shardc/kernels/IndexKernels.h: strided copies and reductions): slice, concat, transpose,
// expand, reduce_sum, reduce_mean, reduce_max. The plans are the header's host code, the
// kernels its device code; the CPU tests run both through the Simt.h emulator
// (test/unit/IndexKernelsSimtTest.cpp). What each step kind takes is CudaKernelTable.cpp's.
#include "CudaBackend.h"
#include "LibraryKernels.h"
#include "shardc/kernels/IndexKernels.h"

#include <cuda_runtime.h>

namespace shardc::cuda {

namespace {

using rt::DType;
using rt::KernelArgs;

__global__ void __launch_bounds__(kernels::kIndexThreads) stridedCopyKernel(kernels::StridedCopyParams p) {
  kernels::stridedCopy(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) reduceRowsKernel(kernels::ReduceParams p) {
  kernels::reduceRows(p);
}

std::string launched(const char *op) {
  cudaError_t rc = cudaGetLastError();
  return rc == cudaSuccess ? "" : std::string(op) + ": " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
}

std::string copy(const char *op, const std::string &planned, kernels::StridedCopyParams &p, void *dst,
                 const void *src) {
  if (!planned.empty())
    return std::string(op) + ": " + planned;
  if (p.count == 0)
    return "";
  p.dst = dst;
  p.src = src;
  const int64_t blocks = kernels::indexBlocks(p.count);
  if (blocks > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(p.count) + " elements exceed one launch";
  stridedCopyKernel<<<unsigned(blocks), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

std::vector<int64_t> ints(const KernelArgs &a, const char *name) {
  return a.attrs ? a.attrs->getInts(name) : std::vector<int64_t>{};
}

std::string reduce(const char *op, const KernelArgs &a, kernels::ReduceKind kind) {
  const rt::TensorView &x = a.in[0], &y = a.out[0];
  kernels::ReduceParams p;
  if (std::string err = kernels::planReduce(x.shape, ints(a, "axes"), y.numel(), p); !err.empty())
    return std::string(op) + ": " + err;
  if (p.outputs == 0)
    return "";
  if (p.outputs > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(p.outputs) + " outputs exceed one launch";
  p.x = x.data;
  p.y = y.data;
  p.kind = kind;
  p.type = x.dtype == DType::BF16 ? kernels::ReduceType::BF16
           : x.dtype == DType::F16 ? kernels::ReduceType::F16
                                   : kernels::ReduceType::F32;
  reduceRowsKernel<<<unsigned(p.outputs), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

} // namespace

namespace lib {

std::string sliceKernel(const KernelArgs &a) {
  const rt::TensorView &x = a.in[0], &y = a.out[0];
  kernels::StridedCopyParams p;
  std::string planned = kernels::planSlice(x.shape, y.shape, ints(a, "starts"), ints(a, "steps"),
                                           int(rt::dtypeSize(x.dtype)), p);
  return copy("slice", planned, p, y.data, x.data);
}

std::string concatKernel(const KernelArgs &a) {
  const rt::TensorView &y = a.out[0];
  int64_t axis = a.attrs ? a.attrs->getInt("axis", 0) : 0;
  if (axis < 0)
    axis += y.rank();
  int64_t offset = 0;
  for (const rt::TensorView &x : a.in) {
    kernels::StridedCopyParams p;
    std::string planned = kernels::planConcatPart(y.shape, x.shape, axis, offset, int(rt::dtypeSize(x.dtype)), p);
    if (std::string err = copy("concat", planned, p, y.data, x.data); !err.empty())
      return err;
    offset += x.shape[size_t(axis)];
  }
  return "";
}

std::string transposeKernel(const KernelArgs &a) {
  kernels::StridedCopyParams p;
  std::string planned = kernels::planTranspose(a.in[0].shape, ints(a, "perm"), int(rt::dtypeSize(a.in[0].dtype)), p);
  return copy("transpose", planned, p, a.out[0].data, a.in[0].data);
}

std::string expandKernel(const KernelArgs &a) {
  kernels::StridedCopyParams p;
  std::string planned = kernels::planExpand(a.in[0].shape, a.out[0].shape, int(rt::dtypeSize(a.in[0].dtype)), p);
  return copy("expand", planned, p, a.out[0].data, a.in[0].data);
}

std::string reduceSumKernel(const KernelArgs &a) { return reduce("reduce_sum", a, kernels::ReduceKind::Sum); }
std::string reduceMeanKernel(const KernelArgs &a) { return reduce("reduce_mean", a, kernels::ReduceKind::Mean); }
std::string reduceMaxKernel(const KernelArgs &a) { return reduce("reduce_max", a, kernels::ReduceKind::Max); }

} // namespace lib

} // namespace shardc::cuda
