// Attention building blocks: rotate-half rotary embedding and scaled dot-product attention
// (GQA, additive or boolean mask, causal), computed a block of query rows at a time on sgemm;
// optionally also each query row's log-sum-exp of its scores, which attention_grad
// (Gradients.cpp) recomputes the probabilities from.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "Sgemm.h"
#include "StridedLoops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace shardc::rt::cpu {

std::string rotaryKernel(const KernelArgs &args) {
  if (auto e = expectArity("rotary", args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &cos = args.in[1], &sin = args.in[2], &y = args.out[0];
  for (const TensorView *t : {&x, &cos, &sin, &y})
    if (t->dtype != DType::F32)
      return unsupportedDType("rotary", t->dtype);
  if (x.rank() < 1 || x.shape.back() % 2 != 0)
    return "rotary: last dim must be even, got " + shapeString(x.shape);
  if (auto e = expectShape("rotary", "y", y, x.shape); !e.empty())
    return e;
  for (const TensorView *t : {&cos, &sin})
    if (!broadcastsTo(t->shape, x.shape))
      return "rotary: cos/sin of shape " + shapeString(t->shape) + " do not broadcast to " +
             shapeString(x.shape);
  const int64_t D = x.shape.back(), half = D / 2;
  // Walk the rows of D elements: the outer dims with broadcast strides, the last dim by hand
  // since rotate_half pairs element d with d ± D/2.
  const std::vector<int64_t> outer(x.shape.begin(), x.shape.end() - 1);
  auto outerStrides = [&](const TensorView &t) {
    std::vector<int64_t> s = broadcastStrides(t.shape, x.shape);
    s.pop_back();
    return s;
  };
  const int64_t cosStep = broadcastStrides(cos.shape, x.shape).back();
  const int64_t sinStep = broadcastStrides(sin.shape, x.shape).back();
  const float *px = x.as<float>(), *pc = cos.as<float>(), *ps = sin.as<float>();
  float *py = y.as<float>();
  forEachRow<3>(outer, {outerStrides(x), outerStrides(cos), outerStrides(sin)}, {0, 0, 0},
                [&](const std::array<int64_t, 3> &off, int64_t n, const std::array<int64_t, 3> &st) {
                  for (int64_t r = 0; r < n; ++r) {
                    const float *xr = px + off[0] + r * st[0];
                    const float *c = pc + off[1] + r * st[1];
                    const float *s = ps + off[2] + r * st[2];
                    float *yr = py + off[0] + r * st[0];
                    for (int64_t d = 0; d < half; ++d) {
                      const float lo = xr[d], hi = xr[d + half];
                      yr[d] = lo * c[d * cosStep] - hi * s[d * sinStep];
                      yr[d + half] = hi * c[(d + half) * cosStep] + lo * s[(d + half) * sinStep];
                    }
                  }
                });
  return "";
}

namespace {

// Query rows per sgemm block: the score buffer is kQueryBlock x T floats per call.
constexpr int64_t kQueryBlock = 64;

struct AttentionShape {
  int64_t B = 0, Hq = 0, Hkv = 0, S = 0, T = 0, D = 0, Dv = 0;
};

std::string checkAttention(const KernelArgs &args, AttentionShape &sh) {
  const TensorView &q = args.in[0], &k = args.in[1], &v = args.in[2], &y = args.out[0];
  for (const TensorView *t : {&q, &k, &v, &y})
    if (t->dtype != DType::F32)
      return unsupportedDType("attention", t->dtype);
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return "attention: q, k, v must be [B, H, S, D], got " + shapeString(q.shape) + ", " +
           shapeString(k.shape) + ", " + shapeString(v.shape);
  sh = {q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], v.shape[3]};
  if (k.shape[0] != sh.B || v.shape[0] != sh.B || v.shape[1] != sh.Hkv || v.shape[2] != sh.T ||
      k.shape[3] != sh.D)
    return "attention: inconsistent shapes q " + shapeString(q.shape) + ", k " +
           shapeString(k.shape) + ", v " + shapeString(v.shape);
  if (sh.Hkv == 0 || sh.Hq % sh.Hkv != 0)
    return "attention: " + std::to_string(sh.Hq) + " query heads are not a multiple of " +
           std::to_string(sh.Hkv) + " kv heads";
  if (auto e = expectShape("attention", "y", y, {sh.B, sh.Hq, sh.S, sh.Dv}); !e.empty())
    return e;
  if (args.out.size() > 1) {
    const TensorView &lse = args.out[1];
    if (lse.dtype != DType::F32)
      return "attention: lse must be f32, not " + std::string(dtypeName(lse.dtype));
    if (auto e = expectShape("attention", "lse", lse, {sh.B, sh.Hq, sh.S}); !e.empty())
      return e;
  }
  if (args.in.size() > 3) {
    const TensorView &mask = args.in[3];
    if (mask.dtype != DType::F32 && mask.dtype != DType::Bool)
      return "attention: mask must be f32 (additive) or bool, not " + std::string(dtypeName(mask.dtype));
    if (!broadcastsTo(mask.shape, {sh.B, sh.Hq, sh.S, sh.T}))
      return "attention: mask of shape " + shapeString(mask.shape) + " does not broadcast to " +
             shapeString({sh.B, sh.Hq, sh.S, sh.T});
  }
  return "";
}

} // namespace

// Outputs y and, optionally, lse [B, Hq, S] (f32): log(sum_j exp(s_ij)) of the row's scaled,
// masked, causal scores s_ij, max-subtracted; -inf for a row with nothing to attend to.
std::string attentionKernel(const KernelArgs &args) {
  if (auto e = expectArity("attention", args, 3, 4, 1, 2); !e.empty())
    return e;
  AttentionShape sh;
  if (auto e = checkAttention(args, sh); !e.empty())
    return e;
  const TensorView *mask = args.in.size() > 3 ? &args.in[3] : nullptr;
  const float scale = static_cast<float>(
      args.attrs && args.attrs->has("scale") ? args.attrs->getFloat("scale")
                                              : 1.0 / std::sqrt(static_cast<double>(sh.D)));
  const bool causal = args.attrs && args.attrs->getBool("causal", false);
  // A sliding window (causal only): query i sees keys i - window < j <= i. The mask, which
  // masks the rest too, is still applied; the window only spares the keys before the band.
  const int64_t window = causal && args.attrs ? args.attrs->getInt("window", 0) : 0;
  const std::vector<int64_t> maskStrides =
      mask ? broadcastStrides(mask->shape, {sh.B, sh.Hq, sh.S, sh.T}) : std::vector<int64_t>(4, 0);
  const float negInf = -std::numeric_limits<float>::infinity();
  const int64_t group = sh.Hq / sh.Hkv;
  const float *q = args.in[0].as<float>(), *k = args.in[1].as<float>(), *v = args.in[2].as<float>();
  float *y = args.out[0].as<float>();
  float *lse = args.out.size() > 1 ? args.out[1].as<float>() : nullptr;
  std::vector<float> scores(static_cast<size_t>(std::min(kQueryBlock, sh.S) * sh.T));

  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t h = 0; h < sh.Hq; ++h) {
      const int64_t kvHead = h / group;
      const float *qh = q + (b * sh.Hq + h) * sh.S * sh.D;
      const float *kh = k + (b * sh.Hkv + kvHead) * sh.T * sh.D;
      const float *vh = v + (b * sh.Hkv + kvHead) * sh.T * sh.Dv;
      float *yh = y + (b * sh.Hq + h) * sh.S * sh.Dv;
      for (int64_t s0 = 0; s0 < sh.S; s0 += kQueryBlock) {
        const int64_t rows = std::min(kQueryBlock, sh.S - s0);
        // Causal (upper-left aligned): query i sees keys j <= i, so this block needs only
        // the first s0 + rows keys; with a window, none before s0 - window + 1. Scores column
        // c is key lo + c.
        const int64_t lo = window > 0 ? std::min(sh.T, std::max<int64_t>(0, s0 - window + 1)) : 0;
        const int64_t keys = (causal ? std::min(sh.T, s0 + rows) : sh.T) - lo;
        sgemm(false, true, rows, keys, sh.D, scale, qh + s0 * sh.D, sh.D, kh + lo * sh.D, sh.D, 0.0f,
              scores.data(), keys);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = s0 + r;
          float *row = scores.data() + r * keys;
          if (mask) {
            const int64_t base = b * maskStrides[0] + h * maskStrides[1] + i * maskStrides[2] + lo * maskStrides[3];
            if (mask->dtype == DType::Bool) {
              const uint8_t *m = mask->as<uint8_t>() + base;
              for (int64_t j = 0; j < keys; ++j)
                if (!m[j * maskStrides[3]])
                  row[j] = negInf;
            } else {
              const float *m = mask->as<float>() + base;
              for (int64_t j = 0; j < keys; ++j)
                row[j] += m[j * maskStrides[3]];
            }
          }
          if (causal)
            for (int64_t j = std::max<int64_t>(0, i + 1 - lo); j < keys; ++j)
              row[j] = negInf;
          if (window > 0)
            for (int64_t j = 0; j < std::min(keys, i - window + 1 - lo); ++j)
              row[j] = negInf;
          float maxScore = negInf;
          for (int64_t j = 0; j < keys; ++j)
            maxScore = std::max(maxScore, row[j]);
          float *lseAt = lse ? lse + (b * sh.Hq + h) * sh.S + i : nullptr;
          if (maxScore == negInf) { // nothing to attend to: the row's output is zero
            std::fill(row, row + keys, 0.0f);
            if (lseAt)
              *lseAt = negInf;
            continue;
          }
          double sum = 0.0;
          for (int64_t j = 0; j < keys; ++j) {
            row[j] = std::exp(row[j] - maxScore);
            sum += row[j];
          }
          if (lseAt)
            *lseAt = static_cast<float>(maxScore + std::log(sum));
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t j = 0; j < keys; ++j)
            row[j] *= inv;
        }
        sgemm(false, false, rows, sh.Dv, keys, 1.0f, scores.data(), keys, vh + lo * sh.Dv, sh.Dv, 0.0f,
              yh + s0 * sh.Dv, sh.Dv);
      }
    }
  return "";
}

} // namespace shardc::rt::cpu
