// --threads N (and single-rank runs): N ranks as threads of this process, meeting through a
// LocalWorld; one error line for the whole run (or one per rank with --all-ranks).
#include "RunCli.h"

#include "shardc/comm/LocalCommunicator.h"

#include <cstdlib>
#include <exception>
#include <memory>
#include <thread>

namespace shardc::runcli {

// N ranks as threads of this process, meeting through a LocalWorld.
int runThreads(const Options &o, int64_t ranks) {
  Artifact artifact;
  std::vector<HostTensor> inputs;
  if (std::string err = loadShared(o, artifact, inputs); !err.empty())
    return fail(err);
  if (artifact.worldSize != ranks) {
    if (ranks == 1)
      return fail(o.model + ": the artifact is compiled for " + std::to_string(artifact.worldSize) +
                  " ranks (mesh " + artifact.deviceMesh.describe() + "): run it with mpirun -np " +
                  std::to_string(artifact.worldSize) + ", --nproc " +
                  std::to_string(artifact.worldSize) + " or --threads " +
                  std::to_string(artifact.worldSize));
    return fail(worldMismatch(artifact, ranks, "--threads gives"));
  }
  if (o.printSteps)
    printSteps(artifact);
  if (ranks > 1)
    printRankMap(artifact, "threads");
  auto world = std::make_shared<LocalWorld>(artifact.deviceMesh);
  std::vector<RankRun> runs(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      LocalCommunicator comm(world, r);
      comm.setTimeout(o.timeout);
      RankRun &run = runs[static_cast<size_t>(r)];
      try {
        run = runRank(o, artifact, inputs, comm, false);
      } catch (const std::exception &e) {
        run.failedIn = RankRun::Phase::Run;
        run.error = e.what();
      }
      // Peers waiting for this rank stop waiting, naming it and its error.
      if (run.failedIn == RankRun::Phase::Run)
        comm.abort(run.error);
    });
  for (std::thread &t : threads)
    t.join();

  bool failed = false;
  for (int64_t r = 0; r < ranks; ++r) {
    const RankRun &run = runs[static_cast<size_t>(r)];
    failed = failed || run.stopped || run.failedIn != RankRun::Phase::Done;
    if (o.allRanks && !run.error.empty())
      printRankError(o, artifact.deviceMesh, r, run.error);
  }
  if (!failed)
    return finishRank0(o, artifact, runs[0], RankOutput(o, artifact.deviceMesh, 0));
  if (o.allRanks)
    return 1;
  // One line: the setup failure of the lowest failed rank, else the first run failure the
  // world recorded (its consequences on other ranks name it), else a timeout.
  const RankRun &first = runs[0];
  if (first.failedIn == RankRun::Phase::Setup && first.firstFailed >= 0) {
    const RankRun &culprit = runs[static_cast<size_t>(first.firstFailed)];
    return fail(withRank(first.firstFailed, ranks, culprit.error));
  }
  std::string rootCause = world->failure(); // "rank R failed: ..."
  if (!rootCause.empty()) {
    size_t cut = rootCause.find(" failed: ");
    int64_t culprit = std::atoll(rootCause.c_str() + 5);
    return fail(withRank(culprit, ranks, rootCause.substr(cut + 9)));
  }
  for (int64_t r = 0; r < ranks; ++r)
    if (!runs[static_cast<size_t>(r)].error.empty())
      return fail(withRank(r, ranks, runs[static_cast<size_t>(r)].error));
  return fail("a rank was " + o.hooks->stopError);
}

} // namespace shardc::runcli
