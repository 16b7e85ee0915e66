// sc-apply-plan: turns the mesh and the resolved tensor-parallel styles recorded on the module
// into sharding seeds on parameters and graph inputs (DTensor parallelize_module semantics).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "ApplyPlanSteps.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"

namespace shardc {
#define GEN_PASS_DEF_SCAPPLYPLAN
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

Value constrainLayout(OpBuilder &b, Location loc, Value v, ArrayRef<std::string> axes, int64_t dim) {
  auto type = cast<RankedTensorType>(v.getType());
  Sharding placement = Sharding::replicated(type.getRank());
  if (dim >= 0)
    placement.dims[dim].assign(axes.begin(), axes.end());
  SmallVector<StringRef> names(axes.begin(), axes.end());
  return sc::ShardingConstraintOp::create(b, loc, type, v, b.getStrArrayAttr(names),
                                          placement.toAttr(b.getContext()));
}

namespace {

SmallVector<std::string, 2> activeAxes(const MeshShape &mesh, ArrayRef<StringRef> names) {
  SmallVector<std::string, 2> out;
  for (StringRef n : names)
    if (mesh.size(n) > 1)
      out.push_back(n.str());
  return out;
}

// The style the plan gives the module at `path` (sc.tp_styles: module path -> #sc.tp_style).
// The logits of sc-add-loss's vocabulary-parallel loss: read by sc.token_loss_stats and by the
// row max that it reads through sc.stop_gradient, nothing else (no graph output).
bool readByVocabParallelLossOnly(Value logits) {
  if (logits.use_empty())
    return false;
  return llvm::all_of(logits.getUsers(), [](Operation *user) {
    if (isa<sc::TokenLossStatsOp>(user))
      return true;
    auto max = dyn_cast<sc::ReduceMaxOp>(user);
    return max && llvm::all_of(max->getUsers(), [](Operation *u) { return isa<sc::StopGradientOp>(u); });
  });
}

std::optional<sc::TpStyle> styleOf(DictionaryAttr styles, StringRef path) {
  if (auto st = styles ? styles.getAs<sc::TpStyleAttr>(path) : sc::TpStyleAttr())
    return st.getValue();
  return std::nullopt;
}

// Sequence parallel, a parallel-residual block with a norm per branch (GPT-NeoX: the attention's
// input_layernorm and the MLP's post_attention_layernorm both read the residual): each norm's
// output would be all-gathered over tp before its colwise projection. Gathering the residual
// once and running the norms on the whole sequence (they are cheap) moves half the bytes. Only
// where two or more norms read one value and every user of their outputs is a colwise linear
// (which wants its input whole anyway).
void gatherSharedNormInputs(ModuleOp module, DictionaryAttr styles, ArrayRef<std::string> tp) {
  llvm::MapVector<Value, SmallVector<Operation *, 2>> normsOf;
  module.walk([&](Operation *op) {
    if (isa<sc::RmsNormOp, sc::LayerNormOp>(op))
      normsOf[op->getOperand(0)].push_back(op);
  });
  auto feedsColwiseOnly = [&](Operation *norm) {
    return !norm->getResult(0).use_empty() && llvm::all_of(norm->getResult(0).getUsers(), [&](Operation *u) {
      auto lin = dyn_cast<sc::LinearOp>(u);
      std::optional<sc::TpStyle> style = lin ? styleOf(styles, modulePathOf(lin->getLoc())) : std::nullopt;
      return style && (*style == sc::TpStyle::Colwise || *style == sc::TpStyle::PackedColwise);
    });
  };
  for (auto &[x, norms] : normsOf) {
    auto type = dyn_cast<RankedTensorType>(x.getType());
    if (norms.size() < 2 || !type || type.getRank() < 3 || !llvm::all_of(norms, feedsColwiseOnly))
      continue;
    OpBuilder b(module.getContext());
    b.setInsertionPointAfterValue(x);
    Value whole = constrainLayout(b, norms.front()->getLoc(), x, tp, -1);
    for (Operation *n : norms)
      n->setOperand(0, whole);
  }
}

struct ScApplyPlanPass : impl::ScApplyPlanBase<ScApplyPlanPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto mesh = MeshShape::fromModule(module);
    if (!mesh) {
      module.emitError() << "sc-apply-plan needs the module attribute sc.mesh "
                            "(e.g. sc.mesh = [[\"dp_shard\", 2], [\"tp\", 2]])";
      return signalPassFailure();
    }
    auto styles = module->getAttrOfType<DictionaryAttr>("sc.tp_styles");
    SmallVector<std::string, 2> tp = activeAxes(*mesh, {"tp"});
    SmallVector<std::string, 2> dp = activeAxes(*mesh, {"dp_replicate", "dp_shard"});
    int64_t tpSize = mesh->product(tp), dpSize = mesh->product(dp);
    bool failed = false;
    if (int64_t cp = mesh->size("cp"); cp > 1)
      module.walk([&](func::FuncOp func) {
        if (mlir::failed(applyContextParallel(func, cp)))
          failed = true;
      });
    if (failed)
      return signalPassFailure();

    module.walk([&](func::FuncOp func) {
      // Batch over data parallel: every input of rank >= 1 is split on dim 0.
      for (BlockArgument arg : func.getArguments()) {
        auto type = cast<RankedTensorType>(arg.getType());
        Sharding s = Sharding::replicated(type.getRank());
        if (!dp.empty() && type.getRank() >= 1) {
          if (type.getDimSize(0) % dpSize != 0) {
            func.emitError() << "input " << arg.getArgNumber() << " has batch " << type.getDimSize(0)
                             << ", which does not divide over the data-parallel axes (" << dpSize << " ranks)";
            failed = true;
            continue;
          }
          s.dims[0] = dp;
        }
        setSharding(arg, s);
      }
    });

    // Heads split over tp: query heads must divide; kv heads must divide, or be fewer than
    // tp and divide it (then they are replicated, each rank taking the one it needs).
    llvm::SmallPtrSet<Operation *, 8> kvReplicated;
    SmallVector<sc::AttentionOp> fewKv;
    if (!tp.empty()) {
      module.walk([&](sc::AttentionOp att) {
        int64_t q = cast<RankedTensorType>(att.getQuery().getType()).getDimSize(1);
        int64_t k = cast<RankedTensorType>(att.getKey().getType()).getDimSize(1);
        if (q % tpSize != 0) {
          att.emitError() << "attention with " << q << " query heads cannot be split over tp = " << tpSize
                          << " (the heads must divide)";
          failed = true;
        } else if (k % tpSize != 0 && tpSize % k != 0) {
          att.emitError() << "attention with " << k << " key/value heads cannot be split over tp = " << tpSize
                          << " (kv heads must divide tp or be divisible by it)";
          failed = true;
        } else if (k % tpSize != 0) {
          fewKv.push_back(att);
        }
      });
    }

    // packed_colwise first: a fused projection (GPT-2's c_attn) becomes one linear per
    // packed part, each colwise, so every rank holds its share of q, k and v.
    if (!tp.empty() && styles) {
      SmallVector<sc::LinearOp> packed;
      module.walk([&](sc::LinearOp lin) {
        if (styleOf(styles, modulePathOf(lin->getLoc())) == sc::TpStyle::PackedColwise)
          packed.push_back(lin);
      });
      for (sc::LinearOp lin : packed)
        if (mlir::failed(unpackColwise(lin, tp, tpSize)))
          failed = true;
      if (failed)
        return signalPassFailure();
    }
    // Then the kv heads (after the unpacking, so that a packed projection's kv part is a
    // projection of its own whose weight can repeat the heads).
    for (sc::AttentionOp att : fewKv)
      (void)replicateKvHeads(att, tpSize, kvReplicated);

    // embedding_rowwise (vocabulary parallel): the table's rows are split over tp.
    if (!tp.empty() && styles)
      module.walk([&](sc::EmbeddingOp emb) {
        auto table = emb.getTable().getDefiningOp<sc::ParamOp>();
        if (styleOf(styles, modulePathOf(emb->getLoc())) != sc::TpStyle::EmbeddingRowwise || !table)
          return;
        // An uneven vocabulary is padded to equal shards (torch.chunk sizes rounded up).
        int64_t vocab = cast<RankedTensorType>(table.getType()).getDimSize(0);
        if (vocab % tpSize != 0)
          table = padParameter(table, 0, llvm::divideCeil(vocab, tpSize) * tpSize);
        Sharding s = Sharding::replicated(2);
        s.dims[0] = tp;
        setSharding(table, s);
      });

    module.walk([&](sc::LinearOp lin) {
      std::string path = modulePathOf(lin->getLoc());
      std::optional<sc::TpStyle> planned = styleOf(styles, path);
      if (!planned || *planned == sc::TpStyle::Replicate || *planned == sc::TpStyle::PackedColwise || tp.empty())
        return;
      if (kvReplicated.contains(lin))
        return;
      // *_rep styles: the same storage, plus Replicate at the module's output (rowwise's
      // Partial output is reduced by its first consumer anyway).
      bool rep = *planned == sc::TpStyle::ColwiseRep || *planned == sc::TpStyle::RowwiseRep;
      if (rep)
        planned = *planned == sc::TpStyle::ColwiseRep ? sc::TpStyle::Colwise : sc::TpStyle::Rowwise;
      StringRef style = sc::stringifyTpStyle(*planned);
      if (*planned != sc::TpStyle::Colwise && *planned != sc::TpStyle::Rowwise) {
        lin.emitError() << "tensor-parallel style '" << style << "' of " << path << " is not implemented yet";
        failed = true;
        return;
      }
      auto w = lin.getWeight().getDefiningOp<sc::ParamOp>();
      if (!w) {
        lin.emitError() << path << " is " << style << " but its weight is not a parameter";
        failed = true;
        return;
      }
      bool col = *planned == sc::TpStyle::Colwise;
      // Stored layout: [N, K] when transpose_weight (PyTorch's), else [K, N].
      int64_t outDim = lin.getTransposeWeight() ? 0 : 1, inDim = 1 - outDim;
      int64_t dim = col ? outDim : inDim;
      auto wt = cast<RankedTensorType>(w.getType());
      // Uneven output features of a bias-free colwise linear (an lm_head over a vocabulary
      // that does not divide): padded, and the padded logits trimmed after the linear.
      if (col && !lin.getBias() && wt.getDimSize(dim) % tpSize != 0) {
        w = padParameter(w, dim, llvm::divideCeil(wt.getDimSize(dim), tpSize) * tpSize);
        wt = cast<RankedTensorType>(w.getType());
      }
      if (wt.getDimSize(dim) % tpSize != 0) {
        lin.emitError() << path << " (" << style << "): " << (col ? "output" : "input") << " features "
                        << wt.getDimSize(dim) << " do not divide over tp = " << tpSize;
        failed = true;
        return;
      }
      auto seed = [&](Value v, int64_t d) {
        Sharding s = Sharding::replicated(cast<RankedTensorType>(v.getType()).getRank());
        s.dims[d] = tp;
        if (auto existing = getSharding(v); existing && *existing != s) {
          lin.emitError() << "parameter " << w.getName() << " is used by modules with different tensor-parallel "
                          << "styles; a tied parameter has one storage sharding";
          failed = true;
          return;
        }
        setSharding(v, s);
      };
      seed(w, dim);
      if (col && lin.getBias())
        if (lin.getBias().getDefiningOp<sc::ParamOp>())
          seed(lin.getBias(), 0);
      if (col && rep && !readByVocabParallelLossOnly(lin.getResult())) {
        // colwise_rep (Hugging Face's lm_head): the output is all-gathered to Replicate,
        // unless only sc-add-loss's vocabulary-parallel loss reads it (torchtitan's
        // loss_parallel keeps the lm_head's output Shard(-1)).
        OpBuilder b(lin);
        b.setInsertionPointAfter(lin);
        Value whole = constrainLayout(b, lin.getLoc(), lin.getResult(), tp, -1);
        lin.getResult().replaceAllUsesExcept(whole, whole.getDefiningOp());
      }
      // A rowwise linear's partial sums are reduced before its bias is added (as in
      // Megatron): split the bias into an add after the matmul, where Partial cannot flow.
      if (!col && lin.getBias()) {
        OpBuilder b(lin);
        b.setInsertionPointAfter(lin);
        Value bias = lin.getBias();
        auto noBias = sc::LinearOp::create(b, lin.getLoc(), lin.getType(), lin.getInput(), lin.getWeight(), Value(),
                                           lin.getTransposeWeightAttr(), lin.getEpilogueAttr());
        auto add = sc::AddOp::create(b, lin.getLoc(), lin.getType(), noBias, bias);
        lin.replaceAllUsesWith(add.getResult());
        lin.erase();
      }
    });
    if (failed)
      return signalPassFailure();

    // Sequence parallel: the residual stream between TP regions is Shard(seq) over tp. It
    // starts at the embedding's output and ends before the first replicated linear after
    // the layers (lm_head), which gets its input all-gathered; propagation and the reshard
    // planner derive the rest (all-gather before colwise, reduce-scatter after rowwise).
    if (module->hasAttr("sc.sequence_parallel") && !tp.empty()) {
      module.walk([&](sc::EmbeddingOp emb) {
        auto t = cast<RankedTensorType>(emb.getType());
        if (t.getRank() < 3 || t.getDimSize(1) % tpSize != 0) {
          emb.emitError() << "sequence parallel needs the sequence length (dim 1 of " << t
                          << ") to divide over tp = " << tpSize;
          failed = true;
          return;
        }
        OpBuilder b(emb);
        b.setInsertionPointAfter(emb);
        Value split = constrainLayout(b, emb.getLoc(), emb.getResult(), tp, 1);
        emb.getResult().replaceAllUsesExcept(split, split.getDefiningOp());
      });
      module.walk([&](sc::LinearOp lin) {
        std::string path = modulePathOf(lin->getLoc());
        bool styled = styleOf(styles, path).has_value();
        auto t = cast<RankedTensorType>(lin.getInput().getType());
        if (styled || t.getRank() < 3)
          return;
        OpBuilder b(lin);
        lin.getInputMutable().assign(constrainLayout(b, lin.getLoc(), lin.getInput(), tp, -1));
      });
      if (failed)
        return signalPassFailure();
      gatherSharedNormInputs(module, styles, tp);
    }

    // Expert parallelism: the expert weights split over ep (and stored over ep_shard).
    llvm::SmallPtrSet<Operation *, 8> expertParams;
    if (mlir::failed(seedExpertParallel(module, *mesh, expertParams)))
      return signalPassFailure();

    // FSDP: parameter storage is additionally split over dp_shard (x cp) on PyTorch's dim 0,
    // as the innermost axis so that an all-gather over it rebuilds the compute chunk (the
    // order DTensor's strided shard expresses).
    SmallVector<std::string, 2> fsdp = activeAxes(*mesh, {"dp_shard", "cp"});
    if (fsdp.empty())
      return;
    int64_t fsdpSize = mesh->product(fsdp);
    SmallVector<std::string> unsplit;
    SmallVector<sc::ParamOp> params;
    module.walk([&](sc::ParamOp p) { params.push_back(p); });
    for (sc::ParamOp p : params) {
      auto type = cast<RankedTensorType>(p.getType());
      if (type.getRank() == 0 || expertParams.contains(p))
        continue;
      Sharding compute = getSharding(p).value_or(Sharding::replicated(type.getRank()));
      int64_t dim = p.getTransform() == sc::ParamTransform::Transpose ? 1 : 0;
      int64_t chunk = type.getDimSize(dim) / std::max<int64_t>(1, mesh->product(compute.dims[dim]));
      if (chunk % fsdpSize != 0) {
        // Uneven FSDP shards: padded to equal chunks (torch.chunk sizes rounded up), unless
        // tp already splits that dim (its chunks would hold padding in the middle) or the dim
        // is smaller than the shard count (most ranks would store only zeros).
        if (!compute.dims[dim].empty() || type.getDimSize(dim) < fsdpSize) {
          unsplit.push_back(p.getName().str());
          continue;
        }
        p = padParameter(p, dim, llvm::divideCeil(type.getDimSize(dim), fsdpSize) * fsdpSize);
        type = cast<RankedTensorType>(p.getType());
      }
      Sharding storage = compute;
      storage.dims[dim].append(fsdp.begin(), fsdp.end());
      setSharding(p, compute);
      p->setAttr("sc.storage_sharding", storage.toAttr(p.getContext()));
    }
    if (!unsplit.empty()) {
      auto diag = module.emitRemark() << unsplit.size() << " parameter(s) stay replicated over "
                                      << fsdp.front() << " because dim 0 (or its tensor-parallel chunk) is split "
                                      << "over tp or smaller than " << fsdpSize << " and does not divide:";
      for (size_t i = 0; i < unsplit.size() && i < 5; ++i)
        diag << " " << unsplit[i];
      if (unsplit.size() > 5)
        diag << " ...";
    }
  }
};

} // namespace
} // namespace shardc
