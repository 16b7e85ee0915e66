// What shardc-run prints: the step list, the rank map, error lines (rank 0's, or every
// rank's with --all-ranks), and rank 0's figures and outputs after a successful run.
#include "RunCli.h"

#include "shardc/runtime/Session.h"
#include "shardc/runtime/StepProfile.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <variant>

namespace shardc::runcli {

namespace {

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

} // namespace

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

RankOutput::RankOutput(const Options &o, const DeviceMesh &mesh, int64_t rank) {
  speaks = rank == 0 || o.allRanks;
  if (o.allRanks && mesh.worldSize() > 1) {
    std::string coords = mesh.describeRank(rank);
    prefix = "[r" + std::to_string(rank) + (coords.empty() ? "" : " " + coords) + "] ";
  }
}

void RankOutput::out(const std::string &line) const {
  if (speaks)
    std::printf("%s%s\n", prefix.c_str(), line.c_str());
}

void RankOutput::err(const std::string &line) const {
  if (speaks)
    std::fprintf(stderr, "%sshardc-run: %s\n", prefix.c_str(), line.c_str());
}

// The rank -> mesh coordinates map, printed by rank 0 at start.
void printRankMap(const Artifact &a, const char *launcher) {
  const DeviceMesh &mesh = a.deviceMesh;
  std::fprintf(stderr, "shardc-run: %lld ranks (%s), mesh %s\n",
               static_cast<long long>(mesh.worldSize()), launcher, mesh.describe().c_str());
  for (int64_t r = 0; r < mesh.worldSize(); ++r) {
    std::vector<int64_t> c = mesh.coords(r);
    std::string coords;
    for (size_t i = 0; i < c.size(); ++i)
      coords += (i ? " " : "") + mesh.axes()[i].name + "=" + std::to_string(c[i]);
    std::fprintf(stderr, "shardc-run: rank %lld: %s\n", static_cast<long long>(r), coords.c_str());
  }
  std::fflush(stderr);
}

std::string withRank(int64_t rank, int64_t worldSize, const std::string &err) {
  return worldSize > 1 && rank != 0 ? "rank " + std::to_string(rank) + ": " + err : err;
}

// One error line: "shardc-run: error: rank 3: ..." or, with --all-ranks, "[r3 tp=1] shardc-run:
// error: ...".
void printRankError(const Options &o, const DeviceMesh &mesh, int64_t rank, const std::string &err) {
  RankOutput say(o, mesh, rank);
  say.speaks = true;
  say.err("error: " + (o.allRanks ? err : withRank(rank, mesh.worldSize(), err)));
}

// "rank R: err" once: errors from the NCCL setup often name their rank already.
std::string rankLine(int64_t rank, const std::string &err) {
  std::string prefix = "rank " + std::to_string(rank) + ": ";
  return err.rfind(prefix, 0) == 0 ? err : prefix + err;
}

std::string worldMismatch(const Artifact &a, int64_t ranks, const std::string &how) {
  return a.path + ": the artifact is compiled for " + std::to_string(a.worldSize) +
         " ranks (mesh " + a.deviceMesh.describe() + "), " + how + " " + std::to_string(ranks);
}

// Rank 0's part after a successful run: figures, then the outputs written or listed.
int finishRank0(const Options &o, const Artifact &artifact, RankRun &run, const RankOutput &say) {
  if (o.verbose)
    say.err(o.model + ": " + std::to_string(artifact.steps.size()) + " steps, arena peak " +
            std::to_string(run.arenaPeak) + " of " + std::to_string(artifact.arenaBytes) +
            " bytes, weights " + std::to_string(run.weightBytes) + " bytes, blob " +
            std::to_string(artifact.blob.size()) + " bytes");
  if (o.verbose && !run.streams.empty())
    say.err(o.model + ": two streams: " + run.streams);
  if (o.checkReplay)
    say.out(std::string("replay: the second and third runs equal the first bit for bit (") +
            (run.replayed ? "the third replayed the graph the second recorded" : "no graph recorded: each run enqueued its steps") +
            "; " + o.backend + ", rank 0)");
  if (o.repeat > 0 && !run.timedMs.empty()) {
    std::vector<double> ms = run.timedMs;
    std::sort(ms.begin(), ms.end());
    double mean = 0;
    for (double m : ms)
      mean += m / double(ms.size());
    size_t n = ms.size();
    double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "timing: %zu runs timed alone (%s; the first run and the graph capture excluded), "
                  "median %.4f ms, best %.4f ms, mean %.4f ms (%s, rank 0)",
                  n, o.profile ? "profiled, steps timed one by one" : "graph replays where the backend records one",
                  median, ms.front(), mean, o.backend.c_str());
    say.out(buf);
  }
  if (o.profile && run.profiledRuns > 0)
    say.out("profile: " + std::to_string(run.profiledRuns) + " run(s) after the first, every step timed alone (" +
            o.backend + ", rank 0); the ten most expensive kernels:\n" +
            formatKernelProfile(kernelProfile(artifact, run.stepMs), 10));
  if (!o.lossesOut.empty())
    if (std::string err = writeLossesJson(o.lossesOut, run.figures); !err.empty())
      return fail(err);
  if (o.outputs.empty()) {
    for (const HostTensor &t : run.outputs)
      say.out(t.name + ": " + dtypeName(t.dtype) + " " + shapeString(t.shape));
    return 0;
  }
  if (std::string err = writeOutputsNpz(o.outputs, run.outputs); !err.empty())
    return fail(err);
  return 0;
}

} // namespace shardc::runcli
