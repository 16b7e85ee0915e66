// What an sc op means downstream of the dialect, defined on the op: the elementwise formula it
// computes (generated kernels, CPU library kernels and constant folding read one table), the
// artifact step it lowers to, and its cost. The sharding rule is ScShardingInterface.td.
#ifndef SHARDC_SC_OP_INTERFACES
#define SHARDC_SC_OP_INTERFACES

include "mlir/IR/OpBase.td"

def Sc_ElementwiseOpInterface : OpInterface<"ElementwiseOpInterface"> {
  let cppNamespace = "::shardc::sc";
  let description = [{
    A float elementwise op whose scalar arithmetic is one row of SC_ELEMENTWISE_FORMULAS in
    runtime/kernels/common/include/shardc/kernels/FusedPrelude.h (the runtime has no MLIR, so
    the formula lives there). Generated kernels call `sc_op_<formula>`; the CPU library kernel
    of the same name instantiates the same template; import-time folding runs that kernel.
    The row is the op's mnemonic unless the op says otherwise (GELU's two variants).
  }];
  let methods = [
    InterfaceMethod<"The name of the op's row in SC_ELEMENTWISE_FORMULAS.",
      "::llvm::StringRef", "getFormula", (ins), [{}],
      [{ return $_op->getName().stripDialect(); }]>,
    InterfaceMethod<"Whether every operand has the result's element type (Pow's exponent may not).",
      "bool", "hasUniformOperandTypes", (ins), [{}], [{ return true; }]>,
  ];
  // Operands broadcast to the result's shape; the result has the first operand's element type.
  let verify = [{ return ::shardc::sc::verifyElementwiseFormulaOp($_op); }];
}

def Sc_StepOpInterface : OpInterface<"StepOpInterface"> {
  let cppNamespace = "::shardc::sc";
  let description = [{
    How the op runs: one artifact step, a kind (the runtime kernel's name) and typed
    attributes, over the op's operands and results. The default (defaultLowerToStep) is the
    kind `formula` naming the op's row for an elementwise formula op, otherwise the op's
    mnemonic with no attributes; ops with attributes or another kernel name define
    `lowerToStep` in lib/Dialect/ScStepLowering.cpp. The emitter writes the step; import-time constant folding
    runs the same step with the runtime's CPU kernel.

    `getCost` is the op's arithmetic and memory traffic per run (FLOPs, a multiply and an add
    counting two, and bytes read plus written), for `shardc report`, step profiles and a
    later cost model. The default counts no FLOPs (elementwise ops, normalisations and data
    movement are bound by memory, so their bytes are their cost); contractions and attention
    count theirs.
  }];
  let methods = [
    InterfaceMethod<"Fills the op's step kind and attributes.",
      "::mlir::LogicalResult", "lowerToStep", (ins "::shardc::StepDesc &":$step), [{}],
      [{ ::shardc::defaultLowerToStep($_op.getOperation(), step); return ::mlir::success(); }]>,
    InterfaceMethod<"The op's FLOPs and bytes moved per run.",
      "::shardc::OpCost", "getCost", (ins), [{}],
      [{ return ::shardc::defaultOpCost($_op.getOperation()); }]>,
  ];
}

def Sc_VjpOpInterface : OpInterface<"VjpOpInterface"> {
  let cppNamespace = "::shardc::sc";
  let description = [{
    The op's vector-Jacobian product (its reverse-mode derivative), read by sc-autodiff: given
    the gradients of the loss with respect to the op's results, build the ops that compute
    the gradients with respect to its operands. Rules live in lib/Dialect/ScVjpRules.cpp,
    like sharding rules in ScShardingRules.cpp; they compose sc ops (which carry their own
    sharding rules, steps and kernels), so the backward program is sharded, partitioned and
    run like the forward one.
  }];
  let methods = [
    InterfaceMethod<[{
      `resultGrads[i]` is the gradient of result i (null: none flows back, treat as zero; at
      least one is set). `wanted[j]` says whether operand j needs a gradient (it depends on a
      trainable parameter; an integer operand never does). Sets `operandGrads[j]` (sized to
      the operands, null on entry) to a value of operand j's type for each wanted operand; one
      left null receives nothing from this op (its gradient through it is zero). Fails with a
      diagnostic on the op when a wanted operand has a derivative the rule cannot build.
    }], "::mlir::LogicalResult", "buildVjp",
      (ins "::mlir::OpBuilder &":$b, "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::ArrayRef<bool>":$wanted,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>,
  ];
}

// An op with no operands whose results depend on nothing a run provides, only on the rank
// (a process index): sc-hoist-load-steps counts it as a load-time source like a parameter or
// a constant, so it and what it computes with weights run once at load. Verified: no
// operands, no side effects (lib/Dialect/ScStorage.cpp).
def Sc_LoadTimeSource : NativeOpTrait<"LoadTimeSource"> {
  let cppNamespace = "::shardc::sc";
}

#endif // SHARDC_SC_OP_INTERFACES
