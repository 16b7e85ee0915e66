// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @embedding
// CHECK: sc.embedding %arg0, %arg1
func.func @embedding(%t: tensor<32x8xf32>, %i: tensor<2x4xi64>) -> tensor<2x4x8xf32> {
  %0 = sc.embedding %t, %i : (tensor<32x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
  return %0 : tensor<2x4x8xf32>
}

// A vocabulary split (sc-partition): this rank's first row and the whole table's rows.
// CHECK-LABEL: func @embedding_rows_from
// CHECK: sc.embedding %arg0, %arg1 rows_from %arg2 {vocab_size = 64 : i64}
func.func @embedding_rows_from(%t: tensor<32x8xf32>, %i: tensor<2x4xi64>, %s: tensor<i64>) -> tensor<2x4x8xf32> {
  %0 = sc.embedding %t, %i rows_from %s {vocab_size = 64 : i64} : (tensor<32x8xf32>, tensor<2x4xi64>, tensor<i64>) -> tensor<2x4x8xf32>
  return %0 : tensor<2x4x8xf32>
}
