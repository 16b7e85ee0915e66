// The op-name -> CPU kernel table behind lookupCpuKernel. Each entry is wrapped (guarded) so
// that a kernel never lets an exception (allocation failure) escape into the executor.
#include "CpuKernels.h"
#include "Float32Compute.h"

#include <algorithm>

namespace shardc::rt {

namespace {

// Attention: the f32 library kernel, or with SHARDC_CPU_ATTENTION=simt the flash kernel
// the CUDA backend runs (16-bit inputs), through the SIMT emulator, which writes no lse.
std::string attentionAnyKernel(const KernelArgs &args) {
  if (!cpu::simtAttentionRequested())
    return cpu::viaFloat32<cpu::attentionKernel>(args);
  if (args.out.size() > 1)
    return "attention: SHARDC_CPU_ATTENTION=simt does not write the second output lse (unset it for training)";
  return cpu::flashAttentionSimtKernel(args);
}

struct KernelEntry {
  const char *op;
  KernelFn fn;
};

using namespace cpu;

// viaFloat32: the kernel computes in f32 only; viaFloat32KeepF64: it also has an f64 path;
// no wrapper: the kernel moves bytes or compares decoded values and takes every dtype.
// The elementwise formulas (add, exp, ...) are one kernel, `formula`, which runs the row of
// SC_ELEMENTWISE_FORMULAS its attribute names (cpu::lookupFormulaKernel, Elementwise.cpp; each
// row is guarded and computes 16-bit floats in f32 there).
constexpr KernelEntry kKernels[] = {
    {"pow", guarded<viaFloat32KeepF64<powKernel>>},
    {"equal", guarded<equalKernel>},
    {"where", guarded<whereKernel>},
    {"formula", guarded<formulaStepKernel>},
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
    {"dynamic_slice", guarded<dynamicSliceKernel>},
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
    {"token_loss", guarded<tokenLossKernel>}, // reads 16-bit logits in place
    {"attention_grad", guarded<viaFloat32KeepF64<attentionGradKernel>>},
    {"embedding_grad", guarded<viaFloat32KeepF64<embeddingGradKernel>>},
    {"token_loss_grad", guarded<tokenLossGradKernel>}, // reads 16-bit logits in place
    {"token_loss_stats", guarded<tokenLossStatsKernel>}, // LossStats.cpp: vocabulary-parallel loss
    {"token_loss_stats_grad", guarded<tokenLossStatsGradKernel>},
    {"token_loss_combine", guarded<tokenLossCombineKernel>},
    {"less", guarded<lessKernel>},                     // ONNX comparisons, scans, index ops
    {"less_equal", guarded<lessEqualKernel>},
    {"cumsum", guarded<cumsumKernel>},                 // IndexOps.cpp: every dtype
    {"arg_max", guarded<argMaxKernel>},
    {"arg_min", guarded<argMinKernel>},
    {"scatter_elements", guarded<scatterElementsKernel>},
    {"scatter_nd", guarded<scatterNdKernel>},
    {"top_k", guarded<topKKernel>},
    {"gather_nd", guarded<gatherNdKernel>},
    {"moe_experts", guarded<viaFloat32<moeExpertsKernel>>},
    {"moe_router", guarded<moeRouterKernel>},
    {"moe_permute", guarded<moePermuteKernel>},
    {"moe_grouped_gemm", guarded<viaFloat32<moeGroupedGemmKernel>>},
    {"moe_unpermute", guarded<viaFloat32<moeUnpermuteKernel>>},
    {"moe_experts_grad", guarded<viaFloat32<moeExpertsGradKernel>>},
    {"moe_grouped_gemm_grad", guarded<viaFloat32<moeGroupedGemmGradKernel>>},
    {"moe_router_grad", guarded<viaFloat32<moeRouterGradKernel>>},
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

std::vector<std::string> elementwiseFormulaNames() { return cpu::formulaKernelNames(); }

} // namespace shardc::rt
