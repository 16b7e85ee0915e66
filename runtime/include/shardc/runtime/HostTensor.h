// A named tensor owning its bytes in host memory: what .npz files hold and what the executor
// takes as inputs and gives back as outputs.
#pragma once

#include "shardc/runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc::rt {

struct HostTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data; // dense row-major, numel() * dtypeSize(dtype) bytes

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

} // namespace shardc::rt
