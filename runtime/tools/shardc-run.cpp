// shardc-run: loads a .shardc artifact, reads inputs from an .npz, runs it on the CPU or CUDA
// backend as one or many ranks (MPI processes, torchrun-style processes with NCCL, or threads
// in this process) and writes the outputs to an .npz. Every failure is one
// "shardc-run: error: ..." line and a non-zero exit on every rank.
//
// The command line only: the options, output and launch paths are runtime/tools/Run*.cpp and
// Launch*.cpp (library shardc_run_cli), each rank runs through the Session API
// (shardc/runtime/Session.h).
#include "RunMain.h"

int main(int argc, char **argv) { return shardc::runcli::runMain(argc, argv); }
