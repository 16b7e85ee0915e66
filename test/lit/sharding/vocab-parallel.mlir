// embedding_rowwise: the table's rows are split over tp, the lookup is Partial(sum) and is
// all-reduced before a consumer that cannot take Partial; the artifact step carries the
// vocabulary axes so each rank knows its first row.
// RUN: shardc-opt --sc-shard %s | FileCheck %s

#emb = loc("node_emb"("m.embed_tokens"("t.onnx":1:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"m.embed_tokens" = #sc.tp_style<embedding_rowwise>}} {
  func.func @main(%ids: tensor<2x8xi64>) -> tensor<2x8x16xf32> {
    %tab = sc.param "m.embed_tokens.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<64x16xf32>
    %x = sc.embedding %tab, %ids : (tensor<64x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32> loc(#emb)
    %y = sc.exp %x : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    return %y : tensor<2x8x16xf32>
  }
}

// CHECK: %[[T:.*]] = sc.param "m.embed_tokens.weight" {{.*}}: tensor<32x16xf32>
// CHECK: %[[E:.*]] = sc.embedding %[[T]], %arg0 {{.*}}partial = [tp: sum]{{.*}} : (tensor<32x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
// CHECK: %[[R:.*]] = sc.all_reduce %[[E]] {axes = ["tp"]
// CHECK: sc.exp %[[R]]
