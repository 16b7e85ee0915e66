// shardc: the compiler driver. Subcommands: inspect (what is in an ONNX file), import
// (sc MLIR as imported), compile (ONNX -> .shardc artifact through the pass pipeline).
#include "shardc/Artifact/ArtifactEmitter.h"
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Import/OnnxImporter.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Plan/Plan.h"
#include "shardc/Sharding/Sharding.h"
#include "ShardcReport.h"

namespace shardc::ckpt {
// runtime/tools/ExportWeights.cpp (shardc_checkpoint): `shardc export-weights`, no MLIR.
int exportWeightsMain(int argc, char **argv);
} // namespace shardc::ckpt

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <functional>
#include <set>
#include <cstdlib>

namespace cl = llvm::cl;
using namespace mlir;
using shardc::ImportOptions;

namespace {

cl::OptionCategory cat("shardc options");
cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx>"), cl::cat(cat));
cl::opt<std::string> outputFile("o", cl::desc("output artifact (compile)"), cl::value_desc("file"), cl::cat(cat));
cl::list<std::string> inputShapes("input-shape", cl::desc("bind symbolic input dims: name=2x64"), cl::cat(cat));
cl::opt<std::string> shapesSpec("shapes", cl::desc("bind symbolic dims by name, one program per ';'-separated set "
                                                   "(compile, verify): 'batch=2,seq=64;batch=3,seq=48'"),
                                cl::value_desc("sets"), cl::cat(cat));
cl::opt<bool> dumpPipeline("dump-pass-pipeline", cl::desc("print the pass pipeline (replayable with shardc-opt)"), cl::cat(cat));
cl::opt<bool> timing("timing", cl::desc("print the time of each step and pass"), cl::cat(cat));
cl::opt<bool> reportUnraised("report-unraised", cl::desc("list primitive ops left after raising"), cl::cat(cat));
cl::opt<std::string> emitMlir("emit-mlir", cl::desc("also write the final IR to this file"), cl::value_desc("file"), cl::cat(cat));
cl::opt<bool> raise("raise", cl::desc("import: run the raising pipeline before printing"), cl::cat(cat));
cl::opt<bool> debugInfo("debug-info", cl::desc("import: print locations"), cl::cat(cat));
cl::opt<bool> elideConstants("elide-constants", cl::desc("import: elide constants over 16 elements (the output then no longer parses)"), cl::cat(cat));
cl::opt<bool> quiet("quiet", cl::desc("compile: no progress output"), cl::cat(cat));
cl::opt<std::string> kernelSourceFile("kernel-source", cl::desc("compile: also write the generated kernels' source (what NVRTC builds on a GPU) to this file"),
                                      cl::value_desc("file"), cl::cat(cat));
cl::opt<bool> relativeWeights("relative-weights", cl::desc("compile: record weight files in the artifact's directory relative to it (to move or copy the directory)"),
                              cl::cat(cat));
cl::opt<bool> noFuse("no-fuse", cl::desc("compile: run elementwise ops as library kernels, one step each, "
                                         "instead of generated fused kernels"), cl::cat(cat));
cl::opt<std::string> planPath("plan", cl::desc("plan YAML (docs/plan.md); default: the auto plan"), cl::value_desc("file"), cl::cat(cat));
cl::opt<std::string> meshSpec("mesh", cl::desc("mesh axes overriding the plan's: tp=2,dp_shard=2"), cl::value_desc("axis=n,..."), cl::cat(cat));
cl::opt<bool> printPlan("print", cl::desc("plan: print the chosen plan as YAML"), cl::cat(cat));
cl::opt<bool> explainPlan("explain", cl::desc("plan: with tp_plan: auto, also print every linear and norm with its "
                                              "style and the reason for it (YAML comments)"),
                          cl::cat(cat));
cl::opt<int64_t> nproc("nproc", cl::desc("world size: infers dp_shard: -1 and checks the mesh (verify: the ranks, as threads)"),
                       cl::init(0), cl::cat(cat));
// verify: the comparison's own options (plan, mesh and nproc are the compiler's above).
cl::opt<std::string> verifyInputs("inputs", cl::desc("verify: npz with the model's inputs (default: deterministic random ones)"),
                                  cl::value_desc("file"), cl::cat(cat));
cl::opt<std::string> verifyAtol("atol", cl::desc("verify: absolute tolerance"), cl::init("1e-4"), cl::cat(cat));
cl::opt<std::string> verifyRtol("rtol", cl::desc("verify: relative tolerance"), cl::init("0"), cl::cat(cat));
cl::opt<std::string> verifySeed("seed", cl::desc("verify: seed of the random inputs"), cl::init("1234"), cl::cat(cat));
cl::opt<std::string> verifyWorkdir("workdir", cl::desc("verify: keep inputs, artifacts, outputs and logs in this directory "
                                                       "(default: a temporary one, removed at the end)"),
                                   cl::value_desc("dir"), cl::cat(cat));
cl::alias verifyWorkdirAlias("work-dir", cl::desc("alias for --workdir"), cl::aliasopt(verifyWorkdir), cl::cat(cat));
cl::opt<bool> verifyKeep("keep", cl::desc("verify: keep the temporary work directory (its path is printed)"), cl::cat(cat));
cl::opt<bool> verifyBisect("bisect", cl::desc("verify: on a mismatch, find the first diverging module"), cl::cat(cat));
cl::opt<std::string> verifyShardcRun("shardc-run", cl::desc("verify: the shardc-run to use (default: the one beside shardc)"),
                                     cl::value_desc("file"), cl::Hidden, cl::cat(cat));

int usage() {
  llvm::errs() << "usage: shardc <command> [options]\n"
                  "commands:\n"
                  "  inspect  <model.onnx>               module paths, parameters, inputs, unsupported ops\n"
                  "  import   <model.onnx> [--raise]     print the sc MLIR (weights are references)\n"
                  "  compile  <model.onnx> -o <m.shardc> compile to an artifact for shardc-run\n"
                  "  verify   <model.onnx> --nproc N [--plan p.yaml] [--mesh ...]  sharded vs unsharded vs onnxruntime\n"
                  "  report   <m.shardc> [--json]        per-rank parameters, arena, every collective\n"
                  "  export-weights <DIR> -o <out.safetensors>  a training checkpoint's parameters for Hugging Face\n"
                  "  plan     <model.onnx> [--plan p.yaml] [--mesh tp=2] [--print] [--explain]  check the plan, print it\n"
                  "  --version\n"
                  "run 'shardc <command> --help' for options\n";
  return 2;
}

int error(const llvm::Twine &msg) {
  llvm::errs() << "shardc: error: " << msg << "\n";
  return 1;
}

// The ONNX names of the initializers the exporter marks trainable (filled by importModel), and
// those of them folded with constants (ONNX name -> parameter name).
std::set<std::string> exporterTrainable;
std::map<std::string, std::string> foldedWithConstants;

// The --shapes sets (none: one program, bound by --input-shape alone).
std::vector<shardc::DimBindings> shapeSets;

FailureOr<OwningOpRef<ModuleOp>> importModel(MLIRContext &ctx, const shardc::DimBindings *dims = nullptr) {
  ImportOptions opts;
  opts.exporterTrainable = &exporterTrainable;
  opts.foldedWithConstants = &foldedWithConstants;
  if (dims)
    opts.dimBindings = *dims;
  else if (shapeSets.size() == 1)
    opts.dimBindings = shapeSets.front();
  for (const std::string &spec : inputShapes) {
    std::string err;
    if (!shardc::parseInputShapeSpec(spec, opts, err)) {
      error(err);
      return failure();
    }
  }
  auto module = shardc::importOnnxFile(ctx, inputFile, opts);
  if (!module) {
    error(llvm::toString(module.takeError()));
    return failure();
  }
  return std::move(*module);
}

// Diagnostics from passes: one line each, with the ONNX node and module path.
void installDiagnostics(MLIRContext &ctx) {
  ctx.getDiagEngine().registerHandler([](Diagnostic &d) {
    const char *sev = d.getSeverity() == DiagnosticSeverity::Error     ? "error"
                      : d.getSeverity() == DiagnosticSeverity::Warning ? "warning"
                                                                        : "remark";
    llvm::errs() << "shardc: " << sev << ": " << shardc::describeLoc(d.getLocation()) << ": " << d.str() << "\n";
    for (Diagnostic &note : d.getNotes())
      llvm::errs() << "  note: " << note.str() << "\n";
    return success();
  });
}

int runInspect(MLIRContext &ctx) {
  auto summary = shardc::summarizeOnnxFile(inputFile);
  if (!summary)
    return error(llvm::toString(summary.takeError()));
  llvm::outs() << *summary;
  // Parameters as the importer names them (anonymous folded weights get module paths).
  ImportOptions opts;
  if (!shapeSets.empty())
    opts.dimBindings = shapeSets.front();
  for (const std::string &spec : inputShapes) {
    std::string err;
    if (!shardc::parseInputShapeSpec(spec, opts, err))
      return error(err);
  }
  auto module = shardc::importOnnxFile(ctx, inputFile, opts);
  if (!module) {
    llvm::outs() << "import: failed: " << llvm::toString(module.takeError()) << "\n";
    return 1;
  }
  llvm::outs() << "parameters (as imported):\n";
  int64_t total = 0;
  (*module)->walk([&](shardc::sc::ParamOp p) {
    auto t = cast<RankedTensorType>(p.getType());
    std::string shape;
    for (auto [i, d] : llvm::enumerate(t.getShape()))
      shape += (i ? "x" : "") + std::to_string(d);
    llvm::outs() << "  " << p.getName() << "  " << shape << " " << t.getElementType();
    if (p.getTransform() != shardc::sc::ParamTransform::None)
      llvm::outs() << "  stored " << shardc::sc::stringifyParamTransform(p.getTransform()) << "d";
    if (p.getOnnxName() != p.getName())
      llvm::outs() << "  (onnx: " << p.getOnnxName() << ")";
    for (auto tied : p.getTied().getAsValueRange<StringAttr>())
      llvm::outs() << "  tied: " << tied;
    llvm::outs() << "\n";
    total += t.getNumElements();
  });
  llvm::outs() << "  total: " << total << " parameters\n";
  return 0;
}

int runImport(MLIRContext &ctx) {
  auto module = importModel(ctx);
  if (failed(module))
    return 1;
  if (raise) {
    PassManager pm(&ctx, ModuleOp::getOperationName());
    shardc::buildRaisePipeline(pm);
    if (failed(pm.run(**module)))
      return 1;
  }
  OpPrintingFlags flags;
  if (elideConstants)
    flags.elideLargeElementsAttrs(16);
  if (debugInfo)
    flags.enableDebugInfo(true, /*prettyForm=*/false);
  (*module)->print(llvm::outs(), flags);
  llvm::outs() << "\n";
  return 0;
}

// tp_plan: auto is derived from the raised program (docs/plan.md): raising here, before the
// plan is chosen, leaves the compile pipeline's own raising nothing to do.
LogicalResult raiseModule(ModuleOp module, TimingScope *timing = nullptr) {
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  if (timing)
    pm.enableTiming(*timing);
  shardc::buildRaisePipeline(pm);
  return pm.run(module);
}

// The plan resolved for this model: errors, or a summary; --print writes it as YAML.
int runPlan(MLIRContext &ctx) {
  auto module = importModel(ctx);
  if (failed(module))
    return 1;
  std::optional<int64_t> worldSize;
  if (nproc > 0)
    worldSize = nproc;
  // Derived on a raised copy: --emit-mlir writes the module as imported.
  OwningOpRef<ModuleOp> raised = (**module).clone();
  if (failed(raiseModule(*raised)))
    return error("raising failed");
  shardc::TpDerivation derivation;
  auto chosen = shardc::choosePlan(*raised, planPath, meshSpec, worldSize, &derivation);
  if (!chosen)
    return error(llvm::toString(chosen.takeError()));
  // Printed from sc.plan as a pass reads it, so every run checks that attribute's round trip.
  (**module)->setAttr(shardc::kPlanAttrName, shardc::planToAttr(&ctx, *chosen));
  auto plan = shardc::planFromAttr((**module)->getAttrOfType<DictionaryAttr>(shardc::kPlanAttrName));
  if (!plan)
    return error(llvm::toString(plan.takeError()));
  if (printPlan)
    llvm::outs() << shardc::printPlanYaml(*plan, plan->resolved);
  if (explainPlan)
    llvm::outs() << (derivation.linears.empty() && derivation.norms.empty()
                         ? std::string("# tp_plan is not auto: nothing was derived\n")
                         : shardc::printTpDerivation(derivation));
  if (!printPlan && !explainPlan)
    llvm::outs() << "plan: mesh " << plan->mesh.str() << ", " << plan->resolved.size() << " modules tensor-parallel\n";
  if (!emitMlir.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(emitMlir, ec);
    if (ec)
      return error("cannot write " + emitMlir + ": " + ec.message());
    (**module)->print(os);
  }
  return 0;
}

// One program of compile: import (binding `dims`, one --shapes set, when given), the plan
// and the pass pipeline; its progress lines and timers are compile's.
FailureOr<OwningOpRef<ModuleOp>> compileProgram(MLIRContext &ctx, const shardc::DimBindings *dims, TimingScope &root,
                                                const std::function<void(const llvm::Twine &)> &progress) {
  progress("importing " + inputFile);
  TimingScope importTimer = root.nest("import");
  auto module = importModel(ctx, dims);
  importTimer.stop();
  if (failed(module))
    return failure();
  // Anchored on builtin.module so that --dump-pass-pipeline replays in shardc-opt as
  // --pass-pipeline='<printed pipeline>'.
  // A plan or a mesh makes the program sharded: the resolved plan is recorded on the module
  // (sc.mesh, sc.tp_styles, sc.plan) so every later stage is reproducible from the IR.
  if (!planPath.empty() || !meshSpec.empty()) {
    // tp_plan: auto reads the raised program; the pipeline's raising is then a no-op.
    TimingScope raiseTimer = root.nest("raise (before the plan)");
    if (failed(raiseModule(**module, &raiseTimer)))
      return error("compilation failed"), failure();
    raiseTimer.stop();
    std::optional<int64_t> worldSize;
    if (nproc > 0)
      worldSize = nproc;
    auto plan = shardc::choosePlan(**module, planPath, meshSpec, worldSize);
    if (!plan)
      return error(llvm::toString(plan.takeError())), failure();
    shardc::MeshShape mesh;
    mesh.axes = plan->mesh.axes;
    mesh.ep = plan->mesh.ep;
    Builder b(&ctx);
    SmallVector<NamedAttribute> styles;
    for (auto &[path, style] : plan->resolved)
      styles.push_back(b.getNamedAttr(
          path, shardc::sc::TpStyleAttr::get(&ctx, style)));
    (**module)->setAttr("sc.mesh", mesh.toAttr(&ctx));
    (**module)->setAttr("sc.tp_styles", b.getDictionaryAttr(styles));
    if (plan->fsdpPrefetch)
      (**module)->setAttr("sc.fsdp_prefetch", b.getUnitAttr());
    if (plan->sequenceParallel)
      (**module)->setAttr("sc.sequence_parallel", b.getUnitAttr());
    if (plan->expertTp)
      (**module)->setAttr("sc.expert_tp", b.getUnitAttr());
    // mode: train: sc-add-loss appends the loss (docs/training.md).
    // mode: train: sc.trainable on the sc.params that train (docs/training.md).
    if (plan->mode == shardc::Mode::Train) {
      shardc::markTrainableParams(**module, *plan, exporterTrainable);
      // A trainable parameter the exporter stored folded with constants (Gemma's norm weight
      // as 1 + w): the graph does not say how, so the stored value is what trains.
      (**module).walk([&](shardc::sc::ParamOp p) {
        auto folded = foldedWithConstants.find(p.getOnnxName().str());
        if (p->hasAttr("sc.trainable") && folded != foldedWithConstants.end())
          p.emitRemark() << "trainable parameter " << folded->second
                         << " is stored folded with constants (Gemma's 1 + w?): it trains as the stored value ('"
                         << folded->first << "')";
      });
    }
    if (plan->mode == shardc::Mode::Train) {
      SmallVector<NamedAttribute> train{
          b.getNamedAttr("labels", b.getStringAttr(plan->lossLabelsInput ? "input" : "input_ids"))};
      if (DictionaryAttr o = shardc::optimizerAttr(b, *plan))
        train.push_back(b.getNamedAttr("optimizer", o));
      if (DictionaryAttr l = shardc::lrSchedulerAttr(b, *plan))
        train.push_back(b.getNamedAttr("lr_scheduler", l));
      if (plan->maxGradNorm)
        train.push_back(b.getNamedAttr("max_grad_norm", b.getF64FloatAttr(*plan->maxGradNorm)));
      if (plan->lossParallel)
        train.push_back(b.getNamedAttr("loss_parallel", b.getBoolAttr(*plan->lossParallel)));
      if (plan->routerAuxLossCoef)
        train.push_back(b.getNamedAttr("router_aux_loss_coef", b.getF64FloatAttr(*plan->routerAuxLossCoef)));
      if (plan->routerBiasUpdateSpeed)
        train.push_back(b.getNamedAttr("router_bias_update_speed", b.getF64FloatAttr(*plan->routerBiasUpdateSpeed)));
      if (plan->gradientAccumulationSteps != 1) {
        train.push_back(b.getNamedAttr("gradient_accumulation_steps", b.getI64IntegerAttr(plan->gradientAccumulationSteps)));
        train.push_back(b.getNamedAttr("defer_fsdp_grad_sync", b.getBoolAttr(plan->deferFsdpGradSync)));
      }
      if (plan->cpuOffload)
        train.push_back(b.getNamedAttr("offload_policy", b.getStringAttr("cpu")));
      if (plan->mp.masterDtype != shardc::DType::FP32)
        train.push_back(b.getNamedAttr("master_dtype", b.getStringAttr(shardc::stringifyDType(plan->mp.masterDtype))));
      train.push_back(b.getNamedAttr("reshard_after_forward",
                                     b.getStringAttr(shardc::stringifyReshardAfterForward(plan->reshardAfterForward))));
      if (plan->activationCheckpointing != shardc::Checkpointing::None)
        train.push_back(b.getNamedAttr("activation_checkpointing",
                                       b.getStringAttr(shardc::stringifyCheckpointing(plan->activationCheckpointing))));
      (**module)->setAttr("sc.train", b.getDictionaryAttr(train));
    }
    (**module)->setAttr("sc.mp_policy",
                        b.getDictionaryAttr({b.getNamedAttr("param_dtype", b.getStringAttr(shardc::stringifyDType(plan->mp.paramDtype))),
                                             b.getNamedAttr("reduce_dtype", b.getStringAttr(shardc::stringifyDType(plan->mp.reduceDtype))),
                                             b.getNamedAttr("output_dtype", b.getStringAttr(shardc::stringifyDType(plan->mp.outputDtype)))}));
    progress("plan: mesh " + plan->mesh.str() + ", " + std::to_string(plan->resolved.size()) +
             " modules tensor-parallel, param_dtype " + shardc::stringifyDType(plan->mp.paramDtype).str() +
             ", output_dtype " + shardc::stringifyDType(plan->mp.outputDtype).str());
  }
  PassManager pm(&ctx, ModuleOp::getOperationName());
  if (failed(applyPassManagerCLOptions(pm)))
    return error("invalid pass manager options"), failure();
  pm.enableTiming(root);
  shardc::buildCompilePipeline(pm, /*sharded=*/(**module)->hasAttr("sc.mesh"), /*fuse=*/!noFuse);
  if (reportUnraised)
    pm.nest<func::FuncOp>().addPass(shardc::createScReportUnraised());
  if (dumpPipeline) {
    llvm::errs() << "pass pipeline: ";
    pm.printAsTextualPipeline(llvm::errs());
    llvm::errs() << "\n";
  }
  progress("running passes");
  if (failed(pm.run(**module)))
    return error("compilation failed"), failure();
  return std::move(*module);
}

int runCompile(MLIRContext &ctx) {
  if (outputFile.empty())
    return error("compile needs -o <file.shardc>");
  DefaultTimingManager tm;
  tm.setEnabled(timing);
  TimingScope root = tm.getRootScope();
  auto t0 = std::chrono::steady_clock::now();
  std::function<void(const llvm::Twine &)> progress = [&](const llvm::Twine &msg) {
    if (!quiet)
      llvm::errs() << llvm::format("[shardc %6.2fs] ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())
                   << msg << "\n";
  };
  // One program per --shapes set (or one, bound by --input-shape alone).
  std::vector<FailureOr<OwningOpRef<ModuleOp>>> modules;
  for (size_t i = 0; i < std::max<size_t>(1, shapeSets.size()); ++i) {
    const shardc::DimBindings *dims = shapeSets.empty() ? nullptr : &shapeSets[i];
    if (shapeSets.size() > 1)
      progress(llvm::formatv("shapes {0} (set {1} of {2})", shardc::formatDimBindings(*dims), i + 1, shapeSets.size()));
    modules.push_back(compileProgram(ctx, dims, root, progress));
    if (failed(modules.back()))
      return 1;
  }
  auto &module = modules.front();
  if (!emitMlir.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(emitMlir, ec);
    if (ec)
      return error("cannot write " + emitMlir + ": " + ec.message());
    OpPrintingFlags flags;
    flags.enableDebugInfo(true, false);
    (*module)->print(os, flags);
  }
  progress("emitting " + outputFile);
  TimingScope emitTimer = root.nest("emit artifact");
  shardc::EmitStats stats;
  shardc::EmitOptions emitOptions;
  emitOptions.relativeWeights = relativeWeights;
  // Several sets: the first set's program is the manifest, the others nested in it.
  for (size_t i = 1; i < modules.size(); ++i) {
    shardc::EmitOptions nested = emitOptions;
    nested.shapes = shardc::formatDimBindings(shapeSets[i]);
    shardc::EmitStats nestedStats;
    auto program = shardc::emitProgram(**modules[i], outputFile, nestedStats, nested);
    if (!program)
      return error(llvm::toString(program.takeError()));
    emitOptions.programs.push_back(std::move(*program));
  }
  if (!shapeSets.empty())
    emitOptions.shapes = shardc::formatDimBindings(shapeSets.front());
  if (auto err = shardc::emitArtifact(**module, outputFile, stats, emitOptions))
    return error(llvm::toString(std::move(err)));
  emitTimer.stop();
  if (!kernelSourceFile.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(kernelSourceFile, ec);
    if (ec)
      return error("cannot write " + kernelSourceFile + ": " + ec.message());
    os << stats.kernelSource;
  }
  progress(llvm::formatv("wrote {0}: {1} steps (+{2} at load, {3} persistent bytes), {4} buffers, arena {5} bytes (without reuse {6}), weights {7} bytes by reference, blob {8} bytes, {9} fused kernels",
                         outputFile, stats.steps, stats.loadSteps, stats.persistentBytes, stats.buffers, stats.arenaBytes,
                         stats.naiveArenaBytes, stats.weightBytes, stats.constantBytes, stats.fusedKernels)
               .str());
  if (stats.hostArenaBytes || stats.hostPersistentBytes)
    progress(llvm::formatv("cpu offload: host persistent {0} bytes, host arena {1} bytes", stats.hostPersistentBytes,
                           stats.hostArenaBytes)
                 .str());
  return 0;
}

// `shardc verify m.onnx --plan p.yaml --nproc N`: compiles the model sharded and unsharded
// (the same plan at mesh 1), runs both, runs onnxruntime, and compares all three on the same
// inputs. The comparison lives in shardc_verify.py (onnxruntime is a Python package), found
// beside this executable as ../share/shardc/shardc_verify.py (the build tree copies it there,
// `cmake --install` puts it there); this maps the documented options onto it.
int runVerify(const char *argv0) {
  if (inputFile.empty() || nproc < 1)
    return error("usage: shardc verify m.onnx --nproc N [--plan p.yaml] [--mesh tp=2] [--shapes b=2,s=64;...] [--inputs x.npz] "
                 "[--atol 1e-4] [--rtol 0] [--seed 1234] [--workdir DIR] [--keep] [--bisect]");
  std::string self = llvm::sys::fs::getMainExecutable(argv0, (void *)&runVerify);
  llvm::StringRef binDir = llvm::sys::path::parent_path(self);
  llvm::SmallString<256> runBin(binDir);
  llvm::sys::path::append(runBin, "shardc-run");
  if (!verifyShardcRun.empty())
    runBin = verifyShardcRun;
  llvm::SmallString<256> script(llvm::sys::path::parent_path(binDir));
  llvm::sys::path::append(script, "share", "shardc", "shardc_verify.py");
  if (!llvm::sys::fs::exists(script))
    return error("verify: " + script + " not found (it belongs beside this shardc, in ../share/shardc)");
  // The project's venv (onnx, onnxruntime, numpy) as configured, else $SHARDC_PYTHON, else python3.
  std::string python = SHARDC_PYTHON_PATH;
  if (const char *env = std::getenv("SHARDC_PYTHON"); env && *env)
    python = env;
  else if (!llvm::sys::fs::can_execute(python))
    if (auto found = llvm::sys::findProgramByName("python3"))
      python = *found;
  // The work directory: the one given (kept), else a fresh temporary one, removed at the end
  // unless --keep.
  std::string workdir = verifyWorkdir;
  bool removeWorkdir = false;
  if (workdir.empty()) {
    llvm::SmallString<256> tmp;
    if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("shardc-verify", tmp))
      return error("verify: cannot make a temporary work directory: " + ec.message());
    workdir = std::string(tmp);
    removeWorkdir = !verifyKeep;
    if (verifyKeep)
      llvm::errs() << "shardc: verify: work directory " << workdir << " (kept)\n";
  }
  std::string ranks = std::to_string(nproc);
  std::vector<std::string> args{python, std::string(script), "--shardc", self, "--shardc-run",
                                std::string(runBin), "--model", inputFile, "--workdir", workdir, "--atol", verifyAtol,
                                "--rtol", verifyRtol, "--seed", verifySeed, "--against-unsharded",
                                "--run-arg=--threads", "--run-arg=" + ranks, "--compile-arg=--nproc=" + ranks};
  if (!planPath.empty()) {
    args.push_back("--compile-arg=--plan=" + planPath);
    args.push_back("--unsharded-compile-arg=--plan=" + planPath);
  }
  if (!meshSpec.empty())
    args.push_back("--compile-arg=--mesh=" + meshSpec);
  args.push_back("--unsharded-compile-arg=--mesh=dp_replicate=1,dp_shard=1,cp=1,tp=1");
  if (!verifyInputs.empty())
    args.push_back("--inputs=" + verifyInputs);
  if (verifyBisect)
    args.push_back("--bisect");
  for (const std::string &spec : inputShapes)
    args.push_back("--input-shape=" + spec);
  // --shapes: one comparison per set, each in its own subdirectory of the work directory.
  int rc = 0;
  for (size_t i = 0; i < std::max<size_t>(1, shapeSets.size()); ++i) {
    std::vector<std::string> run = args;
    if (!shapeSets.empty()) {
      std::string set = shardc::formatDimBindings(shapeSets[i]);
      llvm::SmallString<256> sub(workdir);
      llvm::sys::path::append(sub, "shapes" + std::to_string(i));
      *(std::find(run.begin(), run.end(), "--workdir") + 1) = std::string(sub);
      run.push_back("--shapes=" + set);
      llvm::errs() << "shardc: verify: shapes " << set << "\n";
    }
    std::vector<llvm::StringRef> refs(run.begin(), run.end());
    std::string msg;
    int one = llvm::sys::ExecuteAndWait(run[0], refs, std::nullopt, {}, 0, 0, &msg);
    if (one < 0) {
      rc = error("verify: cannot run " + run[0] + ": " + msg);
      break;
    }
    rc = rc ? rc : one;
  }
  if (removeWorkdir)
    (void)llvm::sys::fs::remove_directories(workdir);
  return rc;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  if (argc < 2)
    return usage();
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "-version") {
    llvm::outs() << "shardc " << SHARDC_VERSION << " (artifact format " << shardc::kArtifactFormatVersion << ", LLVM/MLIR "
                 << LLVM_VERSION_STRING << ")\n";
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help")
    return usage(), 0;
  if (cmd == "export-weights") // reads a checkpoint only: no MLIR options (runtime/tools/ExportWeights.cpp)
    return shardc::ckpt::exportWeightsMain(argc - 2, argv + 2);
  if (cmd == "report") {
    // report reads artifacts only: no MLIR options.
    bool json = false;
    std::string path;
    for (int i = 2; i < argc; ++i) {
      llvm::StringRef a(argv[i]);
      if (a == "--json")
        json = true;
      else if (a.starts_with("-"))
        return error("report: unknown option '" + a + "' (usage: shardc report m.shardc [--json])");
      else
        path = a.str();
    }
    if (path.empty())
      return error("report needs an artifact: shardc report m.shardc [--json]");
    return shardc::runReport(path, json);
  }
  if (cmd != "inspect" && cmd != "import" && cmd != "compile" && cmd != "plan" && cmd != "verify")
    return error("unknown command '" + cmd + "'"), usage();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerAsmPrinterCLOptions();
  std::vector<const char *> args{argv[0]};
  for (int i = 2; i < argc; ++i)
    args.push_back(argv[i]);
  std::string overview = "shardc " + cmd;
  if (cmd == "verify") // no MLIR runs in verify: its --help lists shardc's own options only
    cl::HideUnrelatedOptions(cat);
  if (!cl::ParseCommandLineOptions(args.size(), args.data(), overview, &llvm::errs()))
    return 2;
  if (!shapesSpec.empty()) {
    std::string err;
    if (!shardc::parseShapesSpec(shapesSpec, shapeSets, err))
      return error(err);
    if (shapeSets.size() > 1 && cmd != "compile" && cmd != "verify")
      return error(cmd + ": --shapes gives " + std::to_string(shapeSets.size()) +
                   " sets; only compile and verify take several (one program each)");
  }
  if (cmd == "verify")
    return runVerify(argv[0]); // the comparison runs in Python: no MLIR context here
  if (inputFile.empty())
    return error(cmd + " needs a model file");
  DialectRegistry registry;
  registry.insert<shardc::sc::ScDialect, func::FuncDialect>();
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  // Diagnostics name the ONNX node and module path; the op's IR is noise for users.
  ctx.printOpOnDiagnostic(false);
  installDiagnostics(ctx);
  if (cmd == "inspect")
    return runInspect(ctx);
  if (cmd == "import")
    return runImport(ctx);
  if (cmd == "plan")
    return runPlan(ctx);
  return runCompile(ctx);
}
