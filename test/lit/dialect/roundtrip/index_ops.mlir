// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @compare_and_formulas
// CHECK: sc.less %arg0, %arg1
// CHECK: sc.less_equal %arg0, %arg1
// CHECK: sc.leaky_relu %arg0, %arg2
// CHECK: sc.mod %arg3, %arg3
// CHECK: sc.fmod %arg0, %arg1
func.func @compare_and_formulas(%x: tensor<4x8xf32>, %y: tensor<8xf32>, %a: tensor<f32>, %i: tensor<4xi64>)
    -> (tensor<4x8xi1>, tensor<4x8xi1>, tensor<4x8xf32>, tensor<4xi64>, tensor<4x8xf32>) {
  %0 = sc.less %x, %y : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xi1>
  %1 = sc.less_equal %x, %y : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xi1>
  %2 = sc.leaky_relu %x, %a : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %3 = sc.mod %i, %i : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  %4 = sc.fmod %x, %y : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0, %1, %2, %3, %4 : tensor<4x8xi1>, tensor<4x8xi1>, tensor<4x8xf32>, tensor<4xi64>, tensor<4x8xf32>
}

// CHECK-LABEL: func @scans
// CHECK: sc.cumsum %arg0 {axis = 1 : i64, exclusive = true, reverse = true}
// CHECK: sc.arg_max %arg0 {axis = 0 : i64, keepdims = false, select_last_index = true}
// CHECK: sc.scatter_nd %arg0, %arg1, %arg2 {reduction = "max"}
func.func @scans(%x: tensor<4x8xf32>, %i: tensor<2x1xi64>, %u: tensor<2x8xf32>)
    -> (tensor<4x8xf32>, tensor<8xi64>, tensor<4x8xf32>) {
  %0 = sc.cumsum %x {axis = 1 : i64, exclusive = true, reverse = true} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = sc.arg_max %x {axis = 0 : i64, keepdims = false, select_last_index = true} : (tensor<4x8xf32>) -> tensor<8xi64>
  %2 = sc.scatter_nd %x, %i, %u {reduction = "max"} : (tensor<4x8xf32>, tensor<2x1xi64>, tensor<2x8xf32>) -> tensor<4x8xf32>
  return %0, %1, %2 : tensor<4x8xf32>, tensor<8xi64>, tensor<4x8xf32>
}
