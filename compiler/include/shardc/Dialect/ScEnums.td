// The sc dialect's enumerated attributes. Each prints as `#sc.<name><value>` in the IR and
// stringifies (stringifyX) to the same word the runtime reads in the artifact.
#ifndef SHARDC_SC_ENUMS
#define SHARDC_SC_ENUMS

include "mlir/IR/EnumAttr.td"

// GELU: exact (erf) or the tanh approximation, as ONNX's Gelu `approximate`.
def Sc_GeluApproximation : I32EnumAttr<"GeluApproximation", "GELU approximation", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Tanh", 1, "tanh">]> {
  let cppNamespace = "::shardc::sc";
  let genSpecializedAttr = 0;
}

// What a linear applies to x W + b before rounding to its result type (a GEMM epilogue).
def Sc_LinearEpilogue : I32EnumAttr<"LinearEpilogue", "linear epilogue", [
    I32EnumAttrCase<"GeluTanh", 0, "gelu_tanh">]> {
  let cppNamespace = "::shardc::sc";
  let genSpecializedAttr = 0;
}

// How a parameter's stored layout relates to the PyTorch parameter.
def Sc_ParamTransform : I32EnumAttr<"ParamTransform", "parameter storage transform", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Transpose", 1, "transpose">]> {
  let cppNamespace = "::shardc::sc";
  let genSpecializedAttr = 0;
}

// The reduction of a collective, and of a Partial sharding's pending reduction.
def Sc_ReduceKind : I32EnumAttr<"ReduceKind", "reduction kind", [
    I32EnumAttrCase<"Sum", 0, "sum">,
    I32EnumAttrCase<"Max", 1, "max">]> {
  let cppNamespace = "::shardc::sc";
  let genSpecializedAttr = 0;
}

// The tensor-parallel styles of a plan (Hugging Face base_model_tp_plan vocabulary); the plan
// (Plan.h) uses this enum too.
def Sc_TpStyle : I32EnumAttr<"TpStyle", "tensor-parallel style", [
    I32EnumAttrCase<"Colwise", 0, "colwise">,
    I32EnumAttrCase<"Rowwise", 1, "rowwise">,
    I32EnumAttrCase<"ColwiseRep", 2, "colwise_rep">,
    I32EnumAttrCase<"RowwiseRep", 3, "rowwise_rep">,
    I32EnumAttrCase<"PackedColwise", 4, "packed_colwise">,
    I32EnumAttrCase<"EmbeddingRowwise", 5, "embedding_rowwise">,
    I32EnumAttrCase<"SequenceParallel", 6, "sequence_parallel">,
    I32EnumAttrCase<"Replicate", 7, "replicate">]> {
  let cppNamespace = "::shardc::sc";
  let genSpecializedAttr = 0;
}

#endif // SHARDC_SC_ENUMS
