// token_loss: the summed causal-LM cross-entropy and the count of label tokens (sc.token_loss).
// Logits [B, S, V] in f32, bf16 or f16 are read in place and widened to f32 element by element;
// each row's logsumexp subtracts the row's max first, and the sums accumulate in double.
#include "CpuKernels.h"
#include "KernelChecks.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace shardc::rt::cpu {

namespace {

constexpr int64_t kIgnoreIndex = -100; // Hugging Face's ignore index

float widen(float v) { return v; }

template <typename Load>
std::string tokenLossRows(const TensorView &labels, int64_t rows, int64_t vocab, Load load, double &sum,
                          int64_t &count) {
  const int64_t *pl = labels.as<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t label = pl[r];
    if (label == kIgnoreIndex)
      continue;
    if (label < 0 || label >= vocab)
      return "token_loss: label " + std::to_string(label) + " at position " + std::to_string(r) +
             " is outside [0, " + std::to_string(vocab) + ") and is not the ignore index -100";
    const int64_t base = r * vocab;
    float maxValue = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < vocab; ++j)
      maxValue = std::max(maxValue, load(base + j));
    double expSum = 0.0;
    for (int64_t j = 0; j < vocab; ++j)
      expSum += std::exp(double(load(base + j) - maxValue));
    // logsumexp - logit[label] = log(sum exp(x - max)) - (logit[label] - max)
    sum += std::log(expSum) - double(load(base + label) - maxValue);
    ++count;
  }
  return "";
}

} // namespace

std::string tokenLossKernel(const KernelArgs &args) {
  const char *name = "token_loss";
  if (auto e = expectArity(name, args, 2, 2, 2, 2); !e.empty())
    return e;
  const TensorView &x = args.in[0], &labels = args.in[1], &sum = args.out[0], &count = args.out[1];
  if (x.rank() != 3)
    return "token_loss: logits must be [B, S, V], got " + describe(x);
  if (auto e = expectShape(name, "labels", labels, {x.shape[0], x.shape[1]}); !e.empty())
    return e;
  if (labels.dtype != DType::I64)
    return unsupportedDType(name, labels.dtype);
  if (sum.dtype != DType::F32 || count.dtype != DType::F32)
    return "token_loss: sum and count must be f32";
  if (auto e = expectShape(name, "sum", sum, {}); !e.empty())
    return e;
  if (auto e = expectShape(name, "count", count, {}); !e.empty())
    return e;
  const int64_t rows = x.shape[0] * x.shape[1], vocab = x.shape[2];
  double total = 0.0;
  int64_t n = 0;
  std::string err;
  switch (x.dtype) {
  case DType::F32: {
    const float *p = x.as<float>();
    err = tokenLossRows(labels, rows, vocab, [p](int64_t i) { return widen(p[i]); }, total, n);
    break;
  }
  case DType::BF16: {
    const uint16_t *p = x.as<uint16_t>();
    err = tokenLossRows(labels, rows, vocab, [p](int64_t i) { return bf16ToF32(p[i]); }, total, n);
    break;
  }
  case DType::F16: {
    const uint16_t *p = x.as<uint16_t>();
    err = tokenLossRows(labels, rows, vocab, [p](int64_t i) { return f16ToF32(p[i]); }, total, n);
    break;
  }
  default: return unsupportedDType(name, x.dtype);
  }
  if (!err.empty())
    return err;
  *sum.as<float>() = static_cast<float>(total);
  *count.as<float>() = static_cast<float>(n);
  return "";
}

} // namespace shardc::rt::cpu
