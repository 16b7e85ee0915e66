// The CPU backend's fused kernels: the artifact carries a shared object built from the
// generated source for this CPU; it is loaded from memory (memfd) with dlopen, so nothing is
// written to disk and every rank gets its own copy.
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Backend.h"
#include "shardc/kernels/KernelTarget.h"

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

namespace shardc::rt {

const char *CpuBackend::kernelTarget() { return kernels::hostKernelTarget(); }

CpuBackend::~CpuBackend() {
  if (module_)
    dlclose(module_);
}

std::string CpuBackend::loadKernels(const Artifact &artifact) {
  if (artifact.kernels.empty() || module_)
    return "";
  const KernelObject *object = nullptr;
  std::string targets;
  for (const KernelObject &o : artifact.kernels.objects) {
    targets += (targets.empty() ? "" : ", ") + o.target;
    if (o.target == kernelTarget())
      object = &o;
  }
  if (!object)
    return std::string("the artifact's fused kernels are built for ") + (targets.empty() ? "no CPU" : targets) +
           ", not this " + kernelTarget() + " CPU; recompile the model here";
  int fd = memfd_create("shardc-kernels", MFD_CLOEXEC);
  if (fd < 0)
    return std::string("memfd_create failed: ") + std::strerror(errno);
  const char *bytes = reinterpret_cast<const char *>(artifact.blob.data()) + object->offset;
  for (uint64_t done = 0; done < object->bytes;) {
    ssize_t n = ::write(fd, bytes + done, object->bytes - done);
    if (n <= 0) {
      std::string err = std::string("writing the kernel object failed: ") + std::strerror(errno);
      ::close(fd);
      return err;
    }
    done += static_cast<uint64_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  module_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ::close(fd); // the mapping keeps the contents
  if (!module_)
    return std::string("loading the fused kernels failed: ") + dlerror();
  return "";
}

namespace {

// A kernel of the loaded object: its `<name>_host(void *const *args)` entry, run in place.
class CpuFusedKernel final : public FusedKernel {
public:
  using Entry = void (*)(void *const *args);
  explicit CpuFusedKernel(Entry entry) : entry_(entry) {}
  std::string run(void *const *args, std::string_view, int64_t) const override {
    entry_(args);
    return "";
  }

private:
  Entry entry_;
};

} // namespace

const FusedKernel *CpuBackend::lookupFused(std::string_view name) const {
  if (!module_)
    return nullptr;
  if (auto it = fused_.find(name); it != fused_.end())
    return it->second.get();
  std::string symbol = std::string(name) + "_host";
  auto entry = reinterpret_cast<CpuFusedKernel::Entry>(dlsym(module_, symbol.c_str()));
  if (!entry)
    return nullptr;
  auto &slot = fused_[std::string(name)];
  slot = std::make_unique<CpuFusedKernel>(entry);
  return slot.get();
}

} // namespace shardc::rt
