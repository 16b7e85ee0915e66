// The communicator-independent parts: group resolution and caching, the one reduction
// routine every implementation uses (so results agree bit for bit), durations for timeouts.
#include "shardc/comm/Communicator.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace shardc::rt {

std::optional<ReduceOp> parseReduceOp(std::string_view name) {
  if (name == "sum")
    return ReduceOp::Sum;
  if (name == "max")
    return ReduceOp::Max;
  return std::nullopt;
}

const char *reduceOpName(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : "max"; }

std::string rankList(const std::vector<int64_t> &ranks) {
  std::string s;
  for (int64_t r : ranks)
    s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

std::string CommGroup::describe() const {
  std::string s;
  for (int64_t r : ranks)
    s += (s.empty() ? "" : ",") + std::to_string(r);
  return axesString(axes) + " (ranks " + s + ")";
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  size_t unitAt = 0;
  while (unitAt < text.size() && (std::isdigit(static_cast<unsigned char>(text[unitAt])) ||
                                  text[unitAt] == '.'))
    ++unitAt;
  if (unitAt == 0)
    return std::nullopt;
  std::string number(text.substr(0, unitAt));
  char *end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (!end || *end != '\0' || !std::isfinite(value))
    return std::nullopt;
  std::string_view unit = text.substr(unitAt);
  double ms;
  if (unit.empty() || unit == "s")
    ms = value * 1000;
  else if (unit == "ms")
    ms = value;
  else if (unit == "m" || unit == "min")
    ms = value * 60000;
  else if (unit == "h")
    ms = value * 3600000;
  else
    return std::nullopt;
  if (!(ms >= 1) || ms > 1e12)
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::string formatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gs", static_cast<double>(ms) / 1000);
  return buf;
}

bool isReducible(DType dtype) {
  switch (dtype) {
  case DType::F32: case DType::F64: case DType::BF16: case DType::F16: case DType::I64:
  case DType::I32:
    return true;
  default:
    return false;
  }
}

namespace {

template <typename T> T combine(ReduceOp op, T a, T b) {
  if (op == ReduceOp::Sum) {
    if constexpr (std::is_integral_v<T>) // wraps, as the integer kernels do
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) +
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a + b;
  }
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b))
      return std::isnan(a) ? a : b;
  return a < b ? b : a;
}

template <typename T>
void reduceTyped(ReduceOp op, const void *const *srcs, size_t n, int64_t count, void *out) {
  T *dst = static_cast<T *>(out);
  for (int64_t i = 0; i < count; ++i) {
    T acc = static_cast<const T *>(srcs[0])[i];
    for (size_t j = 1; j < n; ++j)
      acc = combine(op, acc, static_cast<const T *>(srcs[j])[i]);
    dst[i] = acc;
  }
}

template <float (*ToF32)(uint16_t), uint16_t (*FromF32)(float)>
void reduceHalf(ReduceOp op, const void *const *srcs, size_t n, int64_t count, void *out) {
  uint16_t *dst = static_cast<uint16_t *>(out);
  for (int64_t i = 0; i < count; ++i) {
    float acc = ToF32(static_cast<const uint16_t *>(srcs[0])[i]);
    for (size_t j = 1; j < n; ++j)
      acc = combine(op, acc, ToF32(static_cast<const uint16_t *>(srcs[j])[i]));
    dst[i] = FromF32(acc);
  }
}

} // namespace

void reduceInOrder(DType dtype, ReduceOp op, const void *const *srcs, size_t nsrcs, int64_t count,
                   void *out) {
  switch (dtype) {
  case DType::F32: return reduceTyped<float>(op, srcs, nsrcs, count, out);
  case DType::F64: return reduceTyped<double>(op, srcs, nsrcs, count, out);
  case DType::I64: return reduceTyped<int64_t>(op, srcs, nsrcs, count, out);
  case DType::I32: return reduceTyped<int32_t>(op, srcs, nsrcs, count, out);
  case DType::BF16: return reduceHalf<bf16ToF32, f32ToBf16>(op, srcs, nsrcs, count, out);
  case DType::F16: return reduceHalf<f16ToF32, f32ToF16>(op, srcs, nsrcs, count, out);
  default: return; // callers check isReducible first
  }
}

Communicator::~Communicator() = default;

std::string Communicator::group(const std::vector<std::string> &axes, const CommGroup *&out) {
  for (const auto &g : groups_)
    if (g->axes == axes) {
      out = g.get();
      return "";
    }
  if (std::string err = mesh_.checkAxes(axes); !err.empty())
    return err;
  auto g = std::make_unique<CommGroup>();
  g->id = static_cast<int>(groups_.size());
  g->axes = axes;
  g->ranks = mesh_.groupRanks(rank_, axes);
  g->index = mesh_.groupIndex(rank_, axes);
  if (std::string err = createGroup(*g); !err.empty())
    return "group " + axesString(axes) + ": " + err;
  groups_.push_back(std::move(g));
  out = groups_.back().get();
  return "";
}

} // namespace shardc::rt
