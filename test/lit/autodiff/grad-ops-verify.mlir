// The verifiers of the backward ops sc-autodiff creates (ScGradOps.cpp): shapes and element
// types of sc.attention_grad, sc.embedding_grad and sc.token_loss_grad.
// RUN: shardc-opt --split-input-file --verify-diagnostics %s

// A well-formed one of each parses and verifies.
func.func @ok(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x6xf32>, %o: tensor<1x4x3x6xf32>,
              %lse: tensor<1x4x3xf32>, %ids: tensor<2x3xi64>, %dy: tensor<2x3x8xbf16>,
              %logits: tensor<2x3x16xbf16>, %labels: tensor<2x3xi64>, %ds: tensor<f32>, %start: tensor<i64>) {
  %dq, %dk, %dv = sc.attention_grad %q, %k, %v, %o, %lse, %o {scale = 0.5 : f32} : (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x6xf32>, tensor<1x4x3x6xf32>, tensor<1x4x3xf32>, tensor<1x4x3x6xf32>) -> (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x6xf32>)
  %e = sc.embedding_grad %ids, %dy : (tensor<2x3xi64>, tensor<2x3x8xbf16>) -> tensor<32x8xbf16>
  %es = sc.embedding_grad %ids, %dy rows_from %start {vocab_size = 64 : i64, padding_idx = 0 : i64} : (tensor<2x3xi64>, tensor<2x3x8xbf16>, tensor<i64>) -> tensor<32x8xbf16>
  %t = sc.token_loss_grad %logits, %labels, %ds : (tensor<2x3x16xbf16>, tensor<2x3xi64>, tensor<f32>) -> tensor<2x3x16xbf16>
  return
}

// -----

func.func @attention_grad_heads(%q: tensor<1x3x3x8xf32>, %k: tensor<1x2x3x8xf32>, %o: tensor<1x3x3x8xf32>, %lse: tensor<1x3x3xf32>) {
  // expected-error @below {{q, k, v must be attention's [B, H, S, D] operands, got [1x3x3x8], [1x2x3x8], [1x2x3x8]}}
  %dq, %dk, %dv = sc.attention_grad %q, %k, %k, %o, %lse, %o {scale = 0.5 : f32} : (tensor<1x3x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x3x3x8xf32>, tensor<1x3x3xf32>, tensor<1x3x3x8xf32>) -> (tensor<1x3x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>)
  return
}

// -----

func.func @attention_grad_dout(%q: tensor<1x2x3x8xf32>, %o: tensor<1x2x3x8xf32>, %d: tensor<1x2x4x8xf32>, %lse: tensor<1x2x3xf32>) {
  // expected-error @below {{out and dout must be [1x2x3x8]}}
  %dq, %dk, %dv = sc.attention_grad %q, %q, %q, %o, %lse, %d {scale = 0.5 : f32} : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3xf32>, tensor<1x2x4x8xf32>) -> (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>)
  return
}

// -----

func.func @attention_grad_lse(%q: tensor<1x2x3x8xbf16>, %lse: tensor<1x2x3xbf16>) {
  // expected-error @below {{lse must be f32 [1x2x3], got 'tensor<1x2x3xbf16>'}}
  %dq, %dk, %dv = sc.attention_grad %q, %q, %q, %q, %lse, %q {scale = 0.5 : f32} : (tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3xbf16>, tensor<1x2x3x8xbf16>) -> (tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>)
  return
}

// -----

func.func @attention_grad_dkey(%q: tensor<1x2x3x8xbf16>, %lse: tensor<1x2x3xf32>) {
  // expected-error @below {{dkey must have the type of its primal 'tensor<1x2x3x8xbf16>', got 'tensor<1x2x3x8xf32>'}}
  %dq, %dk, %dv = sc.attention_grad %q, %q, %q, %q, %lse, %q {scale = 0.5 : f32} : (tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3x8xbf16>, tensor<1x2x3xf32>, tensor<1x2x3x8xbf16>) -> (tensor<1x2x3x8xbf16>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xbf16>)
  return
}

// -----

func.func @embedding_grad_ids(%ids: tensor<2x3xf32>, %dy: tensor<2x3x8xf32>) {
  // expected-error @below {{ids must be integers, got 'f32'}}
  %e = sc.embedding_grad %ids, %dy : (tensor<2x3xf32>, tensor<2x3x8xf32>) -> tensor<32x8xf32>
  return
}

// -----

func.func @embedding_grad_width(%ids: tensor<2x3xi64>, %dy: tensor<2x3x8xf32>) {
  // expected-error @below {{dy [2x3x8] must be ids [2x3] by the table's width, and the result [V, H], got [32x4]}}
  %e = sc.embedding_grad %ids, %dy : (tensor<2x3xi64>, tensor<2x3x8xf32>) -> tensor<32x4xf32>
  return
}

// -----

func.func @embedding_grad_rows(%ids: tensor<2x3xi64>, %dy: tensor<3x2x8xf32>) {
  // expected-error @below {{dy [3x2x8] must be ids [2x3] by the table's width}}
  %e = sc.embedding_grad %ids, %dy : (tensor<2x3xi64>, tensor<3x2x8xf32>) -> tensor<32x8xf32>
  return
}

// -----

func.func @embedding_grad_type(%ids: tensor<2x3xi64>, %dy: tensor<2x3x8xbf16>) {
  // expected-error @below {{result element type must be dy's 'bf16'}}
  %e = sc.embedding_grad %ids, %dy : (tensor<2x3xi64>, tensor<2x3x8xbf16>) -> tensor<32x8xf32>
  return
}

// -----

func.func @embedding_grad_split(%ids: tensor<2x3xi64>, %dy: tensor<2x3x8xf32>, %start: tensor<i64>) {
  // expected-error @below {{row_start and vocab_size go together}}
  %e = sc.embedding_grad %ids, %dy rows_from %start : (tensor<2x3xi64>, tensor<2x3x8xf32>, tensor<i64>) -> tensor<32x8xf32>
  return
}

// -----

func.func @embedding_grad_start(%ids: tensor<2x3xi64>, %dy: tensor<2x3x8xf32>, %start: tensor<1xi64>) {
  // expected-error @below {{row_start must be an i64 scalar, got 'tensor<1xi64>'}}
  %e = sc.embedding_grad %ids, %dy rows_from %start {vocab_size = 64 : i64} : (tensor<2x3xi64>, tensor<2x3x8xf32>, tensor<1xi64>) -> tensor<32x8xf32>
  return
}

// -----

func.func @token_loss_grad_rank(%logits: tensor<6x16xf32>, %labels: tensor<2x3xi64>, %ds: tensor<f32>) {
  // expected-error @below {{logits must be float [B, S, V], got 'tensor<6x16xf32>'}}
  %t = sc.token_loss_grad %logits, %labels, %ds : (tensor<6x16xf32>, tensor<2x3xi64>, tensor<f32>) -> tensor<6x16xf32>
  return
}

// -----

func.func @token_loss_grad_labels(%logits: tensor<2x3x16xf32>, %labels: tensor<2x4xi64>, %ds: tensor<f32>) {
  // expected-error @below {{labels must be i64 [B, S] of the logits, got 'tensor<2x4xi64>'}}
  %t = sc.token_loss_grad %logits, %labels, %ds : (tensor<2x3x16xf32>, tensor<2x4xi64>, tensor<f32>) -> tensor<2x3x16xf32>
  return
}

// -----

func.func @token_loss_grad_label_type(%logits: tensor<2x3x16xf32>, %labels: tensor<2x3xi32>, %ds: tensor<f32>) {
  // expected-error @below {{labels must be i64 [B, S] of the logits, got 'tensor<2x3xi32>'}}
  %t = sc.token_loss_grad %logits, %labels, %ds : (tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32>) -> tensor<2x3x16xf32>
  return
}

// -----

func.func @token_loss_grad_dsum(%logits: tensor<2x3x16xf32>, %labels: tensor<2x3xi64>, %ds: tensor<1xf32>) {
  // expected-error @below {{dsum must be an f32 scalar, got 'tensor<1xf32>'}}
  %t = sc.token_loss_grad %logits, %labels, %ds : (tensor<2x3x16xf32>, tensor<2x3xi64>, tensor<1xf32>) -> tensor<2x3x16xf32>
  return
}

// -----

func.func @token_loss_grad_result(%logits: tensor<2x3x16xbf16>, %labels: tensor<2x3xi64>, %ds: tensor<f32>) {
  // expected-error @below {{result must have the type of its primal 'tensor<2x3x16xbf16>', got 'tensor<2x3x16xf32>'}}
  %t = sc.token_loss_grad %logits, %labels, %ds : (tensor<2x3x16xbf16>, tensor<2x3xi64>, tensor<f32>) -> tensor<2x3x16xf32>
  return
}
