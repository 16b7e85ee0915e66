// shardc-run with the test-only hooks, built only with the tests (the shipped shardc-run has
// none). The same command line (runtime/tools, library shardc_run_cli), plus:
//
// SHARDC_TEST_EXIT_AT_STEP=R:S: rank R disappears just before step S without telling its
// peers (a process _exits with status 3 after one line; a thread stops), so that the timeout
// and dead-peer paths can be tested (mpi_run_test.sh kill).
//
// SHARDC_TEST_DIE_IN_SAVE=R:S: during the checkpoint save after step S, rank R dies after
// writing its files and before the ranks meet to commit them (a process _exits with status 3;
// a thread fails its save, and the other ranks' barrier fails), so that the previous
// checkpoint must stay the committed one (e2e.train.checkpoint.*, check_checkpoint.py).
//
// SHARDC_TEST_PERTURB_MODULE=path, for `shardc verify --bisect`: in a sharded run (world size
// > 1) on host memory, every f32 output of a step whose location names `path` gets +0.5 on
// its first element, a deliberate divergence for the bisection (e2e.verify.bisect).
#include "RunMain.h"

#include "shardc/runtime/Session.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <unistd.h>

using namespace shardc::rt;

namespace {

constexpr const char *kStoppedByHook = "stopped by SHARDC_TEST_EXIT_AT_STEP";

// SHARDC_TEST_EXIT_AT_STEP (or `var`) as rank and step; -1s when unset.
std::string testExitAtStep(int64_t &rank, int64_t &step, const char *var = "SHARDC_TEST_EXIT_AT_STEP") {
  rank = step = -1;
  const char *env = std::getenv(var);
  if (!env || !*env)
    return "";
  long long r = -1, s = -1;
  char tail = 0;
  if (std::sscanf(env, "%lld:%lld%c", &r, &s, &tail) != 2 || r < 0 || s < 0)
    return std::string(var) + "='" + std::string(env) + "' is not RANK:STEP";
  rank = r;
  step = s;
  return "";
}

void installExitAtStep(Session &session, bool rankIsProcess) {
  int64_t exitRank, exitStep;
  (void)testExitAtStep(exitRank, exitStep); // validated by `check`
  if (exitRank != session.rank())
    return;
  int64_t rank = session.rank();
  session.executor().setBeforeStep([rank, exitStep, rankIsProcess](size_t step) -> std::string {
    if (static_cast<int64_t>(step) != exitStep)
      return "";
    if (rankIsProcess) {
      std::fprintf(stderr,
                   "shardc-run: rank %lld: SHARDC_TEST_EXIT_AT_STEP: exiting before step "
                   "%lld (test hook)\n",
                   static_cast<long long>(rank), static_cast<long long>(exitStep));
      std::fflush(stderr);
      ::_exit(3);
    }
    return kStoppedByHook;
  });
}

void installPerturb(Session &session) {
  const char *perturb = std::getenv("SHARDC_TEST_PERTURB_MODULE");
  if (!perturb || !*perturb || session.worldSize() <= 1 || !session.backend().hostAddressable())
    return;
  std::string module = perturb;
  session.executor().setAfterStep([&art = session.artifact(), module](size_t step, const std::vector<TensorView> &outs) {
    const std::string &loc = art.steps[step].loc;
    size_t at = loc.find(module);
    // The module and its submodules, not a longer name that starts with it (layers.1 vs
    // layers.10).
    if (at == std::string::npos ||
        (at + module.size() < loc.size() && std::isdigit(static_cast<unsigned char>(loc[at + module.size()]))))
      return;
    for (const TensorView &t : outs)
      if (t.dtype == DType::F32 && t.numel() > 0)
        t.as<float>()[0] += 0.5f;
  });
}

// SHARDC_TEST_PERTURB_RUN=N, for shardc-run --check-replay: in run N (from 1) the lowest bit
// of every output of the last step is flipped (any dtype), so that run differs from the others.
void installPerturbRun(Session &session) {
  const char *env = std::getenv("SHARDC_TEST_PERTURB_RUN");
  if (!env || !*env || !session.backend().hostAddressable() || session.artifact().steps.empty())
    return;
  long target = std::strtol(env, nullptr, 10);
  size_t last = session.artifact().steps.size() - 1;
  auto runs = std::make_shared<long>(0);
  session.executor().setAfterStep([target, last, runs](size_t step, const std::vector<TensorView> &outs) {
    if (step != last || ++*runs != target)
      return;
    for (const TensorView &t : outs)
      if (t.bytes() > 0)
        t.as<unsigned char>()[0] ^= 1;
  });
}

} // namespace

int main(int argc, char **argv) {
  shardc::runcli::RunHooks hooks;
  hooks.check = [] {
    int64_t rank, step;
    std::string err = testExitAtStep(rank, step);
    return err.empty() ? testExitAtStep(rank, step, "SHARDC_TEST_DIE_IN_SAVE") : err;
  };
  hooks.beforeCommit = [](int64_t rank, int64_t steps, bool rankIsProcess) -> std::string {
    int64_t dieRank, dieStep;
    (void)testExitAtStep(dieRank, dieStep, "SHARDC_TEST_DIE_IN_SAVE");
    if (rank != dieRank || steps != dieStep)
      return "";
    std::string line = "SHARDC_TEST_DIE_IN_SAVE: dying in the save after step " + std::to_string(steps) +
                       ", its files written, before the commit (test hook)";
    if (rankIsProcess) {
      std::fprintf(stderr, "shardc-run: rank %lld: %s\n", static_cast<long long>(rank), line.c_str());
      std::fflush(stderr);
      ::_exit(3);
    }
    return line;
  };
  hooks.onBound = [](Session &session, bool rankIsProcess) {
    installExitAtStep(session, rankIsProcess);
    installPerturb(session);
    installPerturbRun(session);
  };
  hooks.stopError = kStoppedByHook;
  return shardc::runcli::runMain(argc, argv, hooks);
}
