// shardc-run --check-backend cuda MODEL.shardc: which steps of the artifact the CUDA backend
// could not run, found without a GPU. The artifact is one SPMD program (every rank runs the
// same steps on chunks of the same shapes), so its load steps and run steps are walked once:
//   - library steps against the CUDA backend's kernel table (CudaKernelTable.h), whose
//     predicates the backend itself asks before every launch;
//   - generated kernels (`fused` steps) by compiling the artifact's kernel source with NVRTC
//     for sm_90a, as the backend does at load (NVRTC needs no device), and looking each
//     step's kernel up among the compiled entry points;
//   - collectives (the communicator's) and process_index (the executor's) need no kernel.
// One line per missing (step kind, dtypes) combination with its count and first step, then
// "checked N steps ...". Exit 0: all covered; 1: something is missing; 2: no answer (a build
// without CUDA, an unreadable artifact).
#include "RunCli.h"

#include "shardc/comm/CollectiveKernels.h"

#if defined(SHARDC_HAVE_CUDA)
#include "CudaBackend.h"
#include "CudaKernelTable.h"
#include "shardc/cuda/NvrtcCompiler.h"
#endif

#include <cstdio>
#include <map>
#include <set>

namespace shardc::runcli {

namespace {

constexpr const char *kArch = "sm_90a"; // what the runtime's CUDA kernels are built for

int noAnswer(const std::string &message) {
  std::fprintf(stderr, "shardc-run: error: %s\n", message.c_str());
  return 2;
}

#if defined(SHARDC_HAVE_CUDA)
struct Gap {
  std::string what, first, reason;
  size_t count = 0;
};

// "f32,i64 -> f32": the dtypes of a step's inputs and outputs.
std::string signature(const KernelArgs &a) {
  std::string s;
  for (size_t i = 0; i < a.in.size(); ++i)
    s += (i ? "," : "") + std::string(dtypeName(a.in[i].dtype));
  s += " ->";
  for (size_t i = 0; i < a.out.size(); ++i)
    s += (i ? "," : " ") + std::string(dtypeName(a.out[i].dtype));
  return s;
}
#endif

} // namespace

int checkBackend(const Options &o) {
  if (o.checkBackend != "cuda")
    return noAnswer("--check-backend: only cuda can be checked, not '" + o.checkBackend + "'");
#if !defined(SHARDC_HAVE_CUDA)
  return noAnswer("--check-backend cuda: this shardc-run was built without CUDA (its kernel table and NVRTC "
                  "are not in it)");
#else
  Artifact a;
  if (std::string err = loadArtifact(o.model, a); !err.empty())
    return noAnswer(err);
  std::vector<TensorView> views(a.buffers.size());
  for (const BufferDesc &b : a.buffers)
    views[size_t(b.id)] = TensorView{nullptr, b.dtype, b.shape};

  std::vector<Gap> gaps;
  std::map<std::string, size_t> gapIndex;
  auto addGap = [&](const std::string &what, const std::string &where, const std::string &reason) {
    auto [it, fresh] = gapIndex.emplace(what, gaps.size());
    if (fresh)
      gaps.push_back({what, where, reason, 0});
    ++gaps[it->second].count;
  };
  struct FusedUse {
    std::string kernel, where;
  };
  std::vector<FusedUse> fused;
  size_t checked = 0, library = 0, collectives = 0;
  auto walk = [&](const std::vector<Step> &steps, const char *kind) {
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step &s = steps[i];
      ++checked;
      const std::string where = std::string(kind) + " " + std::to_string(i) + " (" + s.op + " @ " + s.loc + ")";
      if (s.op == kProcessIndexStep)
        continue;
      if (lookupCollectiveKernel(s.op)) {
        ++collectives;
        continue;
      }
      if (s.op == "fused") {
        fused.push_back({s.attrs.getString("kernel"), where});
        continue;
      }
      KernelArgs args;
      for (int64_t id : s.in)
        args.in.push_back(views[size_t(id)]);
      for (int64_t id : s.out)
        args.out.push_back(views[size_t(id)]);
      args.attrs = &s.attrs;
      ++library;
      const cuda::CudaKernelEntry *entry = cuda::findCudaKernel(s.op);
      std::string reason = entry ? cuda::cudaKernelAccepts(*entry, args) : "no CUDA kernel for this step kind";
      if (!reason.empty())
        addGap(s.op + " " + signature(args), where, reason);
    }
  };
  walk(a.loadSteps, "load step");
  walk(a.steps, "step");

  size_t compiled = 0;
  if (!fused.empty()) {
    cuda::NvrtcResult result;
    if (std::string err = cuda::compileWithNvrtc(a.kernelSource(), kArch, cuda::kernelCacheDir(), result);
        !err.empty()) {
      for (const FusedUse &f : fused)
        addGap("generated kernels (NVRTC)", f.where, err);
    } else {
      compiled = result.kernels.size();
      std::set<std::string> names(result.kernels.begin(), result.kernels.end());
      for (const FusedUse &f : fused)
        if (!names.count(f.kernel))
          addGap("generated kernel '" + f.kernel + "'", f.where, "not an entry point of the NVRTC-compiled module");
    }
  }

  for (const Gap &g : gaps)
    std::printf("missing: %s: %zu step%s, first %s: %s\n", g.what.c_str(), g.count, g.count == 1 ? "" : "s",
                g.first.c_str(), g.reason.c_str());
  std::printf("checked %zu steps (%zu load, %zu run; %zu library, %zu generated-kernel, %zu collective; %zu "
              "generated kernels compiled by NVRTC for %s): %s\n",
              checked, a.loadSteps.size(), a.steps.size(), library, fused.size(), collectives, compiled, kArch,
              gaps.empty() ? "the CUDA backend covers every step" : "the CUDA backend lacks the above");
  return gaps.empty() ? 0 : 1;
#endif
}

} // namespace shardc::runcli
