// The name of the CPU target that generated kernels are built for here and that a runtime
// built here can load: the compiler records it with the shared object it builds, the CPU
// backend looks for its own.
#pragma once

namespace shardc::kernels {

inline const char *hostKernelTarget() {
#if defined(__x86_64__)
  return "x86_64-linux";
#elif defined(__aarch64__)
  return "aarch64-linux";
#else
  return "unknown";
#endif
}

} // namespace shardc::kernels
