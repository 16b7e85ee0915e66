// RUN: shardc-opt --sc-materialize-outputs --split-input-file %s | FileCheck %s
// RUN: shardc-opt --sc-materialize-outputs --sc-materialize-outputs --split-input-file %s | FileCheck %s
// RUN: shardc-opt --sc-materialize-outputs --split-input-file --mlir-print-debuginfo %s | FileCheck %s --check-prefix=LOC

// A parameter, a constant and an argument returned as they are are copied (in output order,
// before the return); a step result is not; running the pass twice adds nothing.
// CHECK-LABEL: func @outputs
// CHECK: %[[W:.*]] = sc.param "m.w"
// CHECK: %[[C:.*]] = sc.constant
// CHECK: %[[N:.*]] = sc.neg %arg0
// CHECK-NEXT: %[[CW:.*]] = sc.copy %[[W]] : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: %[[CC:.*]] = sc.copy %[[C]]
// CHECK-NEXT: %[[CX:.*]] = sc.copy %arg0
// CHECK-NEXT: return %[[N]], %[[CW]], %[[CC]], %[[CX]] :
// CHECK-NOT: sc.copy
// The copy is located at `output <name>`: the result's sc.name, else output<i>.
// LOC-LABEL: func @outputs
// LOC: sc.copy {{.*}} loc(#[[L1:loc[0-9]*]])
// LOC: sc.copy {{.*}} loc(#[[L2:loc[0-9]*]])
// LOC: sc.copy {{.*}} loc(#[[L3:loc[0-9]*]])
// LOC-DAG: #[[L1]] = loc("output weight")
// LOC-DAG: #[[L2]] = loc("output output2")
// LOC-DAG: #[[L3]] = loc("output x")
func.func @outputs(%x: tensor<4xf32> {sc.name = "x"}) -> (tensor<4xf32> {sc.name = "y"}, tensor<4xf32> {sc.name = "weight"}, tensor<4xf32>, tensor<4xf32> {sc.name = "x"}) {
  %w = sc.param "m.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<4xf32>
  %c = sc.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %n = sc.neg %x : (tensor<4xf32>) -> tensor<4xf32>
  return %n, %w, %c, %x : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// Through an sc.layer: a layer's result is the buffer its body yields; a parameter yielded
// by a layer is copied, a step result yielded by a layer is not.
// CHECK-LABEL: func @through_layer
// CHECK: %[[L:.*]]:2 = sc.layer
// CHECK: %[[C:.*]] = sc.copy %[[L]]#1
// CHECK: return %[[L]]#0, %[[C]]
func.func @through_layer(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %l:2 = sc.layer "m.layers.0" -> tensor<4xf32>, tensor<4xf32> {
    %w = sc.param "m.layers.0.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<4xf32>
    %n = sc.neg %x : (tensor<4xf32>) -> tensor<4xf32>
    sc.yield %n, %w : tensor<4xf32>, tensor<4xf32>
  }
  return %l#0, %l#1 : tensor<4xf32>, tensor<4xf32>
}
