// NVRTC compilation of generated kernels (see NvrtcCompiler.h).
#include "shardc/cuda/NvrtcCompiler.h"

#include <nvrtc.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace shardc::cuda {

namespace {

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::string firstErrorLine(const std::string &log) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line))
    if (line.find("error") != std::string::npos)
      return line;
  return log.substr(0, log.find('\n'));
}

} // namespace

std::vector<std::string> kernelNames(std::string_view source) {
  std::vector<std::string> names;
  const std::string_view marker = "SC_KERNEL ";
  for (size_t at = source.find(marker); at != std::string_view::npos; at = source.find(marker, at + 1)) {
    // Skip the macro's own definition lines.
    if (at > 0 && source[at - 1] != '\n')
      continue;
    size_t start = at + marker.size(), end = source.find('(', start);
    if (end == std::string_view::npos)
      break;
    names.emplace_back(source.substr(start, end - start));
  }
  return names;
}

std::string compileWithNvrtc(std::string_view source, const std::string &arch, const std::string &cacheDir,
                             NvrtcResult &out) {
  out = NvrtcResult{};
  out.kernels = kernelNames(source);
  int major = 0, minor = 0;
  if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
    return "nvrtcVersion failed";
  std::string archOption = "-arch=" + arch;
  const char *options[] = {"-std=c++17", archOption.c_str(), "--fmad=false", "-default-device"};
  std::string key;
  std::string cachePath;
  if (!cacheDir.empty()) {
    uint64_t h = fnv1a(source);
    for (const char *o : options)
      h = fnv1a(o, h);
    h = fnv1a(std::to_string(major) + "." + std::to_string(minor), h);
    cachePath = cacheDir + "/cuda-" + hex(h) + "-" + arch + ".cubin";
    if (readFile(cachePath, out.cubin)) {
      out.fromCache = true;
      return "";
    }
  }

  nvrtcProgram prog;
  std::string src(source);
  if (nvrtcCreateProgram(&prog, src.c_str(), "shardc_kernels.cu", 0, nullptr, nullptr) != NVRTC_SUCCESS)
    return "nvrtcCreateProgram failed";
  nvrtcResult rc = nvrtcCompileProgram(prog, static_cast<int>(sizeof options / sizeof options[0]), options);
  size_t logSize = 0;
  nvrtcGetProgramLogSize(prog, &logSize);
  out.log.resize(logSize);
  if (logSize)
    nvrtcGetProgramLog(prog, out.log.data());
  while (!out.log.empty() && (out.log.back() == '\0' || out.log.back() == '\n'))
    out.log.pop_back();
  if (rc != NVRTC_SUCCESS) {
    nvrtcDestroyProgram(&prog);
    return std::string("NVRTC (") + nvrtcGetErrorString(rc) + ") for " + arch + ": " + firstErrorLine(out.log);
  }
  size_t cubinSize = 0;
  if (nvrtcGetCUBINSize(prog, &cubinSize) != NVRTC_SUCCESS || cubinSize == 0) {
    nvrtcDestroyProgram(&prog);
    return "NVRTC produced no cubin for " + arch + " (a virtual arch such as compute_90 gives PTX only)";
  }
  out.cubin.resize(cubinSize);
  nvrtcGetCUBIN(prog, out.cubin.data());
  nvrtcDestroyProgram(&prog);

  if (!cachePath.empty()) {
    std::error_code ec; // every missing folder (~/.cache/shardc/kernels on a fresh machine)
    std::filesystem::create_directories(cacheDir, ec);
    std::string tmp = cachePath + ".tmp" + std::to_string(::getpid());
    std::ofstream o(tmp, std::ios::binary);
    o.write(out.cubin.data(), static_cast<std::streamsize>(out.cubin.size()));
    o.close();
    if (!o || std::rename(tmp.c_str(), cachePath.c_str()) != 0)
      std::remove(tmp.c_str()); // a cache that cannot be written is not an error
  }
  return "";
}

} // namespace shardc::cuda
