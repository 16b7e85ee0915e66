// The arithmetic of a step, for reports and profiles: floating-point operations (a multiply
// and an add count two) of the steps that dominate a transformer's time: linear, matmul and
// gemm (2 M N K), attention (2 (D + Dv) per query-key pair it scores: all S x T pairs, or for a
// causal step the pairs on and below the upper-left diagonal). Other steps count 0: they are
// bound by memory, not arithmetic.
#pragma once

#include "shardc/runtime/Artifact.h"

#include <algorithm>
#include <cstdint>

namespace shardc::rt {

inline uint64_t stepFlops(const Artifact &artifact, const Step &step) {
  auto shapeOf = [&](size_t operand) -> const std::vector<int64_t> & {
    return artifact.buffers[size_t(step.in[operand])].shape;
  };
  auto numel = [](const std::vector<int64_t> &s) {
    uint64_t n = 1;
    for (int64_t d : s)
      n *= uint64_t(d);
    return n;
  };
  if (step.in.empty() || step.out.empty())
    return 0;
  const std::vector<int64_t> &out = artifact.buffers[size_t(step.out[0])].shape;
  if (step.op == "linear" || step.op == "matmul") {
    const auto &a = shapeOf(0);
    return a.empty() ? 0 : 2 * numel(out) * uint64_t(a.back());
  }
  if (step.op == "gemm") {
    const auto &a = shapeOf(0);
    if (a.size() != 2)
      return 0;
    const bool transA = step.attrs.getBool("trans_a", false);
    return 2 * numel(out) * uint64_t(transA ? a[0] : a[1]);
  }
  if (step.op == "attention" && step.in.size() >= 3) {
    const auto &q = shapeOf(0), &k = shapeOf(1), &v = shapeOf(2);
    if (q.size() != 4 || k.size() != 4 || v.size() != 4)
      return 0;
    const int64_t S = q[2], T = k[2];
    uint64_t pairs = uint64_t(S) * uint64_t(T);
    if (step.attrs.getBool("causal", false)) {
      // Row i sees min(i + 1, T) keys.
      const int64_t full = std::min(S, T); // rows 0 .. full-1 see i + 1 keys
      pairs = uint64_t(full) * uint64_t(full + 1) / 2 + uint64_t(S - full) * uint64_t(T);
    }
    return 2 * uint64_t(q[0]) * uint64_t(q[1]) * pairs * uint64_t(q[3] + v[3]);
  }
  return 0;
}

inline uint64_t stepListFlops(const Artifact &artifact) {
  uint64_t total = 0;
  for (const Step &s : artifact.steps)
    total += stepFlops(artifact, s);
  return total;
}

} // namespace shardc::rt
