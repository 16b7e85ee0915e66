// Where an sc value lives in the artifact, as the IR records it: the facts that
// sc-materialize-outputs, sc-hoist-load-steps, sc-plan-memory, the dialect's verifier and the
// artifact emitter share (docs/design.md, "Load steps and the memory plan").
//
// A value's buffer is a weight (sc.param), a constant (sc.constant), a persistent block
// written once when the artifact is loaded (the results of an op marked `sc.at_load`) or
// the arena (every other step result, and the function's arguments). An sc.layer's results
// are the buffers of the values its body yields.
#pragma once

#include "mlir/IR/Block.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>

namespace shardc::sc {

// Op: the op's step runs once at load (sc-hoist-load-steps); its results are persistent.
inline constexpr llvm::StringLiteral kAtLoadAttr = "sc.at_load";
// Op: per result, its offset in the arena / in the persistent block (sc-plan-memory).
inline constexpr llvm::StringLiteral kArenaOffsetsAttr = "sc.arena_offsets";
inline constexpr llvm::StringLiteral kPersistentOffsetsAttr = "sc.persistent_offsets";
// Function argument: its offset in the arena (sc-plan-memory).
inline constexpr llvm::StringLiteral kArenaOffsetAttr = "sc.arena_offset";
// Module: the arena's peak, the arena without reuse, and the persistent block's size.
inline constexpr llvm::StringLiteral kArenaBytesAttr = "sc.arena_bytes";
inline constexpr llvm::StringLiteral kNaiveArenaBytesAttr = "sc.naive_arena_bytes";
inline constexpr llvm::StringLiteral kPersistentBytesAttr = "sc.persistent_bytes";

// Verifies LoadTimeSource: no operands, no side effects.
mlir::LogicalResult verifyLoadTimeSource(mlir::Operation *op);

// Trait (Sc_LoadTimeSource in ScOpInterfaces.td): the op has no operands and its results
// depend on nothing a run provides (only on the rank, like a process index), so it can run
// when the artifact is loaded and what it computes is a load-time value.
template <typename ConcreteType>
class LoadTimeSource : public mlir::OpTrait::TraitBase<ConcreteType, LoadTimeSource> {
public:
  static mlir::LogicalResult verifyTrait(mlir::Operation *op) { return verifyLoadTimeSource(op); }
};

// The value whose buffer `v` uses: through sc.layer results to the yielded values.
mlir::Value storageValue(mlir::Value v);

// Whether the op is marked to run at load.
bool isAtLoad(mlir::Operation *op);

// Whether `v`'s buffer is filled before a run starts: a parameter, a constant or a result of
// an op marked sc.at_load (through sc.layer results).
bool isLoadTimeValue(mlir::Value v);

// Whether the emitter makes one artifact step of the op: sc.fused and StepOpInterface ops.
bool isStepOp(mlir::Operation *op);

// The step kind the op lowers to ("fused" for sc.fused), or nothing when it does not lower.
std::optional<std::string> stepKindOf(mlir::Operation *op);

// Calls `fn` on each step op of `block` in the order the emitter writes steps: program order,
// sc.layer bodies inline where the layer stands, sc.fused regions as one step.
mlir::LogicalResult forEachStep(mlir::Block &block, llvm::function_ref<mlir::LogicalResult(mlir::Operation *)> fn);

// The bytes of a tensor buffer of type `t` (an i1 element takes a byte), or nothing for an
// element type without a size.
std::optional<int64_t> bufferBytes(mlir::Type t);

} // namespace shardc::sc
