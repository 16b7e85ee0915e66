// SHARDC_CPU_ATTENTION=simt: 16-bit attention steps run the CUDA backend's flash kernel
// (shardc/kernels/FlashAttention.h) through the SIMT emulator instead of the f32 library
// kernel, so that end-to-end tests run whole models on the kernel the GPU runs. Slow (every
// thread a fiber); for tests. A step the flash kernel cannot take is an error in this mode,
// so a test cannot pass on the library kernel by accident.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "StridedLoops.h"

#include "shardc/kernels/FlashAttention.h"
#include "shardc/kernels/Simt.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace shardc::rt::cpu {

bool simtAttentionRequested() {
  static const bool requested = [] {
    const char *v = std::getenv("SHARDC_CPU_ATTENTION");
    return v && std::strcmp(v, "simt") == 0;
  }();
  return requested;
}

std::string flashAttentionSimtKernel(const KernelArgs &args) {
  if (auto e = expectArity("attention", args, 3, 4, 1, 1); !e.empty())
    return e;
  const TensorView &q = args.in[0], &k = args.in[1], &v = args.in[2], &y = args.out[0];
  const char *why = nullptr;
  if (q.dtype != DType::BF16 && q.dtype != DType::F16)
    why = "inputs are not bf16 or f16";
  else if (k.dtype != q.dtype || v.dtype != q.dtype || y.dtype != q.dtype)
    why = "q, k, v and y differ in dtype";
  else if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    why = "q, k, v are not 4-D";
  else if (!kernels::flashAttentionSupportsHeadDim(q.shape[3]) || k.shape[3] != q.shape[3] ||
           v.shape[3] != q.shape[3])
    why = "the head dim is not 32, 64 or 128 for q, k and v alike";
  else if (args.in.size() > 3 && args.in[3].dtype != DType::Bool && args.in[3].dtype != DType::F32)
    why = "the mask is neither bool nor f32";
  else if (reinterpret_cast<uintptr_t>(k.data) % 16 || reinterpret_cast<uintptr_t>(v.data) % 16 ||
           reinterpret_cast<uintptr_t>(q.data) % 4 || reinterpret_cast<uintptr_t>(y.data) % 4)
    why = "k or v is not 16-byte aligned (or q, y not 4-byte aligned)";
  if (why)
    return std::string("attention: SHARDC_CPU_ATTENTION=simt, but the flash kernel cannot take this step: ") + why +
           " (q " + shapeString(q.shape) + " " + dtypeName(q.dtype) + ")";
  kernels::FlashAttentionParams p;
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.y = y.data;
  p.B = q.shape[0];
  p.Hq = q.shape[1];
  p.Hkv = k.shape[1];
  p.S = q.shape[2];
  p.T = k.shape[2];
  if (p.Hkv == 0 || p.Hq % p.Hkv != 0)
    return "attention: " + std::to_string(p.Hq) + " query heads are not a multiple of " +
           std::to_string(p.Hkv) + " kv heads";
  p.scale = static_cast<float>(args.attrs && args.attrs->has("scale")
                                   ? args.attrs->getFloat("scale")
                                   : 1.0 / std::sqrt(static_cast<double>(q.shape[3])));
  p.causal = args.attrs && args.attrs->getBool("causal", false);
  if (args.in.size() > 3) {
    const TensorView &m = args.in[3];
    p.mask = m.data;
    p.maskKind = m.dtype == DType::Bool ? 1 : 2;
    const std::vector<int64_t> strides = broadcastStrides(m.shape, {p.B, p.Hq, p.S, p.T});
    for (int e = 0; e < 4; ++e)
      p.maskStride[e] = strides[size_t(e)];
  }
  const bool bf16 = q.dtype == DType::BF16;
  const int d = int(q.shape[3]);
  simt::LaunchShape shape{int(kernels::flashAttentionGridX(p.S)), int(p.B * p.Hq), kernels::kFlashThreads,
                          kernels::flashAttentionSharedBytes(d)};
  std::string err = simt::launch(shape, [&] {
    if (d == 32) bf16 ? kernels::flashAttentionForward<true, 32>(p) : kernels::flashAttentionForward<false, 32>(p);
    else if (d == 64) bf16 ? kernels::flashAttentionForward<true, 64>(p) : kernels::flashAttentionForward<false, 64>(p);
    else bf16 ? kernels::flashAttentionForward<true, 128>(p) : kernels::flashAttentionForward<false, 128>(p);
  });
  return err.empty() ? "" : "attention (flash kernel, emulated): " + err;
}

} // namespace shardc::rt::cpu
