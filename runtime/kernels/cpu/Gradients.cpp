// Backward kernels of the training graph (the compiler's autodiff emits them where a VJP does
// not compose from forward ops): attention_grad (flash-style, from the forward's log-sum-exp),
// embedding_grad (scatter-add of the output gradient into the table's rows) and
// token_loss_grad (softmax minus one-hot, times the loss sum's gradient).
// attention_grad and embedding_grad compute f32 and f64 natively (16-bit tensors through
// viaFloat32KeepF64); token_loss_grad reads 16-bit logits in place, as token_loss does.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "Sgemm.h"
#include "StridedLoops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace shardc::rt::cpu {

namespace {

// C[M,N] = alpha * op(A) op(B) + beta * C (row-major): sgemm for f32, plain loops for f64.
void gemmT(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
           const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemmT(bool tA, bool tB, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
           const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < K; ++p)
        acc += (tA ? A[p * lda + i] : A[i * lda + p]) * (tB ? B[j * ldb + p] : B[p * ldb + j]);
      C[i * ldc + j] = alpha * acc + (beta == 0.0 ? 0.0 : beta * C[i * ldc + j]);
    }
}

// Element i of a f32 or f64 tensor, widened to double.
double floatAt(const TensorView &t, int64_t i) {
  return t.dtype == DType::F64 ? t.as<double>()[i] : static_cast<double>(t.as<float>()[i]);
}

// ---------------------------------------------------------------------------------------------
// attention_grad

constexpr int64_t kQueryBlock = 64; // query rows per block, as the forward

struct GradShape {
  int64_t B = 0, Hq = 0, Hkv = 0, S = 0, T = 0, D = 0, Dv = 0;
};

std::string checkAttentionGrad(const KernelArgs &args, GradShape &sh) {
  const char *op = "attention_grad";
  const TensorView &q = args.in[0], &k = args.in[1], &v = args.in[2], &out = args.in[3],
                   &lse = args.in[4], &dout = args.in[5];
  if (q.dtype != DType::F32 && q.dtype != DType::F64)
    return unsupportedDType(op, q.dtype);
  if (auto e = expectSameDType(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"dout", &dout},
                                    {"dq", &args.out[0]}, {"dk", &args.out[1]}, {"dv", &args.out[2]}});
      !e.empty())
    return e;
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return "attention_grad: q, k, v must be [B, H, S, D], got " + shapeString(q.shape) + ", " +
           shapeString(k.shape) + ", " + shapeString(v.shape);
  sh = {q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], v.shape[3]};
  if (k.shape[0] != sh.B || v.shape[0] != sh.B || v.shape[1] != sh.Hkv || v.shape[2] != sh.T ||
      k.shape[3] != sh.D)
    return "attention_grad: inconsistent shapes q " + shapeString(q.shape) + ", k " + shapeString(k.shape) +
           ", v " + shapeString(v.shape);
  if (sh.Hkv == 0 || sh.Hq % sh.Hkv != 0)
    return "attention_grad: " + std::to_string(sh.Hq) + " query heads are not a multiple of " +
           std::to_string(sh.Hkv) + " kv heads";
  if (auto e = expectShape(op, "out", out, {sh.B, sh.Hq, sh.S, sh.Dv}); !e.empty())
    return e;
  if (auto e = expectShape(op, "dout", dout, {sh.B, sh.Hq, sh.S, sh.Dv}); !e.empty())
    return e;
  if (lse.dtype != DType::F32 && lse.dtype != DType::F64)
    return "attention_grad: lse must be f32, not " + std::string(dtypeName(lse.dtype));
  if (auto e = expectShape(op, "lse", lse, {sh.B, sh.Hq, sh.S}); !e.empty())
    return e;
  if (auto e = expectShape(op, "dq", args.out[0], q.shape); !e.empty())
    return e;
  if (auto e = expectShape(op, "dk", args.out[1], k.shape); !e.empty())
    return e;
  if (auto e = expectShape(op, "dv", args.out[2], v.shape); !e.empty())
    return e;
  if (args.in.size() > 6) {
    const TensorView &mask = args.in[6];
    if (mask.dtype != DType::F32 && mask.dtype != DType::F64 && mask.dtype != DType::Bool)
      return "attention_grad: mask must be float (additive) or bool, not " + std::string(dtypeName(mask.dtype));
    if (!broadcastsTo(mask.shape, {sh.B, sh.Hq, sh.S, sh.T}))
      return "attention_grad: mask of shape " + shapeString(mask.shape) + " does not broadcast to " +
             shapeString({sh.B, sh.Hq, sh.S, sh.T});
  }
  return "";
}

// dq, dk, dv of attention in compute type T (float or double). Per (batch, kv head), every
// query head of its group and every block of query rows: recompute the scores s and the
// probabilities p = exp(s - lse), then dp = dout v^T, ds = p (dp - rowsum(dout * out)),
// dq = scale ds k, and dk += scale ds^T q, dv += p^T dout, accumulated in double.
template <typename T> void attentionGrad(const KernelArgs &args, const GradShape &sh) {
  const TensorView *mask = args.in.size() > 6 ? &args.in[6] : nullptr;
  const T scale = static_cast<T>(args.attrs && args.attrs->has("scale")
                                     ? args.attrs->getFloat("scale")
                                     : 1.0 / std::sqrt(static_cast<double>(sh.D)));
  const bool causal = args.attrs && args.attrs->getBool("causal", false);
  const std::vector<int64_t> maskStrides =
      mask ? broadcastStrides(mask->shape, {sh.B, sh.Hq, sh.S, sh.T}) : std::vector<int64_t>(4, 0);
  const T negInf = -std::numeric_limits<T>::infinity();
  const int64_t group = sh.Hq / sh.Hkv, block = std::min(kQueryBlock, sh.S);
  const T *q = args.in[0].as<T>(), *k = args.in[1].as<T>(), *v = args.in[2].as<T>();
  const T *o = args.in[3].as<T>(), *dout = args.in[5].as<T>();
  const TensorView &lse = args.in[4];
  T *dq = args.out[0].as<T>(), *dk = args.out[1].as<T>(), *dv = args.out[2].as<T>();
  std::vector<T> p(static_cast<size_t>(block * sh.T)), dp(p.size());
  std::vector<T> partK(static_cast<size_t>(sh.T * sh.D)), partV(static_cast<size_t>(sh.T * sh.Dv));
  std::vector<double> accK(partK.size()), accV(partV.size());

  for (int64_t b = 0; b < sh.B; ++b)
    for (int64_t kvHead = 0; kvHead < sh.Hkv; ++kvHead) {
      const T *kh = k + (b * sh.Hkv + kvHead) * sh.T * sh.D;
      const T *vh = v + (b * sh.Hkv + kvHead) * sh.T * sh.Dv;
      std::fill(accK.begin(), accK.end(), 0.0);
      std::fill(accV.begin(), accV.end(), 0.0);
      for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
        const int64_t head = (b * sh.Hq + h) * sh.S;
        const T *qh = q + head * sh.D, *oh = o + head * sh.Dv, *doh = dout + head * sh.Dv;
        T *dqh = dq + head * sh.D;
        for (int64_t s0 = 0; s0 < sh.S; s0 += kQueryBlock) {
          const int64_t rows = std::min(kQueryBlock, sh.S - s0);
          // Causal (upper-left aligned, as the forward): this block sees the first s0 + rows keys.
          const int64_t keys = causal ? std::min(sh.T, s0 + rows) : sh.T;
          gemmT(false, true, rows, keys, sh.D, scale, qh + s0 * sh.D, sh.D, kh, sh.D, T(0), p.data(), keys);
          gemmT(false, true, rows, keys, sh.Dv, T(1), doh + s0 * sh.Dv, sh.Dv, vh, sh.Dv, T(0), dp.data(), keys);
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = s0 + r;
            T *pr = p.data() + r * keys, *dpr = dp.data() + r * keys;
            if (mask) {
              const int64_t base = b * maskStrides[0] + h * maskStrides[1] + i * maskStrides[2];
              for (int64_t j = 0; j < keys; ++j) {
                const int64_t at = base + j * maskStrides[3];
                if (mask->dtype == DType::Bool)
                  pr[j] = mask->as<uint8_t>()[at] ? pr[j] : negInf;
                else
                  pr[j] += static_cast<T>(floatAt(*mask, at));
              }
            }
            if (causal)
              for (int64_t j = i + 1; j < keys; ++j)
                pr[j] = negInf;
            const double rowLse = floatAt(lse, head + i);
            double rowD = 0.0; // dout_i . out_i
            for (int64_t d = 0; d < sh.Dv; ++d)
              rowD += static_cast<double>(doh[i * sh.Dv + d]) * static_cast<double>(oh[i * sh.Dv + d]);
            for (int64_t j = 0; j < keys; ++j) {
              const bool none = pr[j] == negInf || rowLse == -std::numeric_limits<double>::infinity();
              const double pij = none ? 0.0 : std::exp(static_cast<double>(pr[j]) - rowLse);
              pr[j] = static_cast<T>(pij);
              dpr[j] = static_cast<T>(pij * (static_cast<double>(dpr[j]) - rowD)); // ds
            }
          }
          gemmT(false, false, rows, sh.D, keys, scale, dp.data(), keys, kh, sh.D, T(0), dqh + s0 * sh.D, sh.D);
          gemmT(true, false, keys, sh.D, rows, scale, dp.data(), keys, qh + s0 * sh.D, sh.D, T(0), partK.data(),
                sh.D);
          gemmT(true, false, keys, sh.Dv, rows, T(1), p.data(), keys, doh + s0 * sh.Dv, sh.Dv, T(0), partV.data(),
                sh.Dv);
          for (int64_t x = 0; x < keys * sh.D; ++x)
            accK[x] += partK[x];
          for (int64_t x = 0; x < keys * sh.Dv; ++x)
            accV[x] += partV[x];
        }
      }
      T *dkh = dk + (b * sh.Hkv + kvHead) * sh.T * sh.D, *dvh = dv + (b * sh.Hkv + kvHead) * sh.T * sh.Dv;
      for (size_t x = 0; x < accK.size(); ++x)
        dkh[x] = static_cast<T>(accK[x]);
      for (size_t x = 0; x < accV.size(); ++x)
        dvh[x] = static_cast<T>(accV[x]);
    }
}

// ---------------------------------------------------------------------------------------------
// embedding_grad

std::string expectIds(const char *op, const TensorView &t) {
  if (t.dtype == DType::I64 || t.dtype == DType::I32)
    return "";
  return std::string(op) + ": ids must be i64 or i32, not " + dtypeName(t.dtype);
}

int64_t idAt(const TensorView &t, int64_t i) {
  return t.dtype == DType::I64 ? t.as<int64_t>()[i] : t.as<int32_t>()[i];
}

template <typename T>
void scatterRows(const TensorView &ids, const TensorView &dy, const TensorView &dtable, int64_t start,
                 int64_t padding) {
  const int64_t vocab = dtable.shape[0], hidden = dtable.shape[1];
  // f32 accumulates in f32 (the table's own precision), f64 in f64: T is both.
  T *table = dtable.as<T>();
  const T *grad = dy.as<T>();
  std::fill(table, table + vocab * hidden, T(0));
  for (int64_t n = 0; n < ids.numel(); ++n) {
    const int64_t id = idAt(ids, n);
    if (id == padding || id < start || id >= start + vocab)
      continue;
    T *dst = table + (id - start) * hidden;
    const T *src = grad + n * hidden;
    for (int64_t c = 0; c < hidden; ++c)
      dst[c] += src[c];
  }
}

// ---------------------------------------------------------------------------------------------
// token_loss_grad

constexpr int64_t kIgnoreIndex = -100; // Hugging Face's ignore index, as token_loss

template <typename Load, typename Store>
void softmaxMinusOneHot(const int64_t *labels, int64_t rows, int64_t vocab, double dsum, Load load, Store store) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r * vocab, label = labels[r];
    if (label == kIgnoreIndex) {
      for (int64_t j = 0; j < vocab; ++j)
        store(base + j, 0.0f);
      continue;
    }
    float maxValue = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < vocab; ++j)
      maxValue = std::max(maxValue, load(base + j));
    double expSum = 0.0;
    for (int64_t j = 0; j < vocab; ++j)
      expSum += std::exp(double(load(base + j) - maxValue));
    const double inv = 1.0 / expSum;
    for (int64_t j = 0; j < vocab; ++j) {
      const double pj = std::exp(double(load(base + j) - maxValue)) * inv;
      store(base + j, static_cast<float>(dsum * (pj - (j == label ? 1.0 : 0.0))));
    }
  }
}

} // namespace

std::string attentionGradKernel(const KernelArgs &args) {
  if (auto e = expectArity("attention_grad", args, 6, 7, 3, 3); !e.empty())
    return e;
  GradShape sh;
  if (auto e = checkAttentionGrad(args, sh); !e.empty())
    return e;
  if (args.in[0].dtype == DType::F64)
    attentionGrad<double>(args, sh);
  else
    attentionGrad<float>(args, sh);
  return "";
}

std::string embeddingGradKernel(const KernelArgs &args) {
  const char *op = "embedding_grad";
  if (auto e = expectArity(op, args, 2, 3, 1, 1); !e.empty())
    return e;
  const TensorView &ids = args.in[0], &dy = args.in[1], &dtable = args.out[0];
  if (auto e = expectIds(op, ids); !e.empty())
    return e;
  if (dy.dtype != DType::F32 && dy.dtype != DType::F64)
    return unsupportedDType(op, dy.dtype);
  if (auto e = expectSameDType(op, {{"dy", &dy}, {"dtable", &dtable}}); !e.empty())
    return e;
  if (dtable.rank() != 2)
    return "embedding_grad: dtable must be [V, H], got " + shapeString(dtable.shape);
  std::vector<int64_t> expected = ids.shape;
  expected.push_back(dtable.shape[1]);
  if (auto e = expectShape(op, "dy", dy, expected); !e.empty())
    return e;
  const int64_t vocab = dtable.shape[0];
  // Vocabulary parallel: the third input is the first row this rank's dtable holds, of a
  // vocab_size table; ids outside those rows add nothing here.
  int64_t start = 0, total = vocab;
  if (args.in.size() == 3) {
    const TensorView &first = args.in[2];
    if (first.dtype != DType::I64 || first.numel() != 1)
      return "embedding_grad: row_start must be one i64, got " + describe(first);
    if (!args.attrs || !args.attrs->has("vocab_size"))
      return "embedding_grad: a row_start needs the attribute vocab_size";
    start = first.as<int64_t>()[0];
    total = args.attrs->getInt("vocab_size");
  }
  // padding_idx: absent or -1 (the schema's default) means none.
  const int64_t padding = args.attrs ? args.attrs->getInt("padding_idx", -1) : -1;
  if (padding < -1)
    return "embedding_grad: padding_idx " + std::to_string(padding) + " is negative (-1 means none)";
  for (int64_t n = 0; n < ids.numel(); ++n) {
    const int64_t id = idAt(ids, n);
    if (id < 0 || id >= total)
      return "embedding_grad: id " + std::to_string(id) + " is outside the vocabulary [0, " +
             std::to_string(total) + ")";
  }
  if (dy.dtype == DType::F64)
    scatterRows<double>(ids, dy, dtable, start, padding);
  else
    scatterRows<float>(ids, dy, dtable, start, padding);
  return "";
}

std::string tokenLossGradKernel(const KernelArgs &args) {
  const char *op = "token_loss_grad";
  if (auto e = expectArity(op, args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &labels = args.in[1], &dsum = args.in[2], &dx = args.out[0];
  if (x.rank() != 3)
    return "token_loss_grad: logits must be [B, S, V], got " + describe(x);
  if (auto e = expectShape(op, "labels", labels, {x.shape[0], x.shape[1]}); !e.empty())
    return e;
  if (labels.dtype != DType::I64)
    return "token_loss_grad: labels must be i64, not " + std::string(dtypeName(labels.dtype));
  if (dsum.dtype != DType::F32 || dsum.numel() != 1)
    return "token_loss_grad: dsum must be one f32, got " + describe(dsum);
  if (auto e = expectSameDType(op, {{"logits", &x}, {"dlogits", &dx}}); !e.empty())
    return e;
  if (auto e = expectShape(op, "dlogits", dx, x.shape); !e.empty())
    return e;
  const int64_t rows = x.shape[0] * x.shape[1], vocab = x.shape[2];
  const int64_t *pl = labels.as<int64_t>();
  for (int64_t r = 0; r < rows; ++r)
    if (pl[r] != kIgnoreIndex && (pl[r] < 0 || pl[r] >= vocab))
      return "token_loss_grad: label " + std::to_string(pl[r]) + " at position " + std::to_string(r) +
             " is outside [0, " + std::to_string(vocab) + ") and is not the ignore index -100";
  const double g = dsum.as<float>()[0];
  switch (x.dtype) {
  case DType::F32: {
    const float *p = x.as<float>();
    float *d = dx.as<float>();
    softmaxMinusOneHot(pl, rows, vocab, g, [p](int64_t i) { return p[i]; }, [d](int64_t i, float v) { d[i] = v; });
    break;
  }
  case DType::BF16: {
    const uint16_t *p = x.as<uint16_t>();
    uint16_t *d = dx.as<uint16_t>();
    softmaxMinusOneHot(pl, rows, vocab, g, [p](int64_t i) { return bf16ToF32(p[i]); },
                       [d](int64_t i, float v) { d[i] = f32ToBf16(v); });
    break;
  }
  case DType::F16: {
    const uint16_t *p = x.as<uint16_t>();
    uint16_t *d = dx.as<uint16_t>();
    softmaxMinusOneHot(pl, rows, vocab, g, [p](int64_t i) { return f16ToF32(p[i]); },
                       [d](int64_t i, float v) { d[i] = f32ToF16(v); });
    break;
  }
  default: return unsupportedDType(op, x.dtype);
  }
  return "";
}

} // namespace shardc::rt::cpu
