// Test helper for the multi-process tests (test/unit/mpi_run_test.sh, nccl_run_test.sh,
// bench/gpu/nccl_checks.sh): writes the TP MLP artifact or the collectives-only artifact with their
// inputs and expected outputs, and compares output .npz files.
#include "CollectivesArtifact.h"
#include "ManifestJson.h"
#include "TpMlpArtifact.h"

#include "shardc/runtime/Npz.h"

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace shardc::rt;

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 5) {
    std::string err = fixtures::writeTpMlpArtifact(argv[2], std::atoll(argv[3]), std::atoll(argv[4]));
    if (!err.empty())
      std::fprintf(stderr, "shardc-test-artifact: error: %s\n", err.c_str());
    return err.empty() ? 0 : 1;
  }
  if (mode == "write-collectives" && argc == 4) {
    std::string err = fixtures::writeCollectivesArtifact(argv[2], std::atoll(argv[3]));
    if (!err.empty())
      std::fprintf(stderr, "shardc-test-artifact: error: %s\n", err.c_str());
    return err.empty() ? 0 : 1;
  }
  if (mode == "write-json" && argc == 4) { // an artifact from a JSON manifest (ManifestJson.h), no blob
    std::FILE *f = std::fopen(argv[3], "rb");
    std::string json;
    for (int c; f && (c = std::fgetc(f)) != EOF;)
      json += char(c);
    std::string err = f ? writeJsonArtifact(argv[2], json, "") : std::string("cannot read ") + argv[3];
    if (f)
      std::fclose(f);
    if (!err.empty())
      std::fprintf(stderr, "shardc-test-artifact: error: %s\n", err.c_str());
    return err.empty() ? 0 : 1;
  }
  if (mode == "compare" && argc == 4) {
    std::vector<HostTensor> got, want;
    std::string err = readNpz(argv[2], got);
    if (err.empty())
      err = readNpz(argv[3], want);
    if (err.empty())
      err = fixtures::compareTensors(got, want, 1e-5);
    if (!err.empty())
      std::fprintf(stderr, "shardc-test-artifact: %s differs from %s: %s\n", argv[2], argv[3],
                   err.c_str());
    return err.empty() ? 0 : 1;
  }
  std::fprintf(stderr, "usage: shardc-test-artifact write DIR DP_SHARD TP\n"
                       "       shardc-test-artifact write-collectives DIR TP\n"
                       "       shardc-test-artifact write-json OUT.shardc MANIFEST.json\n"
                       "       shardc-test-artifact compare GOT.npz WANT.npz\n");
  return 2;
}
