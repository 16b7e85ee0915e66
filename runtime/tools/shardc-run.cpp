// shardc-run: loads a .shardc artifact, reads inputs from an .npz, runs it on the CPU backend
// and writes the outputs to an .npz. Every failure is one "shardc-run: error: ..." line, exit 1.
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/Npz.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <variant>

#ifndef SHARDC_VERSION
#error "SHARDC_VERSION must be defined by the build"
#endif

using namespace shardc::rt;

namespace {

constexpr const char *kUsage =
    "usage: shardc-run MODEL.shardc [--inputs IN.npz] [--outputs OUT.npz] [--print-steps]\n"
    "                  [--verbose] [--version]\n"
    "  --inputs IN.npz    one array per artifact input, named as the input\n"
    "  --outputs OUT.npz  where to write the outputs (f16/bf16 are written as f32);\n"
    "                     without it, their names, dtypes and shapes are printed\n"
    "  --print-steps      print the step list before running\n"
    "  --verbose          print arena, weight and step figures on stderr\n";

struct Options {
  std::string model, inputs, outputs;
  bool printSteps = false, verbose = false, version = false, help = false;
};

int fail(const std::string &message) {
  std::fprintf(stderr, "shardc-run: error: %s\n", message.c_str());
  return 1;
}

std::string parseOptions(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char *flag, std::string &out) -> std::string {
      std::string prefix = std::string(flag) + "=";
      if (arg.rfind(prefix, 0) == 0) {
        out = arg.substr(prefix.size());
      } else if (i + 1 < argc) {
        out = argv[++i];
      } else {
        return std::string(flag) + " needs a file name";
      }
      return out.empty() ? std::string(flag) + " needs a file name" : "";
    };
    std::string err;
    if (arg == "--inputs" || arg.rfind("--inputs=", 0) == 0)
      err = value("--inputs", o.inputs);
    else if (arg == "--outputs" || arg.rfind("--outputs=", 0) == 0)
      err = value("--outputs", o.outputs);
    else if (arg == "--print-steps")
      o.printSteps = true;
    else if (arg == "--verbose" || arg == "-v")
      o.verbose = true;
    else if (arg == "--version")
      o.version = true;
    else if (arg == "--help" || arg == "-h")
      o.help = true;
    else if (!arg.empty() && arg[0] == '-')
      err = "unknown option '" + arg + "' (see --help)";
    else if (o.model.empty())
      o.model = arg;
    else
      err = "more than one model given ('" + o.model + "', '" + arg + "')";
    if (!err.empty())
      return err;
  }
  if (o.model.empty() && !o.version && !o.help)
    return "no model given (see --help)";
  return "";
}

std::string describeValue(bool b) { return b ? "true" : "false"; }
std::string describeValue(int64_t i) { return std::to_string(i); }
std::string describeValue(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}
std::string describeValue(const std::string &s) { return "\"" + s + "\""; }
template <typename T> std::string describeValue(const std::vector<T> &xs) {
  std::string s = "[";
  for (size_t i = 0; i < xs.size(); ++i)
    s += (i ? "," : "") + describeValue(xs[i]);
  return s + "]";
}

std::string describeAttr(const AttrValue &v) {
  return std::visit([](const auto &x) { return describeValue(x); }, v);
}

void printSteps(const Artifact &a) {
  auto operands = [&](const std::vector<int64_t> &ids) {
    std::string s;
    for (int64_t id : ids) {
      const BufferDesc &b = a.buffers[static_cast<size_t>(id)];
      s += (s.empty() ? "%" : ", %") + std::to_string(id) + ":" + dtypeName(b.dtype) + "[" +
           shapeString(b.shape) + "]";
    }
    return s;
  };
  for (size_t i = 0; i < a.steps.size(); ++i) {
    const Step &s = a.steps[i];
    std::string attrs;
    for (const auto &[key, value] : s.attrs.all())
      attrs += (attrs.empty() ? " {" : ", ") + key + "=" + describeAttr(value);
    if (!attrs.empty())
      attrs += "}";
    std::printf("step %zu: %s(%s) -> %s%s%s%s\n", i, s.op.c_str(), operands(s.in).c_str(),
                operands(s.out).c_str(), attrs.c_str(), s.loc.empty() ? "" : "  @ ",
                s.loc.c_str());
  }
}

int runMain(int argc, char **argv) {
  Options o;
  if (std::string err = parseOptions(argc, argv, o); !err.empty())
    return fail(err);
  if (o.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (o.version) {
    std::printf("shardc-run %s (artifact format %u)\n", SHARDC_VERSION, kArtifactFormatVersion);
    return 0;
  }

  Artifact artifact;
  if (std::string err = loadArtifact(o.model, artifact); !err.empty())
    return fail(err);
  if (o.printSteps)
    printSteps(artifact);

  // Read the inputs before binding weights: a wrong input file should fail fast.
  std::vector<HostTensor> inputs;
  if (!o.inputs.empty())
    if (std::string err = readNpz(o.inputs, inputs); !err.empty())
      return fail(err);
  if (std::string err = checkInputs(artifact, inputs); !err.empty())
    return fail((o.inputs.empty() ? std::string("no --inputs given") : o.inputs) + ": " + err);

  CpuBackend backend;
  std::unique_ptr<Executor> executor;
  if (std::string err = Executor::create(artifact, backend, executor); !err.empty())
    return fail(o.model + ": " + err);
  std::vector<HostTensor> outputs;
  if (std::string err = executor->run(inputs, outputs); !err.empty())
    return fail(o.model + ": " + err);
  if (o.verbose)
    std::fprintf(stderr,
                 "shardc-run: %s: %zu steps, arena peak %llu of %llu bytes, weights %llu bytes, "
                 "blob %zu bytes\n",
                 o.model.c_str(), artifact.steps.size(),
                 static_cast<unsigned long long>(executor->arenaPeakBytes()),
                 static_cast<unsigned long long>(artifact.arenaBytes),
                 static_cast<unsigned long long>(executor->weightBytes()), artifact.blob.size());

  if (o.outputs.empty()) {
    for (const HostTensor &t : outputs)
      std::printf("%s: %s %s\n", t.name.c_str(), dtypeName(t.dtype), shapeString(t.shape).c_str());
    return 0;
  }
  for (HostTensor &t : outputs)
    t = widenToF32(t);
  if (std::string err = writeNpz(o.outputs, outputs); !err.empty())
    return fail(err);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // Allocation failures and the like end as an error line too, never as an abort.
  try {
    return runMain(argc, argv);
  } catch (const std::exception &e) {
    return fail(e.what());
  }
}
