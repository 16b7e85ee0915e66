// sc-apply-plan: turns the mesh and the resolved tensor-parallel styles recorded on the module
// into sharding seeds on parameters and graph inputs (DTensor parallelize_module semantics).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"

namespace shardc {
#define GEN_PASS_DEF_SCAPPLYPLAN
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

SmallVector<std::string, 2> activeAxes(const MeshShape &mesh, ArrayRef<StringRef> names) {
  SmallVector<std::string, 2> out;
  for (StringRef n : names)
    if (mesh.size(n) > 1)
      out.push_back(n.str());
  return out;
}

// Context parallel's load-balanced order: permuted position p holds original position
// perm[p], and rank r's contiguous block of the permuted sequence is chunks r and 2cp-1-r,
// so every rank gets the same share of causal work.
std::vector<int64_t> loadBalancedOrder(int64_t seq, int64_t cp) {
  int64_t chunk = seq / (2 * cp);
  std::vector<int64_t> perm;
  for (int64_t r = 0; r < cp; ++r)
    for (int64_t c : {r, 2 * cp - 1 - r})
      for (int64_t i = 0; i < chunk; ++i)
        perm.push_back(c * chunk + i);
  return perm;
}

// A constant permuted along `dim` (new index p takes old index perm[p]).
DenseElementsAttr permuteConstant(DenseElementsAttr attr, int64_t dim, ArrayRef<int64_t> perm) {
  auto type = cast<RankedTensorType>(attr.getType());
  ArrayRef<int64_t> shape = type.getShape();
  int64_t inner = 1, outer = 1;
  for (int64_t d = dim + 1; d < (int64_t)shape.size(); ++d)
    inner *= shape[d];
  for (int64_t d = 0; d < dim; ++d)
    outer *= shape[d];
  SmallVector<Attribute> values(attr.getValues<Attribute>());
  SmallVector<Attribute> out(values.size());
  int64_t n = shape[dim];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p = 0; p < n; ++p)
      for (int64_t i = 0; i < inner; ++i)
        out[(o * n + p) * inner + i] = values[(o * n + perm[p]) * inner + i];
  return DenseElementsAttr::get(type, out);
}

// Whether `v` is computed from a function argument (then it follows the permuted inputs).
bool dependsOnArguments(Value v) {
  SmallVector<Value> work{v};
  llvm::DenseSet<Value> seen;
  while (!work.empty()) {
    Value x = work.pop_back_val();
    if (!seen.insert(x).second)
      continue;
    if (isa<BlockArgument>(x))
      return true;
    for (Value operand : x.getDefiningOp()->getOperands())
      work.push_back(operand);
  }
  return false;
}

// Context parallel: the sequence is put in the load-balanced order once, here — token and
// mask inputs are permuted on entry, position-id constants and rotary tables at compile
// time, causal attention gets the matching explicit mask — and the token stream is split
// over cp after the embedding; outputs are put back in order before they are returned.
// Keys and values are then all-gathered over cp by the reshard planner (after rotary).
LogicalResult applyContextParallel(func::FuncOp func, int64_t cp) {
  int64_t seq = -1;
  WalkResult walk = func.walk([&](sc::AttentionOp att) {
    auto q = cast<RankedTensorType>(att.getQuery().getType());
    auto k = cast<RankedTensorType>(att.getKey().getType());
    if (seq >= 0 && q.getDimSize(2) != seq) {
      att.emitError() << "context parallel needs one sequence length, found " << seq << " and " << q.getDimSize(2);
      return WalkResult::interrupt();
    }
    seq = q.getDimSize(2);
    if (k.getDimSize(2) != seq) {
      att.emitError() << "context parallel needs self-attention (query and key lengths " << seq << " and "
                      << k.getDimSize(2) << " differ)";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  if (seq < 0)
    return func.emitError() << "context parallel (cp = " << cp << ") needs attention in the model";
  if (seq % (2 * cp) != 0)
    return func.emitError() << "context parallel needs the sequence (" << seq << ") to divide by 2 * cp = " << 2 * cp;
  std::vector<int64_t> perm = loadBalancedOrder(seq, cp), inverse(seq);
  for (int64_t p = 0; p < seq; ++p)
    inverse[perm[p]] = p;
  OpBuilder b(func.getContext());
  // The two index vectors, once, at the top of the function.
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  auto indexType = RankedTensorType::get({seq}, b.getI64Type());
  Value permIndices = sc::ConstantOp::create(b, func.getLoc(), indexType, DenseIntElementsAttr::get(indexType, ArrayRef<int64_t>(perm)));
  Value inverseIndices = sc::ConstantOp::create(b, func.getLoc(), indexType, DenseIntElementsAttr::get(indexType, ArrayRef<int64_t>(inverse)));
  auto indexConst = [&](ArrayRef<int64_t> idx) { return idx.data() == perm.data() ? permIndices : inverseIndices; };

  // Inputs with a sequence dim (token ids, padding masks) are permuted on entry.
  for (BlockArgument arg : entry.getArguments()) {
    auto t = cast<RankedTensorType>(arg.getType());
    if (t.getRank() < 2 || t.getDimSize(1) != seq)
      continue;
    auto g = sc::GatherOp::create(b, func.getLoc(), t, arg, indexConst(perm), b.getI64IntegerAttr(1));
    arg.replaceAllUsesExcept(g, g);
  }
  LogicalResult result = success();
  auto permuteOperand = [&](Operation *user, unsigned operand, int64_t dim) {
    auto c = user->getOperand(operand).getDefiningOp<sc::ConstantOp>();
    auto dense = c ? dyn_cast<DenseElementsAttr>(c.getValue()) : nullptr;
    if (!dense) {
      user->emitError() << "context parallel: operand " << operand << " depends on positions but is not a constant";
      result = failure();
      return;
    }
    b.setInsertionPoint(user);
    auto permuted = sc::ConstantOp::create(b, c.getLoc(), c.getType(), permuteConstant(dense, dim, perm));
    user->setOperand(operand, permuted);
  };
  func.walk([&](Operation *op) {
    if (auto r = dyn_cast<sc::RotaryOp>(op)) {
      // The tables' position dim is their one dim of the sequence's length ([S, D] tables
      // broadcast against [B, H, S, D] or [B, S, H, D] alike).
      for (unsigned i : {1u, 2u}) {
        auto t = cast<RankedTensorType>(op->getOperand(i).getType());
        SmallVector<int64_t> dims;
        for (int64_t d = 0; d < t.getRank(); ++d)
          if (t.getDimSize(d) == seq)
            dims.push_back(d);
        if (dims.size() != 1) {
          op->emitError() << "context parallel: cannot tell the position dim of the rotary table " << t;
          result = failure();
          return;
        }
        permuteOperand(op, i, dims.front());
      }
    } else if (auto e = dyn_cast<sc::EmbeddingOp>(op)) {
      // Position ids are constants over the sequence (learned position embeddings).
      auto ids = cast<RankedTensorType>(e.getIds().getType());
      if (e.getIds().getDefiningOp<sc::ConstantOp>() && ids.getRank() >= 1 && ids.getDimSize(ids.getRank() - 1) == seq)
        permuteOperand(op, 1, ids.getRank() - 1);
    } else if (auto att = dyn_cast<sc::AttentionOp>(op)) {
      if (Value mask = att.getMask(); mask && !att.getCausal() && !dependsOnArguments(mask)) {
        // A mask fixed at export time (a constant or parameter) is in the original order:
        // permute its query and key dims like everything else.
        auto t = cast<RankedTensorType>(mask.getType());
        b.setInsertionPoint(att);
        Value permuted = mask;
        for (int64_t d = std::max<int64_t>(0, t.getRank() - 2); d < t.getRank(); ++d)
          if (t.getDimSize(d) == seq)
            permuted = sc::GatherOp::create(b, att.getLoc(), t, permuted, indexConst(perm), b.getI64IntegerAttr(d));
        att.getMaskMutable().assign(permuted);
        return;
      }
      if (!att.getCausal())
        return;
      if (att.getMask()) {
        att.emitError() << "context parallel: causal attention with an extra mask is not supported yet";
        result = failure();
        return;
      }
      // Causal in the permuted order: key j is visible to query i when perm[j] <= perm[i].
      Type et = cast<RankedTensorType>(att.getQuery().getType()).getElementType();
      auto t = RankedTensorType::get({1, 1, seq, seq}, et);
      SmallVector<APFloat> vals;
      const auto &sem = cast<FloatType>(et).getFloatSemantics();
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t j = 0; j < seq; ++j)
          vals.push_back(perm[j] <= perm[i] ? APFloat::getZero(sem) : APFloat::getInf(sem, /*Negative=*/true));
      b.setInsertionPoint(att);
      auto mask = sc::ConstantOp::create(b, att.getLoc(), t, DenseElementsAttr::get(t, vals));
      att.getMaskMutable().assign(mask);
      att.setCausal(false);
    }
  });
  if (failed(result))
    return failure();
  // The token stream is split over cp after each embedding (sequence = dim 1).
  func.walk([&](sc::EmbeddingOp e) {
    auto t = cast<RankedTensorType>(e.getType());
    if (t.getRank() < 3 || t.getDimSize(1) != seq)
      return;
    b.setInsertionPointAfter(e);
    auto slice = sc::ShardSliceOp::create(b, e.getLoc(), t, e.getResult(), b.getStrArrayAttr({"cp"}), b.getI64IntegerAttr(1));
    e.getResult().replaceAllUsesExcept(slice, slice);
  });
  // Outputs go back to the original order.
  func.walk([&](func::ReturnOp ret) {
    b.setInsertionPoint(ret);
    for (OpOperand &o : ret->getOpOperands()) {
      auto t = cast<RankedTensorType>(o.get().getType());
      if (t.getRank() >= 2 && t.getDimSize(1) == seq)
        o.set(sc::GatherOp::create(b, ret.getLoc(), t, o.get(), indexConst(inverse), b.getI64IntegerAttr(1)));
    }
  });
  return success();
}

// packed_colwise: `split(reshape?(linear(x, W, b)))` into k equal parts along the last dim
// becomes k linears over column blocks of W (and b), each block split over tp on its output
// features. The fused weight stays whole in storage (its blocks are not contiguous); the
// compute and activations are sharded as for colwise.
LogicalResult unpackColwise(sc::LinearOp lin, ArrayRef<std::string> tp, int64_t tpSize) {
  std::string path = modulePathOf(lin->getLoc());
  Operation *user = lin->hasOneUse() ? *lin->getUsers().begin() : nullptr;
  auto reshape = dyn_cast_if_present<sc::ReshapeOp>(user);
  if (reshape)
    user = reshape->hasOneUse() ? *reshape->getUsers().begin() : nullptr;
  auto split = dyn_cast_if_present<sc::SplitOp>(user);
  auto outType = cast<RankedTensorType>(lin.getType());
  int64_t n = outType.getShape().back();
  if (!split)
    return lin.emitError() << path << " is packed_colwise but its output is not split into parts";
  auto splitIn = cast<RankedTensorType>(split.getInput().getType());
  int64_t parts = split.getNumResults();
  int64_t axis = (int64_t)split.getAxis() < 0 ? (int64_t)split.getAxis() + splitIn.getRank() : (int64_t)split.getAxis();
  if (axis != splitIn.getRank() - 1 || splitIn.getShape().back() != n || n % parts != 0)
    return lin.emitError() << path << " is packed_colwise but its output is not split evenly along the features";
  int64_t part = n / parts;
  if (part % tpSize != 0)
    return lin.emitError() << path << " (packed_colwise): each packed part has " << part
                           << " features, which do not divide over tp = " << tpSize;
  OpBuilder b(split);
  bool transposed = lin.getTransposeWeight();
  int64_t outDim = transposed ? 0 : 1;
  auto sliceOf = [&](Value v, int64_t dim, int64_t index, int64_t count) -> Value {
    auto t = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> shape(t.getShape()), starts(t.getRank(), 0), steps(t.getRank(), 1);
    shape[dim] = count;
    starts[dim] = index * count;
    Value sliced = sc::SliceOp::create(b, lin.getLoc(), RankedTensorType::get(shape, t.getElementType()), v,
                                       b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(steps));
    SmallVector<StringRef> axes(tp.begin(), tp.end());
    return sc::ShardSliceOp::create(b, lin.getLoc(), sliced.getType(), sliced, b.getStrArrayAttr(axes),
                                    b.getI64IntegerAttr(dim));
  };
  for (int64_t i = 0; i < parts; ++i) {
    Value w = sliceOf(lin.getWeight(), outDim, i, part);
    Value bias = lin.getBias() ? sliceOf(lin.getBias(), 0, i, part) : Value();
    SmallVector<int64_t> yShape(outType.getShape());
    yShape.back() = part;
    Value y = sc::LinearOp::create(b, lin.getLoc(), RankedTensorType::get(yShape, outType.getElementType()),
                                   lin.getInput(), w, bias, lin.getTransposeWeightAttr());
    if (reshape) {
      SmallVector<int64_t> rShape(splitIn.getShape());
      rShape.back() = part;
      y = sc::ReshapeOp::create(b, reshape.getLoc(), RankedTensorType::get(rShape, splitIn.getElementType()), y);
    }
    split.getResult(i).replaceAllUsesWith(y);
  }
  split.erase();
  if (reshape)
    reshape.erase();
  lin.erase();
  return success();
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

    if (!tp.empty()) {
      module.walk([&](sc::AttentionOp att) {
        auto q = cast<RankedTensorType>(att.getQuery().getType());
        auto k = cast<RankedTensorType>(att.getKey().getType());
        if (q.getDimSize(1) % tpSize != 0 || k.getDimSize(1) % tpSize != 0) {
          att.emitError() << "attention with " << q.getDimSize(1) << " query heads and " << k.getDimSize(1)
                          << " key/value heads cannot be split over tp = " << tpSize
                          << " (both must divide; kv heads fewer than tp are not supported yet)";
          failed = true;
        }
      });
    }

    // packed_colwise first: a fused projection (GPT-2's c_attn) becomes one linear per
    // packed part, each colwise, so every rank holds its share of q, k and v.
    if (!tp.empty() && styles) {
      SmallVector<sc::LinearOp> packed;
      module.walk([&](sc::LinearOp lin) {
        if (auto st = styles.getAs<StringAttr>(modulePathOf(lin->getLoc())); st && st.getValue() == "packed_colwise")
          packed.push_back(lin);
      });
      for (sc::LinearOp lin : packed)
        if (mlir::failed(unpackColwise(lin, tp, tpSize)))
          failed = true;
      if (failed)
        return signalPassFailure();
    }

    // embedding_rowwise (vocabulary parallel): the table's rows are split over tp.
    if (!tp.empty() && styles)
      module.walk([&](sc::EmbeddingOp emb) {
        auto st = styles.getAs<StringAttr>(modulePathOf(emb->getLoc()));
        auto table = emb.getTable().getDefiningOp<sc::ParamOp>();
        if (!st || st.getValue() != "embedding_rowwise" || !table)
          return;
        auto t = cast<RankedTensorType>(table.getType());
        if (t.getDimSize(0) % tpSize != 0) {
          emb.emitError() << "embedding_rowwise: vocabulary " << t.getDimSize(0) << " does not divide over tp = " << tpSize;
          failed = true;
          return;
        }
        Sharding s = Sharding::replicated(2);
        s.dims[0] = tp;
        setSharding(table, s);
      });

    module.walk([&](sc::LinearOp lin) {
      std::string path = modulePathOf(lin->getLoc());
      StringRef style;
      if (styles)
        if (auto st = styles.getAs<StringAttr>(path))
          style = st.getValue();
      if (style.empty() || style == "replicate" || style == "packed_colwise" || tp.empty())
        return;
      // *_rep styles: the same storage, plus Replicate at the module's output (rowwise's
      // Partial output is reduced by its first consumer anyway).
      bool rep = style == "colwise_rep" || style == "rowwise_rep";
      if (rep)
        style = style.drop_back(4);
      if (style != "colwise" && style != "rowwise") {
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
      bool col = style == "colwise";
      // Stored layout: [N, K] when transpose_weight (PyTorch's), else [K, N].
      int64_t outDim = lin.getTransposeWeight() ? 0 : 1, inDim = 1 - outDim;
      int64_t dim = col ? outDim : inDim;
      auto wt = cast<RankedTensorType>(w.getType());
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
      if (col && rep) {
        // colwise_rep (Hugging Face's lm_head): the output is all-gathered to Replicate.
        OpBuilder b(lin);
        b.setInsertionPointAfter(lin);
        auto t = cast<RankedTensorType>(lin.getType());
        auto gather = sc::AllGatherOp::create(b, lin.getLoc(), t, lin.getResult(), b.getStrArrayAttr({"tp"}),
                                              b.getI64IntegerAttr(t.getRank() - 1));
        lin.getResult().replaceAllUsesExcept(gather, gather);
      }
      // A rowwise linear's partial sums are reduced before its bias is added (as in
      // Megatron): split the bias into an add after the matmul, where Partial cannot flow.
      if (!col && lin.getBias()) {
        OpBuilder b(lin);
        b.setInsertionPointAfter(lin);
        Value bias = lin.getBias();
        auto noBias = sc::LinearOp::create(b, lin.getLoc(), lin.getType(), lin.getInput(), lin.getWeight(), Value(),
                                           lin.getTransposeWeightAttr());
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
        auto slice = sc::ShardSliceOp::create(b, emb.getLoc(), t, emb.getResult(), b.getStrArrayAttr({"tp"}),
                                              b.getI64IntegerAttr(1));
        emb.getResult().replaceAllUsesExcept(slice, slice);
      });
      module.walk([&](sc::LinearOp lin) {
        std::string path = modulePathOf(lin->getLoc());
        bool styled = styles && styles.getAs<StringAttr>(path);
        auto t = cast<RankedTensorType>(lin.getInput().getType());
        if (styled || t.getRank() < 3)
          return;
        OpBuilder b(lin);
        auto gather = sc::AllGatherOp::create(b, lin.getLoc(), t, lin.getInput(), b.getStrArrayAttr({"tp"}),
                                              b.getI64IntegerAttr(1));
        lin.getInputMutable().assign(gather);
      });
      if (failed)
        return signalPassFailure();
    }

    // FSDP: parameter storage is additionally split over dp_shard (x cp) on PyTorch's dim 0,
    // as the innermost axis so that an all-gather over it rebuilds the compute chunk (the
    // order DTensor's strided shard expresses).
    SmallVector<std::string, 2> fsdp = activeAxes(*mesh, {"dp_shard", "cp"});
    if (fsdp.empty())
      return;
    int64_t fsdpSize = mesh->product(fsdp);
    SmallVector<std::string> unsplit;
    module.walk([&](sc::ParamOp p) {
      auto type = cast<RankedTensorType>(p.getType());
      if (type.getRank() == 0)
        return;
      Sharding compute = getSharding(p).value_or(Sharding::replicated(type.getRank()));
      int64_t dim = p.getTransform() == "transpose" ? 1 : 0;
      int64_t chunk = type.getDimSize(dim) / std::max<int64_t>(1, mesh->product(compute.dims[dim]));
      if (chunk % fsdpSize != 0) {
        unsplit.push_back(p.getName().str());
        return;
      }
      Sharding storage = compute;
      storage.dims[dim].append(fsdp.begin(), fsdp.end());
      setSharding(p, compute);
      p->setAttr("sc.storage_sharding", storage.toAttr(p.getContext()));
    });
    if (!unsplit.empty()) {
      auto diag = module.emitRemark() << unsplit.size() << " parameter(s) stay replicated over "
                                      << fsdp.front() << " because dim 0 does not divide by " << fsdpSize
                                      << " (uneven FSDP shards are not supported yet):";
      for (size_t i = 0; i < unsplit.size() && i < 5; ++i)
        diag << " " << unsplit[i];
      if (unsplit.size() > 5)
        diag << " ...";
    }
  }
};

} // namespace
} // namespace shardc
