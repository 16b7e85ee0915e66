// The sc dialect's attributes: its enums as dialect attributes, and tensor shardings.
#ifndef SHARDC_SC_ATTRS
#define SHARDC_SC_ATTRS

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "ScEnums.td"

class Sc_EnumAttr<EnumAttrInfo info, string name> : EnumAttr<Sc_Dialect, info, name> {
  let assemblyFormat = "`<` $value `>`";
}
def Sc_GeluApproximationAttr : Sc_EnumAttr<Sc_GeluApproximation, "gelu_approximation">;
def Sc_LinearEpilogueAttr : Sc_EnumAttr<Sc_LinearEpilogue, "epilogue">;
def Sc_ParamTransformAttr : Sc_EnumAttr<Sc_ParamTransform, "transform">;
def Sc_ReduceKindAttr : Sc_EnumAttr<Sc_ReduceKind, "reduce">;
def Sc_TpStyleAttr : Sc_EnumAttr<Sc_TpStyle, "tp_style">;

// A tensor sharding over the module's mesh (the module attribute sc.mesh; one mesh per
// module, so the mesh is implicit): per tensor dim the mesh axes that split it, outermost
// first, and the axes over which the value is a pending reduction, each with its kind.
//   #sc.sharding<[[dp_shard], [], [tp]]>            dim 0 over dp_shard, dim 2 over tp
//   #sc.sharding<[[], []], partial = [tp: sum]>      a partial sum over tp
def Sc_ShardingAttr : AttrDef<Sc_Dialect, "Sharding"> {
  let mnemonic = "sharding";
  let summary = "per-dim mesh axes and partial axes with their reduction kind";
  let parameters = (ins
    ArrayRefParameter<"::mlir::ArrayAttr", "mesh axes (StringAttr) per tensor dim">:$dims,
    OptionalArrayRefParameter<"::mlir::StringAttr", "axes of a pending reduction">:$partialAxes,
    OptionalArrayRefParameter<"::shardc::sc::ReduceKind", "kind of each partial axis">:$partialKinds);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

#endif // SHARDC_SC_ATTRS
