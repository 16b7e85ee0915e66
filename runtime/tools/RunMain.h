// shardc-run's entry point as a library (shardc_run_cli), for the shipped main
// (shardc-run.cpp) and for test drivers that add hooks (test/unit/shardc-run-testhooks.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace shardc::rt {
class Session;
}

namespace shardc::runcli {

// What a test driver adds to shardc-run; the shipped binary has none.
struct RunHooks {
  // Checked after --help and --version, before any launch; a non-empty result is the error line.
  std::function<std::string()> check;
  // Called on every rank once every rank bound its session, before the first run. `rankIsProcess`:
  // the rank is a whole process (mpirun, torchrun), not a thread of this one.
  std::function<void(rt::Session &session, bool rankIsProcess)> onBound;
  // The error a hook's Executor::setBeforeStep returns to take its rank away quietly: the rank
  // then fails without an error line of its own ("a rank was " + stopError when nothing else
  // explains the failure).
  std::string stopError;
  // Called on every rank during each checkpoint save (--save-state, --checkpoint-every) after
  // the rank wrote its files and before the ranks meet to commit them; a non-empty result
  // fails the save on that rank (a process rank may also just exit).
  std::function<std::string(int64_t rank, int64_t steps, bool rankIsProcess)> beforeCommit;
};

// Parses argv, runs, prints; returns the exit status. Every failure is one
// "shardc-run: error: ..." line (exceptions included) and a non-zero exit on every rank.
int runMain(int argc, char **argv, const RunHooks &hooks = {});

} // namespace shardc::runcli
