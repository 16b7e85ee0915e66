// The op-name -> CPU kernel table behind lookupCpuKernel. Each entry is wrapped so that a
// kernel never lets an exception (allocation failure) escape into the executor.
#include "CpuKernels.h"
#include "Float32Compute.h"

#include <exception>

namespace shardc::rt {

namespace {

// Attention: the f32 library kernel, or with SHARDC_CPU_ATTENTION=simt the flash kernel
// the CUDA backend runs (16-bit inputs), through the SIMT emulator.
std::string attentionAnyKernel(const KernelArgs &args) {
  return cpu::simtAttentionRequested() ? cpu::flashAttentionSimtKernel(args)
                                       : cpu::viaFloat32<cpu::attentionKernel>(args);
}

template <KernelFn Kernel> std::string guarded(const KernelArgs &args) {
  try {
    return Kernel(args);
  } catch (const std::exception &e) {
    return std::string("kernel failed: ") + e.what();
  } catch (...) {
    return "kernel failed with an unknown exception";
  }
}

struct KernelEntry {
  const char *op;
  KernelFn fn;
};

using namespace cpu;

// viaFloat32: the kernel computes in f32 only; viaFloat32KeepF64: it also has an f64 path;
// no wrapper: the kernel moves bytes or compares decoded values and takes every dtype.
constexpr KernelEntry kKernels[] = {
    {"add", guarded<viaFloat32KeepF64<addKernel>>},
    {"sub", guarded<viaFloat32KeepF64<subKernel>>},
    {"mul", guarded<viaFloat32KeepF64<mulKernel>>},
    {"div", guarded<viaFloat32KeepF64<divKernel>>},
    {"pow", guarded<viaFloat32KeepF64<powKernel>>},
    {"equal", guarded<equalKernel>},
    {"where", guarded<whereKernel>},
    {"neg", guarded<viaFloat32KeepF64<negKernel>>},
    {"sqrt", guarded<viaFloat32KeepF64<sqrtKernel>>},
    {"reciprocal", guarded<viaFloat32KeepF64<reciprocalKernel>>},
    {"exp", guarded<viaFloat32KeepF64<expKernel>>},
    {"log", guarded<viaFloat32KeepF64<logKernel>>},
    {"tanh", guarded<viaFloat32KeepF64<tanhKernel>>},
    {"sigmoid", guarded<viaFloat32KeepF64<sigmoidKernel>>},
    {"erf", guarded<viaFloat32KeepF64<erfKernel>>},
    {"cos", guarded<viaFloat32KeepF64<cosKernel>>},
    {"sin", guarded<viaFloat32KeepF64<sinKernel>>},
    {"silu", guarded<viaFloat32KeepF64<siluKernel>>},
    {"gelu", guarded<viaFloat32KeepF64<geluKernel>>},
    {"isnan", guarded<isnanKernel>},
    {"cast", guarded<castKernel>},
    {"copy", guarded<copyKernel>},
    {"matmul", guarded<viaFloat32<matmulKernel>>},
    {"linear", guarded<viaFloat32<linearKernel>>},
    {"gemm", guarded<viaFloat32<gemmKernel>>},
    {"softmax", guarded<viaFloat32<softmaxKernel>>},
    {"log_softmax", guarded<viaFloat32<logSoftmaxKernel>>},
    {"reduce_sum", guarded<viaFloat32KeepF64<reduceSumKernel>>},
    {"reduce_mean", guarded<viaFloat32KeepF64<reduceMeanKernel>>},
    {"reduce_max", guarded<viaFloat32KeepF64<reduceMaxKernel>>},
    {"transpose", guarded<transposeKernel>},
    {"slice", guarded<sliceKernel>},
    {"concat", guarded<concatKernel>},
    {"split", guarded<splitKernel>},
    {"gather", guarded<gatherKernel>},
    {"gather_elements", guarded<gatherElementsKernel>},
    {"expand", guarded<expandKernel>},
    {"trilu", guarded<triluKernel>},
    {"embedding", guarded<embeddingKernel>},
    {"rms_norm", guarded<viaFloat32<rmsNormKernel>>},
    {"layer_norm", guarded<viaFloat32<layerNormKernel>>},
    {"rotary", guarded<viaFloat32<rotaryKernel>>},
    {"attention", guarded<attentionAnyKernel>},
    {"silu_mul", guarded<viaFloat32KeepF64<siluMulKernel>>},
};

} // namespace

KernelFn lookupCpuKernel(std::string_view op) {
  for (const KernelEntry &entry : kKernels)
    if (op == entry.op)
      return entry.fn;
  return nullptr;
}

std::vector<std::string> cpuKernelNames() {
  std::vector<std::string> names;
  for (const KernelEntry &entry : kKernels)
    names.emplace_back(entry.op);
  return names;
}

} // namespace shardc::rt
