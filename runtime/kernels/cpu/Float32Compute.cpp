// Conversion loops for every dtype pair (one tight loop per pair, chosen at run time) and the
// f32 staging wrapper that lets one f32 implementation serve the 16-bit float dtypes.
#include "Float32Compute.h"
#include "DTypeDispatch.h"

#include <memory>

namespace shardc::rt::cpu {

void castElements(const TensorView &src, const TensorView &dst) {
  const int64_t n = src.numel();
  dispatchDType(src.dtype, [&](auto from) {
    dispatchDType(dst.dtype, [&](auto to) {
      using From = Elem<decltype(from)::value>;
      using To = Elem<decltype(to)::value>;
      const auto *in = static_cast<const typename From::Storage *>(src.data);
      auto *out = static_cast<typename To::Storage *>(dst.data);
      for (int64_t i = 0; i < n; ++i)
        out[i] = To::from(From::load(in[i]));
    });
  });
}

namespace {

bool needsStaging(DType t, bool keepF64) {
  return t == DType::F16 || t == DType::BF16 || (t == DType::F64 && !keepF64);
}

} // namespace

std::string computeInFloat32(const KernelArgs &args, KernelFn kernel, bool keepF64) {
  bool any = false;
  for (const TensorView &t : args.in)
    any |= needsStaging(t.dtype, keepF64);
  for (const TensorView &t : args.out)
    any |= needsStaging(t.dtype, keepF64);
  if (!any)
    return kernel(args);

  std::vector<std::unique_ptr<float[]>> staging;
  auto stage = [&](const TensorView &t) {
    staging.emplace_back(new float[static_cast<size_t>(t.numel() > 0 ? t.numel() : 1)]);
    return TensorView{staging.back().get(), DType::F32, t.shape};
  };
  KernelArgs staged{args.in, args.out, args.attrs};
  for (TensorView &t : staged.in) {
    if (!needsStaging(t.dtype, keepF64))
      continue;
    TensorView f32 = stage(t);
    castElements(t, f32);
    t = f32;
  }
  for (TensorView &t : staged.out)
    if (needsStaging(t.dtype, keepF64))
      t = stage(t); // outputs are written, not read: no need to convert their old contents
  std::string err = kernel(staged);
  if (!err.empty())
    return err;
  for (size_t i = 0; i < args.out.size(); ++i)
    if (needsStaging(args.out[i].dtype, keepF64))
      castElements(staged.out[i], args.out[i]);
  return "";
}

} // namespace shardc::rt::cpu
