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

#endif // SHARDC_SC_ATTRS
