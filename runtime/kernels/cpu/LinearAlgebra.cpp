// Contractions on sgemm: ONNX MatMul (batch broadcasting, 1-D promotion), Linear and Gemm.
// Batches that share one B and lie back to back in A become a single tall sgemm.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "Sgemm.h"
#include "StridedLoops.h"

#include "shardc/kernels/FusedPrelude.h"

#include <algorithm>

namespace shardc::rt::cpu {

namespace {

std::string expectF32(const char *op, std::initializer_list<const TensorView *> tensors) {
  for (const TensorView *t : tensors)
    if (t->dtype != DType::F32)
      return unsupportedDType(op, t->dtype);
  return "";
}

} // namespace

std::string matmulKernel(const KernelArgs &args) {
  if (auto e = expectArity("matmul", args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &a = args.in[0], &b = args.in[1], &y = args.out[0];
  if (auto e = expectF32("matmul", {&a, &b, &y}); !e.empty())
    return e;
  if (a.rank() < 1 || b.rank() < 1)
    return "matmul: operands must have rank >= 1: " + shapeString(a.shape) + " · " +
           shapeString(b.shape);
  // 1-D promotion: a [K] is [1, K] and b [K] is [K, 1]; the added dim is dropped from y.
  const int64_t M = a.rank() >= 2 ? a.shape[a.rank() - 2] : 1;
  const int64_t K = a.shape.back();
  const int64_t Kb = b.rank() >= 2 ? b.shape[b.rank() - 2] : b.shape[0];
  const int64_t N = b.rank() >= 2 ? b.shape.back() : 1;
  if (K != Kb)
    return "matmul: inner dims differ: " + shapeString(a.shape) + " · " + shapeString(b.shape);
  std::vector<int64_t> batchA(a.shape.begin(), a.shape.end() - std::min<int64_t>(a.rank(), 2));
  std::vector<int64_t> batchB(b.shape.begin(), b.shape.end() - std::min<int64_t>(b.rank(), 2));
  auto batch = broadcastShapes(batchA, batchB);
  if (!batch)
    return "matmul: batch dims do not broadcast: " + shapeString(a.shape) + " · " +
           shapeString(b.shape);
  std::vector<int64_t> expected = *batch;
  if (a.rank() >= 2)
    expected.push_back(M);
  if (b.rank() >= 2)
    expected.push_back(N);
  if (auto e = expectShape("matmul", "y", y, expected); !e.empty())
    return e;

  auto scaled = [](std::vector<int64_t> strides, int64_t by) {
    for (int64_t &s : strides)
      s *= by;
    return strides;
  };
  const float *pa = a.as<float>();
  const float *pb = b.as<float>();
  float *py = y.as<float>();
  forEachRow<3>(*batch,
                {scaled(contiguousStrides(*batch), M * N),
                 scaled(broadcastStrides(batchA, *batch), M * K),
                 scaled(broadcastStrides(batchB, *batch), K * N)},
                {0, 0, 0},
                [&](const std::array<int64_t, 3> &off, int64_t n, const std::array<int64_t, 3> &st) {
                  if (st[2] == 0 && st[1] == M * K) {
                    // One B for consecutive A matrices: stack them into an [n*M, K] operand.
                    sgemm(false, false, n * M, N, K, 1.0f, pa + off[1], K, pb + off[2], N, 0.0f,
                          py + off[0], N);
                    return;
                  }
                  for (int64_t i = 0; i < n; ++i)
                    sgemm(false, false, M, N, K, 1.0f, pa + off[1] + i * st[1], K,
                          pb + off[2] + i * st[2], N, 0.0f, py + off[0] + i * st[0], N);
                });
  return "";
}

std::string linearKernel(const KernelArgs &args) {
  if (auto e = expectArity("linear", args, 2, 3, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &w = args.in[1], &y = args.out[0];
  const TensorView *bias = args.in.size() > 2 ? &args.in[2] : nullptr;
  if (auto e = expectF32("linear", {&x, &w, &y}); !e.empty())
    return e;
  if (bias)
    if (auto e = expectF32("linear", {bias}); !e.empty())
      return e;
  // The dialect spells the attribute transpose_weight; the manifest's name is transpose_w.
  const bool transW = args.attrs && (args.attrs->getBool("transpose_w", false) ||
                                     args.attrs->getBool("transpose_weight", false));
  if (x.rank() < 1 || w.rank() != 2)
    return "linear: expects x [..., K] and a 2-D weight, got " + shapeString(x.shape) + " and " +
           shapeString(w.shape);
  const int64_t K = x.shape.back();
  const int64_t N = transW ? w.shape[0] : w.shape[1];
  if ((transW ? w.shape[1] : w.shape[0]) != K)
    return "linear: inner dims differ: " + shapeString(x.shape) + " · " + shapeString(w.shape) +
           (transW ? "ᵀ" : "");
  std::vector<int64_t> expected = x.shape;
  expected.back() = N;
  if (auto e = expectShape("linear", "y", y, expected); !e.empty())
    return e;
  if (bias && bias->numel() != N)
    return "linear: bias has shape " + shapeString(bias->shape) + ", expected " + std::to_string(N);
  const int64_t M = K > 0 ? x.numel() / K : productOf(x.shape, 0, x.shape.size() - 1);
  float *py = y.as<float>();
  if (bias)
    for (int64_t i = 0; i < M; ++i)
      std::copy(bias->as<float>(), bias->as<float>() + N, py + i * N);
  // A GEMM epilogue (sc-fuse-linear-epilogue): applied to the f32 result before the caller
  // rounds it to a 16-bit type, as cuBLASLt's epilogue does.
  const std::string epilogue = args.attrs ? args.attrs->getString("epilogue", "") : "";
  if (!epilogue.empty() && epilogue != "gelu_tanh")
    return "linear: unknown epilogue '" + epilogue + "' (gelu_tanh is the one there is)";
  sgemm(false, transW, M, N, K, 1.0f, x.as<float>(), K, w.as<float>(), w.shape[1],
        bias ? 1.0f : 0.0f, py, N);
  if (epilogue == "gelu_tanh")
    for (int64_t i = 0; i < M * N; ++i)
      py[i] = sc_op_gelu_tanh(py[i]);
  return "";
}

std::string gemmKernel(const KernelArgs &args) {
  if (auto e = expectArity("gemm", args, 2, 3, 1, 1); !e.empty())
    return e;
  const TensorView &a = args.in[0], &b = args.in[1], &y = args.out[0];
  const TensorView *c = args.in.size() > 2 ? &args.in[2] : nullptr;
  if (auto e = expectF32("gemm", {&a, &b, &y}); !e.empty())
    return e;
  if (c)
    if (auto e = expectF32("gemm", {c}); !e.empty())
      return e;
  const float alpha = static_cast<float>(args.attrs ? args.attrs->getFloat("alpha", 1.0) : 1.0);
  const float beta = static_cast<float>(args.attrs ? args.attrs->getFloat("beta", 1.0) : 1.0);
  const bool transA = args.attrs && args.attrs->getBool("trans_a", false);
  const bool transB = args.attrs && args.attrs->getBool("trans_b", false);
  if (a.rank() != 2 || b.rank() != 2)
    return "gemm: operands must be 2-D: " + shapeString(a.shape) + " · " + shapeString(b.shape);
  const int64_t M = transA ? a.shape[1] : a.shape[0];
  const int64_t K = transA ? a.shape[0] : a.shape[1];
  const int64_t Kb = transB ? b.shape[1] : b.shape[0];
  const int64_t N = transB ? b.shape[0] : b.shape[1];
  if (K != Kb)
    return "gemm: inner dims differ: " + shapeString(a.shape) + (transA ? "ᵀ" : "") + " · " +
           shapeString(b.shape) + (transB ? "ᵀ" : "");
  if (auto e = expectShape("gemm", "y", y, {M, N}); !e.empty())
    return e;
  if (c && !broadcastsTo(c->shape, y.shape))
    return "gemm: C of shape " + shapeString(c->shape) + " does not broadcast to " +
           shapeString(y.shape);
  const bool useC = c && beta != 0.0f;
  if (useC)
    copyStrided(y.data, c->data, sizeof(float), y.shape, broadcastStrides(c->shape, y.shape));
  sgemm(transA, transB, M, N, K, alpha, a.as<float>(), a.shape[1], b.as<float>(), b.shape[1],
        useC ? beta : 0.0f, y.as<float>(), N);
  return "";
}

} // namespace shardc::rt::cpu
