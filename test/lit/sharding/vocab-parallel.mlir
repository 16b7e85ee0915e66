// embedding_rowwise: the table's rows are split over tp, the lookup is Partial(sum) and is
// all-reduced before a consumer that cannot take Partial; sc-partition gives the lookup this
// rank's first row (from sc.process_index) and the whole table's rows.
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

// CHECK: %[[TAB:.*]] = sc.constant dense<[0, 32]> : tensor<2xi64>
// CHECK-NEXT: %[[PID:.*]] = sc.process_index {axes = ["tp"]} : tensor<i64>
// CHECK-NEXT: %[[START:.*]] = sc.gather %[[TAB]], %[[PID]] {axis = 0 : i64}
// CHECK: %[[T:.*]] = sc.param "m.embed_tokens.weight" {{.*}}: tensor<32x16xf32>
// CHECK: %[[E:.*]] = sc.embedding %[[T]], %arg0 rows_from %[[START]] {{.*}}partial = [tp: sum]{{.*}}vocab_size = 64 : i64} : (tensor<32x16xf32>, tensor<2x8xi64>, tensor<i64>) -> tensor<2x8x16xf32>
// CHECK: %[[R:.*]] = sc.all_reduce %[[E]] {axes = ["tp"]
// CHECK: sc.exp %[[R]]
