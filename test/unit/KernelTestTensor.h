// What the SIMT kernel tests share: a host tensor kept as raw bytes, and the CPU backend's
// kernel for an op run on tensors that have view() (the reference each SIMT kernel is
// compared with).
#pragma once

#include "shardc/runtime/Kernel.h"

#include <string>
#include <vector>

namespace shardc::test {

struct ByteTensor {
  rt::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  rt::TensorView view() { return {bytes.data(), dtype, shape}; }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

template <typename T>
std::string runCpuKernel(const char *op, const std::vector<T *> &in, const std::vector<T *> &out,
                         const rt::Attrs &attrs) {
  rt::KernelArgs args;
  for (T *t : in)
    args.in.push_back(t->view());
  for (T *t : out)
    args.out.push_back(t->view());
  args.attrs = &attrs;
  rt::KernelFn fn = rt::lookupCpuKernel(op);
  return fn ? fn(args) : std::string("no CPU kernel ") + op;
}

} // namespace shardc::test
