// Kernel profiles from per-step times (see StepProfile.h).
#include "shardc/runtime/StepProfile.h"
#include "shardc/comm/CollectiveKernels.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace shardc::rt {
namespace {

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s;
  for (size_t k = 0; k < shape.size(); ++k)
    s += (k ? "x" : "") + std::to_string(shape[k]);
  return s.empty() ? "scalar" : s;
}

// What a step launches, as a grouping key.
std::string kernelKey(const Artifact &artifact, const Step &step) {
  if (step.op == "fused")
    return "fused " + step.attrs.getString("kernel");
  auto buffer = [&](int64_t id) -> const BufferDesc & { return artifact.buffers[size_t(id)]; };
  std::string key = step.op == "formula" ? "formula " + step.attrs.getString("formula") : step.op;
  if (!step.in.empty())
    key += std::string(" ") + dtypeName(buffer(step.in[0]).dtype);
  if (lookupCollectiveKernel(step.op)) {
    std::string axes;
    auto it = step.attrs.all().find("axes");
    if (it != step.attrs.all().end())
      if (auto *names = std::get_if<std::vector<std::string>>(&it->second))
        for (const std::string &a : *names)
          axes += (axes.empty() ? "" : ",") + a;
    return key + " [" + axes + "] " + (step.in.empty() ? std::string() : shapeText(buffer(step.in[0]).shape));
  }
  std::string ins;
  for (int64_t id : step.in)
    ins += (ins.empty() ? " " : ", ") + shapeText(buffer(id).shape);
  key += ins;
  if (!step.out.empty())
    key += " -> " + shapeText(buffer(step.out[0]).shape);
  if (step.op == "attention" && step.attrs.getBool("causal", false))
    key += " causal";
  if (step.op == "attention" && step.attrs.getInt("window", 0) > 0)
    key += " window " + std::to_string(step.attrs.getInt("window", 0));
  return key;
}

} // namespace

std::vector<KernelProfileRow> kernelProfile(const Artifact &artifact, const std::vector<double> &msPerStep) {
  std::map<std::string, KernelProfileRow> rows;
  double total = 0.0;
  for (size_t i = 0; i < artifact.steps.size() && i < msPerStep.size(); ++i) {
    const Step &s = artifact.steps[i];
    KernelProfileRow &r = rows[kernelKey(artifact, s)];
    if (r.calls == 0)
      r.firstLoc = s.loc;
    ++r.calls;
    r.ms += msPerStep[i];
    r.flops += s.flops;
    total += msPerStep[i];
  }
  std::vector<KernelProfileRow> out;
  for (auto &[key, r] : rows) {
    r.kernel = key;
    r.share = total > 0.0 ? r.ms / total : 0.0;
    out.push_back(r);
  }
  std::stable_sort(out.begin(), out.end(), [](const KernelProfileRow &a, const KernelProfileRow &b) { return a.ms > b.ms; });
  return out;
}

std::string formatKernelProfile(const std::vector<KernelProfileRow> &rows, size_t top) {
  double total = 0.0;
  for (const KernelProfileRow &r : rows)
    total += r.ms;
  char line[160];
  std::snprintf(line, sizeof line, "  %6s %10s %6s %9s  %s\n", "share", "ms/run", "calls", "TFLOP/s", "kernel (first at)");
  std::string s = line;
  for (size_t k = 0; k < rows.size() && k < top; ++k) {
    const KernelProfileRow &r = rows[k];
    std::string rate = r.flops && r.ms > 0.0 ? std::to_string(double(r.flops) / (r.ms * 1e-3) / 1e12) : "-";
    if (rate != "-")
      rate = rate.substr(0, rate.find('.') + 3);
    std::snprintf(line, sizeof line, "  %5.1f%% %10.4f %6lld %9s  ", 100.0 * r.share, r.ms,
                  static_cast<long long>(r.calls), rate.c_str());
    s += line + r.kernel + "  (" + r.firstLoc + ")\n";
  }
  std::snprintf(line, sizeof line, "  %d kernels, %.4f ms per run in steps\n", int(rows.size()), total);
  return s + line;
}

} // namespace shardc::rt
