// The vocabulary-parallel loss on the CPU: token_loss_stats, token_loss_stats_grad and
// token_loss_combine run the row and element functions of shardc/kernels/LossKernels.h, the
// source the CUDA backend launches, in a loop. Logits f32, bf16, f16 or f64.
#include "CpuKernels.h"
#include "KernelChecks.h"

#include "shardc/kernels/LossKernels.h"

namespace shardc::rt::cpu {

namespace {

kernels::AnyType anyType(DType d) { return kernels::AnyType(int(d)); }

bool isLossFloat(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16 || d == DType::F64; }
DType rowDType(DType logits) { return logits == DType::F64 ? DType::F64 : DType::F32; }

// Checks what the three kernels share and fills the params: logits [B, S, V] (in[0]), labels
// (in[1]) and max (in[2]) [B, S]; the optional vocab_start (one i64) is `startAt`.
std::string planRows(const char *op, const KernelArgs &args, size_t startAt, kernels::TokenLossStatsParams &p) {
  const TensorView &x = args.in[0], &labels = args.in[1], &max = args.in[2];
  if (x.rank() != 3 || !isLossFloat(x.dtype))
    return std::string(op) + ": logits must be float [B, S, V], got " + describe(x);
  const std::vector<int64_t> bs{x.shape[0], x.shape[1]};
  if (auto e = expectShape(op, "labels", labels, bs); !e.empty())
    return e;
  if (labels.dtype != DType::I64)
    return std::string(op) + ": labels must be i64, got " + describe(labels);
  if (auto e = expectShape(op, "max", max, bs); !e.empty())
    return e;
  if (max.dtype != x.dtype)
    return std::string(op) + ": max must have the logits' dtype, got " + describe(max);
  if (args.in.size() > startAt) {
    const TensorView &start = args.in[startAt];
    if (start.dtype != DType::I64 || start.numel() != 1)
      return std::string(op) + ": vocab_start must be one i64, got " + describe(start);
    p.vocabStart = start.as<int64_t>();
  }
  p.logits = x.data;
  p.type = anyType(x.dtype);
  p.labels = labels.as<int64_t>();
  p.max = max.data;
  p.rows = x.shape[0] * x.shape[1];
  p.vocab = x.shape[2];
  return "";
}

std::string expectRow(const char *op, const char *what, const TensorView &t, const std::vector<int64_t> &shape,
                      DType dtype) {
  if (auto e = expectShape(op, what, t, shape); !e.empty())
    return e;
  if (t.dtype != dtype)
    return std::string(op) + ": " + what + " must be " + dtypeName(dtype) + ", got " + describe(t);
  return "";
}

} // namespace

// token_loss_stats: logits, labels, max [, vocab_start] -> sumexp, picked.
std::string tokenLossStatsKernel(const KernelArgs &args) {
  const char *op = "token_loss_stats";
  if (auto e = expectArity(op, args, 3, 4, 2, 2); !e.empty())
    return e;
  kernels::TokenLossStatsParams p;
  if (auto e = planRows(op, args, 3, p); !e.empty())
    return e;
  const std::vector<int64_t> bs{args.in[0].shape[0], args.in[0].shape[1]};
  const DType rt = rowDType(args.in[0].dtype);
  for (auto [what, t] : {std::pair{"sumexp", &args.out[0]}, std::pair{"picked", &args.out[1]}})
    if (auto e = expectRow(op, what, *t, bs, rt); !e.empty())
      return e;
  p.sumexp = args.out[0].data;
  p.picked = args.out[1].data;
  for (int64_t r = 0; r < p.rows; ++r)
    kernels::tokenLossStatsRow(p, r);
  return "";
}

// token_loss_stats_grad: logits, labels, max, dsumexp, dpicked [, vocab_start] -> dlogits.
std::string tokenLossStatsGradKernel(const KernelArgs &args) {
  const char *op = "token_loss_stats_grad";
  if (auto e = expectArity(op, args, 5, 6, 1, 1); !e.empty())
    return e;
  kernels::TokenLossStatsParams p;
  if (auto e = planRows(op, args, 5, p); !e.empty())
    return e;
  const TensorView &x = args.in[0];
  const std::vector<int64_t> bs{x.shape[0], x.shape[1]};
  const DType rt = rowDType(x.dtype);
  for (auto [what, t] : {std::pair{"dsumexp", &args.in[3]}, std::pair{"dpicked", &args.in[4]}})
    if (auto e = expectRow(op, what, *t, bs, rt); !e.empty())
      return e;
  if (auto e = expectShape(op, "dlogits", args.out[0], x.shape); !e.empty())
    return e;
  if (args.out[0].dtype != x.dtype)
    return std::string(op) + ": dlogits must have the logits' dtype, got " + describe(args.out[0]);
  p.dsumexp = args.in[3].data;
  p.dpicked = args.in[4].data;
  p.dlogits = args.out[0].data;
  for (int64_t i = 0; i < p.rows * p.vocab; ++i)
    kernels::tokenLossStatsGradAt(p, i);
  return "";
}

// token_loss_combine: sumexp, picked, max, labels -> sum, count.
std::string tokenLossCombineKernel(const KernelArgs &args) {
  const char *op = "token_loss_combine";
  if (auto e = expectArity(op, args, 4, 4, 2, 2); !e.empty())
    return e;
  const TensorView &sumexp = args.in[0], &picked = args.in[1], &max = args.in[2], &labels = args.in[3];
  if (sumexp.rank() != 2 || (sumexp.dtype != DType::F32 && sumexp.dtype != DType::F64))
    return std::string(op) + ": sumexp must be f32 or f64 [B, S], got " + describe(sumexp);
  for (auto [what, t] : {std::pair{"picked", &picked}})
    if (auto e = expectRow(op, what, *t, sumexp.shape, sumexp.dtype); !e.empty())
      return e;
  if (auto e = expectShape(op, "max", max, sumexp.shape); !e.empty())
    return e;
  if (!isLossFloat(max.dtype))
    return std::string(op) + ": max must be float, got " + describe(max);
  if (auto e = expectRow(op, "labels", labels, sumexp.shape, DType::I64); !e.empty())
    return e;
  for (const TensorView *t : {&args.out[0], &args.out[1]})
    if (t->numel() != 1 || t->dtype != sumexp.dtype)
      return std::string(op) + ": sum and count must be scalars of sumexp's dtype, got " + describe(*t);
  kernels::TokenLossCombineParams p;
  p.sumexp = sumexp.data;
  p.picked = picked.data;
  p.max = max.data;
  p.rowType = anyType(sumexp.dtype);
  p.maxType = anyType(max.dtype);
  p.labels = labels.as<int64_t>();
  p.sum = args.out[0].data;
  p.count = args.out[1].data;
  p.rows = sumexp.numel();
  kernels::tokenLossCombine(p);
  return "";
}

} // namespace shardc::rt::cpu
