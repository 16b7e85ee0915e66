#!/usr/bin/env python3
"""Tiny exports of encoders with heads (issue 12 item 4): a sentence-transformers style BERT,
BERT with segment embeddings and a classification head, ViT, a T5 encoder.

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/breadth/export_encoders.py --out test/breadth/models
(torch 2.15.0, transformers 5.25.0 when the committed files were made). The test command
never runs this; the e2e.encoders.* tests read the committed files with the repo's venv.

Weights: seed 0, then 0.02·N(0,1) added to every parameter (so no value is a default).
<name>.io.npz beside each model holds PyTorch's inputs and outputs as <name>__<tensor>
(the keys tools/shardc_verify.py --reference reads); integer outputs keep their dtype.

  - st_minilm_ts:  sentence-transformers style: BertModel (hidden 64, 2 layers, 4 heads) +
                   mean pooling over attention_mask (sum of the mask clamped at 1e-9) + L2
                   normalisation. Outputs token_embeddings [B,S,64], sentence_embedding [B,64]
                   and token_count (the mask's row sums, int64 [B]). Exported the way published
                   sentence-transformers ONNX files were: the TorchScript exporter
                   (dynamo=False), opset 17, dynamic axes batch and sequence on every input
                   and output. Compile with --input-shape (the test binds 4x16).
  - st_minilm_dyn: the same module exported with dynamo=True (opset 18), batch and sequence
                   as torch.export Dims.
  - st_minilm_eager_ts: st_minilm_ts with BERT's eager attention (scores divided by √d, the
                   mask (1 - m)·finfo.min), as transformers wrote it when the published
                   sentence-transformers files were exported.
  Inputs of all three: input_ids, attention_mask (rows 16, 11, 6 and 3 tokens long: real padding),
  token_type_ids (a second segment in each row), int64 [4, 16].
  - bert_cls:      BertForSequenceClassification (3 labels; classifier weight ×50 so the logits
                   are of order 1): segment embeddings, pooler (dense + tanh over [CLS]),
                   classifier. dynamo=True at the inputs above; output logits [4, 3].
  - vit_cls:       ViTForImageClassification (image 32, patch 8, 3 channels, 5 labels): patch
                   Conv, [CLS] token concatenated, position embeddings. dynamo=True at
                   pixel_values [2, 3, 32, 32]; outputs logits [2, 5], last_hidden_state
                   [2, 17, 64].
  - t5_enc, t5_ts: T5EncoderModel (relative position bias, unscaled attention, RMS norm, ReLU
                   MLP) at input_ids and attention_mask above; t5_enc through the dynamo
                   exporter from an ExportedProgram (the module itself does not export: T5_NOTE),
                   t5_ts through the TorchScript exporter (opset 17). Output last_hidden_state.
"""
import argparse
import os
import sys

import numpy as np
import torch
import transformers

VOCAB = 128
B, S = 4, 16


def perturb(m):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))


def text_inputs():
    """input_ids, attention_mask with rows of different lengths, token_type_ids (segment B
    starting mid-row), int64 [B, S]."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (B, S), generator=g)
    lengths = [S, 11, 6, 3]
    mask = torch.zeros(B, S, dtype=torch.int64)
    tt = torch.zeros(B, S, dtype=torch.int64)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        ids[b, n:] = 0  # [PAD]
        tt[b, n // 2:n] = 1
    return ids, mask, tt


def bert_config(**kw):
    return transformers.BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=128,
                                   max_position_embeddings=64, type_vocab_size=2, **kw)


class SentenceEmbedder(torch.nn.Module):
    """BertModel + sentence-transformers' Pooling(mean) + Normalize."""

    def __init__(self, attn="sdpa"):
        super().__init__()
        self.bert = transformers.BertModel(bert_config(attn_implementation=attn), add_pooling_layer=False)

    def forward(self, input_ids, attention_mask, token_type_ids):
        tok = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                        token_type_ids=token_type_ids).last_hidden_state
        m = attention_mask.unsqueeze(-1).expand(tok.size()).to(tok.dtype)
        summed = torch.sum(tok * m, 1)
        count = torch.clamp(m.sum(1), min=1e-9)
        emb = torch.nn.functional.normalize(summed / count, p=2, dim=1)
        return tok, emb, attention_mask.sum(1)


def save_io(out, name, inputs, outputs):
    np.savez(os.path.join(out, name + ".io.npz"),
             **{f"{name}__{k}": v.detach().numpy() for k, v in list(inputs.items()) + list(outputs.items())})


def export_st(name, out, dynamo, attn="sdpa"):
    torch.manual_seed(0)
    m = SentenceEmbedder(attn).eval()
    perturb(m)
    ids, mask, tt = text_inputs()
    with torch.no_grad():
        tok, emb, cnt = m(ids, mask, tt)
    path = os.path.join(out, name + ".onnx")
    in_names = ["input_ids", "attention_mask", "token_type_ids"]
    out_names = ["token_embeddings", "sentence_embedding", "token_count"]
    if dynamo:
        bd, sd = torch.export.Dim("batch", max=64), torch.export.Dim("sequence", max=64)
        dyn = {k: {0: bd, 1: sd} for k in in_names}
        prog = torch.onnx.export(m, (ids, mask, tt), dynamo=True, input_names=in_names,
                                 output_names=out_names, dynamic_shapes=(dyn["input_ids"],
                                 dyn["attention_mask"], dyn["token_type_ids"]), external_data=False)
        prog.save(path)
    else:
        axes = {k: {0: "batch", 1: "sequence"} for k in in_names + ["token_embeddings"]}
        axes["sentence_embedding"] = {0: "batch"}
        axes["token_count"] = {0: "batch"}
        torch.onnx.export(m, (ids, mask, tt), path, dynamo=False, opset_version=17,
                          input_names=in_names, output_names=out_names, dynamic_axes=axes,
                          do_constant_folding=True)
    save_io(out, name, dict(zip(in_names, (ids, mask, tt))),
            dict(zip(out_names, (tok, emb, cnt))))
    print(f"exported {path}: {os.path.getsize(path)} bytes")


class BertClassifier(torch.nn.Module):
    """BertForSequenceClassification (pooler: dense + tanh over [CLS]; classifier linear)."""

    def __init__(self):
        super().__init__()
        self.m = transformers.BertForSequenceClassification(bert_config(num_labels=3))

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def export_static(name, out, module, inputs, out_names):
    """dynamo=True at the inputs' shapes (opset 18)."""
    with torch.no_grad():
        outs = module(*inputs.values())
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    path = os.path.join(out, name + ".onnx")
    prog = torch.onnx.export(module, tuple(inputs.values()), dynamo=True, input_names=list(inputs),
                             output_names=out_names, external_data=False)
    prog.save(path)
    save_io(out, name, inputs, dict(zip(out_names, outs)))
    print(f"exported {path}: {os.path.getsize(path)} bytes")


def export_bert_cls(out):
    torch.manual_seed(0)
    m = BertClassifier().eval()
    perturb(m)
    with torch.no_grad():  # logits of order 1, so that 1e-4 is a tight tolerance
        m.m.classifier.weight.mul_(50.0)
    ids, mask, tt = text_inputs()
    export_static("bert_cls", out, m, dict(input_ids=ids, attention_mask=mask, token_type_ids=tt), ["logits"])


class VitClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=64,
                                     num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                     num_labels=5)
        self.m = transformers.ViTForImageClassification(cfg)

    def forward(self, pixel_values):
        o = self.m(pixel_values=pixel_values, output_hidden_states=True)
        return o.logits, o.hidden_states[-1]


def export_vit(out):
    torch.manual_seed(0)
    m = VitClassifier().eval()
    perturb(m)
    px = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    export_static("vit_cls", out, m, dict(pixel_values=px), ["logits", "last_hidden_state"])


class T5Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        cfg = transformers.T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                                    relative_attention_num_buckets=32, relative_attention_max_distance=64,
                                    feed_forward_proj="relu", use_cache=False)
        self.m = transformers.T5EncoderModel(cfg)

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


T5_NOTE = """torch.onnx.export(T5EncoderModel, dynamo=True) straight from the module fails in
torch 2.15 / transformers 5.25 while the exporter runs its decompositions:
  ValueError: Cannot view a tensor with shape torch.Size([3, 16, 4, 16]) and strides
  (1024, 16, 256, 1) as a tensor with shape (3, 16, 64)!
  (aten.view.default of T5Attention's transposed attention output)
Exporting the ExportedProgram instead works: torch.export.export(m, strict=False), then
ep.run_decompositions() (PyTorch's default table), then torch.onnx.export(ep, dynamo=True).
The TorchScript exporter (dynamo=False, opset 17) works too: its relative-position buckets
(Abs of int64, Less, Log, Min, Where) fold at import once the shapes are static."""


def export_t5(out):
    """t5_enc: the ExportedProgram route (T5_NOTE); t5_ts: the TorchScript exporter."""
    torch.manual_seed(0)
    m = T5Encoder().eval()
    perturb(m)
    ids, mask, _ = text_inputs()
    with torch.no_grad():
        ref = m(ids, mask)
    ins, outs = dict(input_ids=ids, attention_mask=mask), dict(last_hidden_state=ref)
    ep = torch.export.export(m, (ids, mask), strict=False).run_decompositions()
    path = os.path.join(out, "t5_enc.onnx")
    prog = torch.onnx.export(ep, dynamo=True, input_names=list(ins), output_names=list(outs), external_data=False)
    prog.save(path)
    save_io(out, "t5_enc", ins, outs)
    print(f"exported {path}: {os.path.getsize(path)} bytes")
    path = os.path.join(out, "t5_ts.onnx")
    torch.onnx.export(m, (ids, mask), path, dynamo=False, opset_version=17, input_names=list(ins),
                      output_names=list(outs))
    save_io(out, "t5_ts", ins, outs)
    print(f"exported {path}: {os.path.getsize(path)} bytes")


EXPORTS = {
    "st_minilm_ts": lambda out: export_st("st_minilm_ts", out, dynamo=False),
    "st_minilm_dyn": lambda out: export_st("st_minilm_dyn", out, dynamo=True),
    "st_minilm_eager_ts": lambda out: export_st("st_minilm_eager_ts", out, dynamo=False, attn="eager"),
    "bert_cls": export_bert_cls,
    "vit_cls": export_vit,
    "t5_enc": export_t5,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    ap.add_argument("--model", action="append", help="default: all")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in args.model or list(EXPORTS):
        try:
            EXPORTS[name](args.out)
        except Exception as e:  # noqa: BLE001  (report every model, then fail)
            print(f"{name}: export failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
