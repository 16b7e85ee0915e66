// RUN: shardc-opt --sc-fuse-linear-epilogue %s | FileCheck %s

// A tanh GELU reading only a biased linear folds into the linear's epilogue.
// CHECK-LABEL: func.func @folds
// CHECK: %[[Y:.*]] = sc.linear %arg0, %arg1, %arg2 {epilogue = #sc.epilogue<gelu_tanh>}
// CHECK-NOT: sc.gelu
// CHECK: return %[[Y]]
func.func @folds(%x: tensor<4x8xbf16>, %w: tensor<8x16xbf16>, %b: tensor<16xbf16>) -> tensor<4x16xbf16> {
  %0 = sc.linear %x, %w, %b : (tensor<4x8xbf16>, tensor<8x16xbf16>, tensor<16xbf16>) -> tensor<4x16xbf16>
  %1 = sc.gelu %0 {approximate = #sc.gelu_approximation<tanh>} : (tensor<4x16xbf16>) -> tensor<4x16xbf16>
  return %1 : tensor<4x16xbf16>
}

// Through a reshape only the GELU reads (GPT-2's Conv1D around its Gemm).
// CHECK-LABEL: func.func @through_reshape
// CHECK: %[[Y:.*]] = sc.linear %arg0, %arg1, %arg2 {epilogue = #sc.epilogue<gelu_tanh>}
// CHECK: %[[R:.*]] = sc.reshape %[[Y]]
// CHECK-NOT: sc.gelu
// CHECK: return %[[R]]
func.func @through_reshape(%x: tensor<32x64xf32>, %w: tensor<64x256xf32>, %b: tensor<256xf32>) -> tensor<2x16x256xf32> {
  %0 = sc.linear %x, %w, %b : (tensor<32x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<32x256xf32>
  %1 = sc.reshape %0 : (tensor<32x256xf32>) -> tensor<2x16x256xf32>
  %2 = sc.gelu %1 {approximate = #sc.gelu_approximation<tanh>} : (tensor<2x16x256xf32>) -> tensor<2x16x256xf32>
  return %2 : tensor<2x16x256xf32>
}

// Left alone: the exact (erf) GELU, no bias (the plans take one), and a linear read twice.
// CHECK-LABEL: func.func @kept
// CHECK-NOT: epilogue
// CHECK-COUNT-3: sc.gelu
func.func @kept(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>)
    -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>) {
  %0 = sc.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %1 = sc.gelu %0 {approximate = #sc.gelu_approximation<none>} : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %2 = sc.linear %x, %w : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %3 = sc.gelu %2 {approximate = #sc.gelu_approximation<tanh>} : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %4 = sc.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %5 = sc.gelu %4 {approximate = #sc.gelu_approximation<tanh>} : (tensor<4x16xf32>) -> tensor<4x16xf32>
  return %1, %3, %5, %4 : tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>
}
