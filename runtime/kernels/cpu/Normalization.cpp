// rms_norm and layer_norm over the trailing dims axis..rank-1, with statistics in double so
// that long rows of f32 (or converted bf16) values do not lose precision in the sums.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "StridedLoops.h"

#include <cmath>

namespace shardc::rt::cpu {

namespace {

// A scale or bias as one dense row over the normalised dims; materialised only when the
// parameter broadcasts (e.g. [H] against normalised dims [S, H]).
class ParameterRow {
public:
  std::string bind(const char *op, const char *what, const TensorView &param,
                   const std::vector<int64_t> &normalizedShape) {
    if (param.dtype != DType::F32)
      return unsupportedDType(op, param.dtype);
    if (!broadcastsTo(param.shape, normalizedShape))
      return std::string(op) + ": " + what + " of shape " + shapeString(param.shape) +
             " does not broadcast to the normalised dims " + shapeString(normalizedShape);
    const int64_t inner = productOf(normalizedShape, 0, normalizedShape.size());
    if (param.numel() == inner) {
      row_ = param.as<float>();
      return "";
    }
    storage_.resize(static_cast<size_t>(inner));
    copyStrided(storage_.data(), param.data, sizeof(float), normalizedShape,
                broadcastStrides(param.shape, normalizedShape));
    row_ = storage_.data();
    return "";
  }
  const float *data() const { return row_; }

private:
  const float *row_ = nullptr;
  std::vector<float> storage_;
};

struct NormShape {
  int64_t outer = 0, inner = 0;
  std::vector<int64_t> normalized;
};

std::string normShape(const char *op, const KernelArgs &args, NormShape &shape) {
  const TensorView &x = args.in[0], &y = args.out[0];
  if (x.dtype != DType::F32 || y.dtype != DType::F32)
    return unsupportedDType(op, x.dtype != DType::F32 ? x.dtype : y.dtype);
  if (auto e = expectShape(op, "y", y, x.shape); !e.empty())
    return e;
  const int64_t axisAttr = args.attrs ? args.attrs->getInt("axis", -1) : -1;
  auto axis = normalizeAxis(axisAttr, x.rank());
  if (!axis)
    return badAxis(op, axisAttr, x.rank());
  shape.normalized.assign(x.shape.begin() + *axis, x.shape.end());
  shape.outer = productOf(x.shape, 0, *axis);
  shape.inner = productOf(x.shape, *axis, x.shape.size());
  return "";
}

// ONNX LayerNormalization's optional Mean / InvStdDev outputs: one f32 per normalised row.
std::string expectStatistic(const char *op, const TensorView *t, int64_t outer) {
  if (!t)
    return "";
  if (t->dtype != DType::F32 || t->numel() != outer)
    return std::string(op) + ": statistics output must be f32 with " + std::to_string(outer) +
           " elements, got " + describe(*t);
  return "";
}

} // namespace

std::string rmsNormKernel(const KernelArgs &args) {
  if (auto e = expectArity("rms_norm", args, 2, 2, 1, 1); !e.empty())
    return e;
  NormShape shape;
  if (auto e = normShape("rms_norm", args, shape); !e.empty())
    return e;
  ParameterRow scale;
  if (auto e = scale.bind("rms_norm", "scale", args.in[1], shape.normalized); !e.empty())
    return e;
  const double epsilon = args.attrs ? args.attrs->getFloat("epsilon", 1e-5) : 1e-5;
  const float *px = args.in[0].as<float>();
  float *py = args.out[0].as<float>();
  const float *s = scale.data();
  for (int64_t r = 0; r < shape.outer; ++r) {
    const float *x = px + r * shape.inner;
    float *y = py + r * shape.inner;
    double sumSquares = 0.0;
    for (int64_t i = 0; i < shape.inner; ++i)
      sumSquares += static_cast<double>(x[i]) * x[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sumSquares / shape.inner + epsilon));
    for (int64_t i = 0; i < shape.inner; ++i)
      y[i] = x[i] * inv * s[i];
  }
  return "";
}

std::string layerNormKernel(const KernelArgs &args) {
  if (auto e = expectArity("layer_norm", args, 2, 3, 1, 3); !e.empty())
    return e;
  NormShape shape;
  if (auto e = normShape("layer_norm", args, shape); !e.empty())
    return e;
  ParameterRow scale, bias;
  if (auto e = scale.bind("layer_norm", "scale", args.in[1], shape.normalized); !e.empty())
    return e;
  if (args.in.size() > 2)
    if (auto e = bias.bind("layer_norm", "bias", args.in[2], shape.normalized); !e.empty())
      return e;
  const TensorView *meanOut = args.out.size() > 1 ? &args.out[1] : nullptr;
  const TensorView *invStdOut = args.out.size() > 2 ? &args.out[2] : nullptr;
  if (auto e = expectStatistic("layer_norm", meanOut, shape.outer); !e.empty())
    return e;
  if (auto e = expectStatistic("layer_norm", invStdOut, shape.outer); !e.empty())
    return e;
  const double epsilon = args.attrs ? args.attrs->getFloat("epsilon", 1e-5) : 1e-5;
  const float *px = args.in[0].as<float>();
  float *py = args.out[0].as<float>();
  const float *s = scale.data();
  const float *b = bias.data();
  for (int64_t r = 0; r < shape.outer; ++r) {
    const float *x = px + r * shape.inner;
    float *y = py + r * shape.inner;
    double sum = 0.0;
    for (int64_t i = 0; i < shape.inner; ++i)
      sum += x[i];
    const double mean = sum / shape.inner;
    double sumSquares = 0.0; // two passes: no cancellation from E[x²] - E[x]²
    for (int64_t i = 0; i < shape.inner; ++i)
      sumSquares += (x[i] - mean) * (x[i] - mean);
    const double invStd = 1.0 / std::sqrt(sumSquares / shape.inner + epsilon);
    const float m = static_cast<float>(mean), inv = static_cast<float>(invStd);
    for (int64_t i = 0; i < shape.inner; ++i)
      y[i] = (x[i] - m) * inv * s[i] + (b ? b[i] : 0.0f);
    if (meanOut)
      meanOut->as<float>()[r] = m;
    if (invStdOut)
      invStdOut->as<float>()[r] = inv;
  }
  return "";
}

} // namespace shardc::rt::cpu
