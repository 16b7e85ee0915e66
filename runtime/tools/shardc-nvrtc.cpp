// shardc-nvrtc: compiles an artifact's generated kernels for a GPU architecture with NVRTC,
// as the CUDA backend does at load, and reports the entry points and the cubin size. Needs no
// GPU: CI uses it to check that the kernels the CPU tests run also build for CUDA.
//   shardc-nvrtc MODEL.shardc|KERNELS.cu [--arch sm_90a] [-o OUT.cubin] [--cache DIR]
#include "shardc/cuda/NvrtcCompiler.h"
#include "shardc/runtime/Artifact.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

int main(int argc, char **argv) {
  std::string input, arch = "sm_90a", output, cache;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--arch" || a == "-o" || a == "--cache") && i + 1 < argc) {
      std::string v = argv[++i];
      (a == "--arch" ? arch : a == "-o" ? output : cache) = v;
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: shardc-nvrtc MODEL.shardc|KERNELS.cu [--arch sm_90a] [-o OUT.cubin] [--cache DIR]\n");
      return 0;
    } else if (input.empty() && a[0] != '-') {
      input = a;
    } else {
      std::fprintf(stderr, "shardc-nvrtc: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (input.empty()) {
    std::fprintf(stderr, "shardc-nvrtc: no input (an artifact or a kernel source)\n");
    return 2;
  }
  std::string source;
  if (input.size() > 7 && input.compare(input.size() - 7, 7, ".shardc") == 0) {
    shardc::rt::Artifact artifact;
    if (std::string err = shardc::rt::loadArtifact(input, artifact); !err.empty()) {
      std::fprintf(stderr, "shardc-nvrtc: %s\n", err.c_str());
      return 1;
    }
    if (artifact.kernels.empty()) {
      std::printf("%s: no generated kernels\n", input.c_str());
      return 0;
    }
    source = std::string(artifact.kernelSource());
  } else {
    std::ifstream in(input, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "shardc-nvrtc: cannot read %s\n", input.c_str());
      return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    source = ss.str();
  }
  shardc::cuda::NvrtcResult result;
  if (std::string err = shardc::cuda::compileWithNvrtc(source, arch, cache, result); !err.empty()) {
    std::fprintf(stderr, "shardc-nvrtc: %s: %s\n", input.c_str(), err.c_str());
    if (!result.log.empty())
      std::fprintf(stderr, "%s\n", result.log.c_str());
    return 1;
  }
  std::printf("%s: %zu kernels compiled for %s by NVRTC, cubin %zu bytes%s\n", input.c_str(),
              result.kernels.size(), arch.c_str(), result.cubin.size(), result.fromCache ? " (cached)" : "");
  for (const std::string &k : result.kernels)
    std::printf("  %s\n", k.c_str());
  if (!output.empty()) {
    std::ofstream o(output, std::ios::binary);
    o.write(result.cubin.data(), static_cast<std::streamsize>(result.cubin.size()));
    if (!o) {
      std::fprintf(stderr, "shardc-nvrtc: cannot write %s\n", output.c_str());
      return 1;
    }
  }
  return 0;
}
