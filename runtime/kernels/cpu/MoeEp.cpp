// Expert parallelism's local steps on the CPU (docs/moe.md): moe_permute, moe_grouped_gemm and
// moe_unpermute around the moe_dispatch / moe_combine collectives. Permute and unpermute run
// the element functions of shardc/kernels/MoeKernels.h (the source the CUDA backend launches);
// the grouped GEMM runs two sgemms per received (source, local expert) segment (the GEMM groups
// of planMoeGemmGroups, as the CUDA backend runs them with cuBLASLt).
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "MoeCpu.h"

#include "shardc/kernels/MoeKernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace shardc::rt::cpu {

// moe_permute: x [T, H] (any dtype), indices [T, k] (i64) -> rows [T·k, H], counts [E], row_of [T·k].
std::string moePermuteKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_permute", args, 2, 2, 3, 3); !e.empty())
    return e;
  const TensorView &x = args.in[0], &ids = args.in[1], &rows = args.out[0], &counts = args.out[1],
                   &rowOf = args.out[2];
  if (ids.dtype != DType::I64 || counts.dtype != DType::I64 || rowOf.dtype != DType::I64)
    return "moe_permute: indices, counts and row_of must be i64";
  if (x.rank() != 2 || ids.rank() != 2 || ids.shape[0] != x.shape[0] || counts.rank() != 1)
    return "moe_permute: x [T, H], indices [T, k] and counts [E] expected, not " + describe(x) + ", " +
           describe(ids) + ", " + describe(counts);
  const int64_t T = x.shape[0], H = x.shape[1], k = ids.shape[1], N = T * k;
  if (auto e = expectShape("moe_permute", "rows", rows, {N, H}); !e.empty())
    return e;
  if (auto e = expectShape("moe_permute", "row_of", rowOf, {N}); !e.empty())
    return e;
  if (rows.dtype != x.dtype)
    return "moe_permute: rows must have x's dtype";
  kernels::MoeEpParams p;
  p.x = x.data;
  p.rows = rows.data;
  p.ids = ids.as<int64_t>();
  p.counts = counts.as<int64_t>();
  p.rowOf = rowOf.as<int64_t>();
  p.rowOfC = p.rowOf;
  p.T = T, p.H = H, p.k = k, p.E = counts.shape[0];
  p.elemSize = int(dtypeSize(x.dtype));
  kernels::moePermutePlan(p);
  if (p.bad)
    return "moe_permute: an expert id outside [0, " + std::to_string(p.E) + ")";
  for (int64_t n = 0; n < N * H; ++n)
    kernels::moePermuteElement(p, n);
  return "";
}

// moe_grouped_gemm: recv [R, H], recv_counts [G·El] (source-major), gate_up [El, 2I, H],
// down [El, H, I] -> out [R, H], hidden [R, I]; the rows past the received total are zero. f32.
std::string moeGroupedGemmKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_grouped_gemm", args, 4, 4, 2, 2); !e.empty())
    return e;
  const TensorView &recv = args.in[0], &counts = args.in[1], &gu = args.in[2], &down = args.in[3];
  const TensorView &out = args.out[0], &hidden = args.out[1];
  if (auto e = expectSameDType("moe_grouped_gemm",
                               {{"recv", &recv}, {"gate_up", &gu}, {"down", &down}, {"out", &out}, {"hidden", &hidden}});
      !e.empty())
    return e;
  if (recv.dtype != DType::F32)
    return unsupportedDType("moe_grouped_gemm", recv.dtype);
  if (counts.dtype != DType::I64 || counts.rank() != 1 || recv.rank() != 2 || gu.rank() != 3 || down.rank() != 3)
    return "moe_grouped_gemm: recv [R, H], i64 recv_counts, gate_up [El, 2I, H], down [El, H, I] expected";
  const int64_t R = recv.shape[0], H = recv.shape[1], El = gu.shape[0], I = down.shape[2];
  if (gu.shape != std::vector<int64_t>{El, 2 * I, H} || down.shape != std::vector<int64_t>{El, H, I} ||
      counts.shape[0] % El != 0)
    return "moe_grouped_gemm: shapes do not agree: recv " + describe(recv) + ", recv_counts " + describe(counts) +
           ", gate_up " + describe(gu) + ", down " + describe(down);
  if (auto e = expectShape("moe_grouped_gemm", "out", out, {R, H}); !e.empty())
    return e;
  if (auto e = expectShape("moe_grouped_gemm", "hidden", hidden, {R, I}); !e.empty())
    return e;
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = 0;
  if (std::string err = kernels::planMoeGemmGroups(counts.as<int64_t>(), counts.shape[0], El, R, groups, total);
      !err.empty())
    return "moe_grouped_gemm: " + err;
  const float *xs = recv.as<float>(), *gus = gu.as<float>(), *ds = down.as<float>();
  float *h = hidden.as<float>(), *ys = out.as<float>();
  std::vector<float> gate(size_t(total * 2 * I));
  kernels::MoeGluParams glu; // SwiGLU (expert parallelism runs SwiGLU experts only)
  glu.gate = gate.data(), glu.hidden = h, glu.rows = total, glu.I = I;
  if (std::string err = kernels::runMoeExpertGroups(groups, total, xs, gus, ds, H, I, gate.data(), h, ys, cpuExpertGemm,
                                                    [&glu](int64_t rows) { return cpuGlu(glu, rows); });
      !err.empty())
    return "moe_grouped_gemm: " + err;
  std::fill(h + total * I, h + R * I, 0.0f);
  std::fill(ys + total * H, ys + R * H, 0.0f);
  return "";
}

// moe_unpermute: rows [T·k, H], row_of [T·k] (i64), weights [T, k] -> y [T, H]. f32.
std::string moeUnpermuteKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_unpermute", args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &rows = args.in[0], &rowOf = args.in[1], &w = args.in[2], &y = args.out[0];
  if (auto e = expectSameDType("moe_unpermute", {{"rows", &rows}, {"weights", &w}, {"y", &y}}); !e.empty())
    return e;
  if (rows.dtype != DType::F32)
    return unsupportedDType("moe_unpermute", rows.dtype);
  if (rowOf.dtype != DType::I64 || rows.rank() != 2 || w.rank() != 2 || rows.shape[0] != w.shape[0] * w.shape[1] ||
      rowOf.shape != std::vector<int64_t>{rows.shape[0]})
    return "moe_unpermute: rows [T*k, H], i64 row_of [T*k] and weights [T, k] expected";
  const int64_t T = w.shape[0], H = rows.shape[1], N = rows.shape[0];
  if (auto e = expectShape("moe_unpermute", "y", y, {T, H}); !e.empty())
    return e;
  kernels::MoeEpParams p;
  p.rowOfC = rowOf.as<int64_t>();
  for (int64_t s = 0; s < N; ++s)
    if (p.rowOfC[s] < -1 || p.rowOfC[s] >= N)
      return "moe_unpermute: row " + std::to_string(p.rowOfC[s]) + " outside [0, " + std::to_string(N) + ")";
  p.back = rows.as<float>();
  p.weights = w.as<float>();
  p.y = y.as<float>();
  p.T = T, p.H = H, p.k = w.shape[1];
  for (int64_t n = 0; n < T * H; ++n)
    kernels::moeUnpermuteElement(p, n);
  return "";
}

} // namespace shardc::rt::cpu
