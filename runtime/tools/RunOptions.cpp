// shardc-run's options: --help's text and the parser (one error line per mistake).
#include "RunCli.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace shardc::runcli {

const char *const kUsage =
    "usage: shardc-run MODEL.shardc [--inputs IN.npz] [--outputs OUT.npz] [--print-steps]\n"
    "                  [--dump-manifest] [--check-backend cuda]\n"
    "                  [--verbose] [--version] [--nproc N | --threads N] [--launcher L]\n"
    "                  [--collective-timeout DURATION] [--all-ranks] [--backend cpu|cuda]\n"
    "                  [--repeat N] [--random-weights] [--comm auto|local|mpi|nccl]\n"
    "                  [--steps N] [--data TOKENS.bin] [--losses-out LOSSES.json]\n"
    "                  [--save-state DIR] [--load-state DIR] [--check-replay]\n"
    "                  [--weights MODEL.safetensors|DIR]\n"
    "  --inputs IN.npz    one array per artifact input, named as the input (sharded inputs\n"
    "                     are given whole; each rank takes its chunk)\n"
    "  --outputs OUT.npz  where rank 0 writes the outputs (f16/bf16 are written as f32);\n"
    "                     without it, their names, dtypes and shapes are printed\n"
    "  --print-steps      print the step list before running\n"
    "  --dump-manifest    print the artifact's manifest (FlatBuffers, as text) and exit\n"
    "  --check-backend cuda  list the steps (kind and dtypes), generated kernels and load\n"
    "                     steps the CUDA backend lacks, without a GPU; exit 0 if none, else 1\n"
    "  --verbose          print arena, weight and step figures on stderr\n"
    "  --nproc N          run N ranks as processes: re-runs itself under mpirun -np N\n"
    "  --threads N        run N ranks as threads of this process (local communicator)\n"
    "  --launcher L       with --nproc: mpirun (default) or threads\n"
    "  --collective-timeout D  fail a collective that waits longer than D (10s, 500ms, 2m;\n"
    "                     default 300s, or $SHARDC_COLLECTIVE_TIMEOUT)\n"
    "  --all-ranks        every rank prints, lines prefixed [rN axis=i]; else rank 0 only\n"
    "  --backend B        cpu (default) or cuda (process ranks: the GPU of their local rank;\n"
    "                     in-process ranks share GPU 0, collectives staged through the host)\n"
    "  --comm C           auto (default): nccl for cuda process ranks, mpi for cpu process\n"
    "                     ranks, local for threads; or local, mpi (host; staged through the\n"
    "                     host with --backend cuda), nccl (--backend cuda, process ranks)\n"
    "  --steps N          run the program N times in order (a training loop; default 1):\n"
    "                     an input given as [N, *shape] feeds run k its slice k, one of the\n"
    "                     input's shape feeds every run; outputs are stacked as [N, *shape]\n"
    "                     (N > 1); with an f32 scalar output `loss`, rank 0 prints per run\n"
    "                     `step K loss X[ aux A][ grad_norm G][ lr L]` (the outputs present)\n"
    "  --data TOKENS.bin  raw little-endian int32 token ids feeding the artifact's one input,\n"
    "                     i64 [B, S] input_ids: run k (counted across --load-state) reads\n"
    "                     tokens [k*B*S, (k+1)*B*S), wrapping around at the end of the file\n"
    "                     (input_ids [g, B, S], gradient accumulation: g*B*S tokens a run);\n"
    "                     rank 0 prints tokens/s after the runs (instead of --inputs)\n"
    "  --losses-out F     rank 0 writes {\"loss\": [...], \"grad_norm\": [...]} (the outputs\n"
    "                     present, one value per run) to F after the runs\n"
    "  --save-state DIR   after the runs, save the state buffers as a checkpoint committed\n"
    "                     across ranks (DIR/step-N/rank<R>.npz and .json, DIR/manifest.json)\n"
    "  --load-state DIR   before the first run, read the checkpoint DIR/manifest.json names\n"
    "                     (resharded when another mesh or artifact saved it)\n"
    "  --checkpoint-dir DIR, --resume DIR   the same as --save-state DIR, --load-state DIR\n"
    "  --checkpoint-every K   also save the state (--save-state) after every K-th run\n"
    "  --repeat N         after the first run (and the one that records a GPU graph), N runs\n"
    "                     timed alone; rank 0 prints their median, best and mean ms\n"
    "  --check-replay     run twice more (on a GPU: the graph capture, then a replay) and\n"
    "                     fail unless every output equals the first run's bit for bit\n"
    "  --profile          time every step of the runs after the first (not graph-captured);\n"
    "                     rank 0 prints its ten most expensive kernels\n"
    "  --weights W        read the parameters from a Hugging Face checkpoint instead of the\n"
    "                     artifact's weight files: a .safetensors file, or a directory with\n"
    "                     model.safetensors.index.json and its shards (or one file), bound by\n"
    "                     parameter name (the module path without the export's 'm.'), each\n"
    "                     rank reading its chunk; transposes and f32/bf16/f16 converted\n"
    "  --random-weights   fill the weights with pseudo-random values instead of reading them\n"
    "                     (benchmarks of shapes whose weights are not at hand)\n"
    "Under mpirun or srun (mpirun -np N shardc-run ...) each process is one rank; with\n"
    "--backend cuda also under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,\n"
    "MASTER_PORT). N must equal the artifact's world size. See docs/runtime.md.\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "shardc-run: error: %s\n", message.c_str());
  return 1;
}

std::string parseOptions(int argc, char **argv, Options &o) {
  if (const char *env = std::getenv("SHARDC_COLLECTIVE_TIMEOUT"); env && *env) {
    auto t = parseDuration(env);
    if (!t)
      return "SHARDC_COLLECTIVE_TIMEOUT='" + std::string(env) +
             "' is not a duration (e.g. 10s, 500ms, 2m)";
    o.timeout = *t;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool forward = true;
    auto value = [&](const char *flag, std::string &out, const char *what) -> std::string {
      std::string prefix = std::string(flag) + "=";
      if (arg.rfind(prefix, 0) == 0) {
        out = arg.substr(prefix.size());
      } else if (i + 1 < argc) {
        out = argv[++i];
        if (forward)
          o.forwarded.push_back(arg);
        arg = out;
      } else {
        return std::string(flag) + " needs " + what;
      }
      return out.empty() ? std::string(flag) + " needs " + what : "";
    };
    auto is = [&](const char *flag) {
      return arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0;
    };
    auto count = [&](const char *flag, int64_t &out, const char *what = "a rank count") -> std::string {
      std::string text;
      if (std::string err = value(flag, text, what); !err.empty())
        return err;
      char *end = nullptr;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > (1 << 20))
        return std::string(flag) + " needs " + what + " >= 1, not '" + text + "'";
      out = n;
      return "";
    };
    std::string err, text;
    if (is("--nproc") || is("--launcher")) {
      forward = false; // the re-run under mpirun is already the N processes
    }
    if (is("--inputs"))
      err = value("--inputs", o.inputs, "a file name");
    else if (is("--outputs"))
      err = value("--outputs", o.outputs, "a file name");
    else if (is("--nproc"))
      err = count("--nproc", o.nproc);
    else if (is("--threads"))
      err = count("--threads", o.threads);
    else if (is("--launcher")) {
      err = value("--launcher", o.launcher, "mpirun or threads");
      if (err.empty() && o.launcher != "mpirun" && o.launcher != "threads")
        err = "--launcher must be mpirun or threads, not '" + o.launcher + "'";
    } else if (is("--collective-timeout")) {
      err = value("--collective-timeout", text, "a duration");
      if (err.empty()) {
        auto t = parseDuration(text);
        if (!t)
          err = "--collective-timeout '" + text + "' is not a duration (e.g. 10s, 500ms, 2m)";
        else
          o.timeout = *t;
      }
    } else if (is("--backend")) {
      err = value("--backend", o.backend, "cpu or cuda");
      if (err.empty() && o.backend != "cpu" && o.backend != "cuda")
        err = "--backend must be cpu or cuda, not '" + o.backend + "'";
#if !defined(SHARDC_HAVE_CUDA)
      if (err.empty() && o.backend == "cuda")
        err = "--backend cuda: this shardc-run was built without CUDA";
#endif
    } else if (is("--check-backend")) {
      err = value("--check-backend", o.checkBackend, "a backend (cuda)");
    } else if (is("--comm")) {
      err = value("--comm", o.comm, "auto, local, mpi or nccl");
      if (err.empty() && o.comm != "auto" && o.comm != "local" && o.comm != "mpi" && o.comm != "nccl")
        err = "--comm must be auto, local, mpi or nccl, not '" + o.comm + "'";
    } else if (is("--profile")) {
      o.profile = true;
    } else if (is("--steps")) {
      err = count("--steps", o.steps, "a step count");
    } else if (is("--data")) {
      err = value("--data", o.data, "a token file");
    } else if (is("--losses-out")) {
      err = value("--losses-out", o.lossesOut, "a file name");
    } else if (is("--save-state") || is("--checkpoint-dir")) {
      err = value(is("--save-state") ? "--save-state" : "--checkpoint-dir", o.saveState, "a directory");
    } else if (is("--load-state") || is("--resume")) {
      err = value(is("--load-state") ? "--load-state" : "--resume", o.loadState, "a directory");
    } else if (is("--checkpoint-every")) {
      err = count("--checkpoint-every", o.checkpointEvery, "a step count");
    } else if (is("--weights")) {
      err = value("--weights", o.weights, "a .safetensors file or a directory");
    } else if (is("--repeat")) {
      err = count("--repeat", o.repeat);
    } else if (arg == "--check-replay") {
      o.checkReplay = true;
    } else if (arg == "--random-weights") {
      o.randomWeights = true;
    } else if (arg == "--all-ranks")
      o.allRanks = true;
    else if (arg == "--print-steps")
      o.printSteps = true;
    else if (arg == "--dump-manifest")
      o.dumpManifest = true;
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
    if (forward)
      o.forwarded.push_back(arg);
  }
  if (o.model.empty() && !o.version && !o.help)
    return "no model given (see --help)";
  if (o.nproc && o.threads)
    return "give --nproc or --threads, not both";
  if (!o.launcher.empty() && !o.nproc)
    return "--launcher goes with --nproc";
  if (o.steps > 1 && (o.repeat || o.profile))
    return "--steps " + std::to_string(o.steps) + " runs a training loop; --repeat and --profile time " +
           "repeated runs of one step: give them without --steps";
  if (!o.data.empty() && !o.inputs.empty())
    return "give --inputs or --data, not both (--data feeds input_ids from a token file)";
  if (!o.data.empty() && (o.repeat || o.profile))
    return "--data feeds a training loop (--steps); --repeat and --profile time repeated runs of one "
           "step: give them without --data";
  if (o.checkReplay && (o.steps > 1 || !o.data.empty() || o.repeat || o.profile))
    return "--check-replay compares repeated runs of one step with the first: give it without "
           "--steps, --data, --repeat and --profile";
  if (o.randomWeights && !o.weights.empty())
    return "give --weights or --random-weights, not both";
  if (o.checkpointEvery && o.saveState.empty())
    return "--checkpoint-every saves the state: give the directory with --checkpoint-dir (or --save-state)";
  if (o.nproc && o.launcher == "threads")
    std::swap(o.nproc, o.threads);
  return "";
}

} // namespace shardc::runcli
