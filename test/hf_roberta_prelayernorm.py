"""Hugging Face's RoBERTa-PreLayerNorm in plain PyTorch, for test/hf-export.test.ts.

`transformers` cannot be installed beside Debian's torch 1.13 (its wheels need
torch >= 2.5), so this file re-implements the forward pass of
RobertaPreLayerNormForMaskedLM, RobertaPreLayerNormForTokenClassification and
RobertaPreLayerNormForSequenceClassification from the structure of
transformers' models/roberta_prelayernorm/modeling_roberta_prelayernorm.py:
the same module tree and attribute names (so a state dict loads by Hugging
Face's tensor names), the same order of operations, RoBERTa's position ids
computed from the input ids, the tied decoder, the extended attention mask.
It reads only what from_pretrained reads: config.json's Hugging Face fields
(never untie's "untie_*" keys) and model.safetensors, parsed by hand (no
safetensors package here): an 8-byte little-endian header length, a JSON
header, raw little-endian data.

Loading is stricter than from_pretrained, which warns and initialises at
random a weight it does not find: here every parameter must come from the
file, except the decoder that Hugging Face ties to the word embeddings and
the lm_head bias, and the file may hold nothing the model does not use.

Usage: hf_roberta_prelayernorm.py DIR [DIR ...] (one torch import for all).
DIR/model is an exported folder, DIR/inputs.json holds input_ids and
token_type_ids (lists of rows; [PAD] = pad_token_id marks padding, as a
Hugging Face tokenizer pads). Writes DIR/logits.f32 (raw float32) and
DIR/hf.json (class, logits shape, the position ids used).
"""
import json
import math
import os
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[entry["dtype"]]) if end > start else torch.empty(0)
        out[name] = t.reshape(entry["shape"]).clone()
    return out


# ---- the modules, as modeling_roberta_prelayernorm.py names them


def create_position_ids_from_input_ids(input_ids, padding_idx):
    # Real tokens count up from padding_idx + 1; padding keeps padding_idx.
    mask = input_ids.ne(padding_idx).int()
    incremental_indices = torch.cumsum(mask, dim=1).type_as(mask) * mask
    return incremental_indices.long() + padding_idx


class RobertaPreLayerNormEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.padding_idx = cfg["pad_token_id"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"], padding_idx=self.padding_idx)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"], padding_idx=self.padding_idx)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, input_ids, token_type_ids):
        position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx)
        self.last_position_ids = position_ids
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class RobertaPreLayerNormSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.num_attention_heads = cfg["num_attention_heads"]
        self.attention_head_size = cfg["hidden_size"] // cfg["num_attention_heads"]
        self.query = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.key = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.value = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.dropout = nn.Dropout(cfg["attention_probs_dropout_prob"])

    def transpose_for_scores(self, x):
        return x.view(x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)).permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        attention_probs = self.dropout(nn.functional.softmax(attention_scores + attention_mask, dim=-1))
        context_layer = torch.matmul(attention_probs, value_layer).permute(0, 2, 1, 3).contiguous()
        return context_layer.view(context_layer.size()[:-2] + (self.num_attention_heads * self.attention_head_size,))


class RobertaPreLayerNormSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, hidden_states, input_tensor):
        return self.dropout(self.dense(hidden_states)) + input_tensor


class RobertaPreLayerNormAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = RobertaPreLayerNormSelfAttention(cfg)
        self.output = RobertaPreLayerNormSelfOutput(cfg)
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, hidden_states, attention_mask):
        # The Pre-LN step: LayerNorm before self-attention; the residual is the un-normalised input.
        return self.output(self.self(self.LayerNorm(hidden_states), attention_mask), hidden_states)


class RobertaPreLayerNormIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])

    def forward(self, hidden_states):
        # hidden_act "gelu" is ACT2FN["gelu"]: the exact (erf) GELU.
        return nn.functional.gelu(self.dense(self.LayerNorm(hidden_states)))


class RobertaPreLayerNormOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, hidden_states, input_tensor):
        return self.dropout(self.dense(hidden_states)) + input_tensor


class RobertaPreLayerNormLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = RobertaPreLayerNormAttention(cfg)
        self.intermediate = RobertaPreLayerNormIntermediate(cfg)
        self.output = RobertaPreLayerNormOutput(cfg)

    def forward(self, hidden_states, attention_mask):
        attention_output = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(attention_output), attention_output)


class RobertaPreLayerNormEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([RobertaPreLayerNormLayer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, hidden_states, attention_mask):
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states, attention_mask)
        return hidden_states


class RobertaPreLayerNormModel(nn.Module):
    """add_pooling_layer=False, as every head below builds it."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = RobertaPreLayerNormEmbeddings(cfg)
        self.encoder = RobertaPreLayerNormEncoder(cfg)
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, input_ids, attention_mask, token_type_ids):
        # get_extended_attention_mask: (B, 1, 1, T), 0 where attended, the dtype's minimum on padding.
        extended = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids), extended)
        return self.LayerNorm(sequence_output)


class RobertaPreLayerNormLMHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.layer_norm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        self.decoder = nn.Linear(cfg["hidden_size"], cfg["vocab_size"])
        self.bias = nn.Parameter(torch.zeros(cfg["vocab_size"]))
        self.decoder.bias = self.bias

    def forward(self, features):
        return self.decoder(self.layer_norm(nn.functional.gelu(self.dense(features))))


class RobertaPreLayerNormForMaskedLM(nn.Module):
    tied = {"lm_head.decoder.weight", "lm_head.decoder.bias"}

    def __init__(self, cfg):
        super().__init__()
        self.roberta_prelayernorm = RobertaPreLayerNormModel(cfg)
        self.lm_head = RobertaPreLayerNormLMHead(cfg)
        if cfg.get("tie_word_embeddings", True):
            self.lm_head.decoder.weight = self.roberta_prelayernorm.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.lm_head(self.roberta_prelayernorm(input_ids, attention_mask, token_type_ids))


class RobertaPreLayerNormForTokenClassification(nn.Module):
    tied = set()

    def __init__(self, cfg):
        super().__init__()
        self.roberta_prelayernorm = RobertaPreLayerNormModel(cfg)
        dropout = cfg.get("classifier_dropout")
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"] if dropout is None else dropout)
        self.classifier = nn.Linear(cfg["hidden_size"], cfg["num_labels"])

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.classifier(self.dropout(self.roberta_prelayernorm(input_ids, attention_mask, token_type_ids)))


class RobertaPreLayerNormClassificationHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        dropout = cfg.get("classifier_dropout")
        self.dropout = nn.Dropout(cfg["hidden_dropout_prob"] if dropout is None else dropout)
        self.out_proj = nn.Linear(cfg["hidden_size"], cfg["num_labels"])

    def forward(self, features):
        x = self.dropout(features[:, 0, :])  # the first token (<s> in RoBERTa, [CLS] here)
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class RobertaPreLayerNormForSequenceClassification(nn.Module):
    tied = set()

    def __init__(self, cfg):
        super().__init__()
        self.roberta_prelayernorm = RobertaPreLayerNormModel(cfg)
        self.classifier = RobertaPreLayerNormClassificationHead(cfg)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.classifier(self.roberta_prelayernorm(input_ids, attention_mask, token_type_ids))


CLASSES = {c.__name__: c for c in (RobertaPreLayerNormForMaskedLM, RobertaPreLayerNormForTokenClassification, RobertaPreLayerNormForSequenceClassification)}


def from_pretrained(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "roberta-prelayernorm", cfg["model_type"]
    assert cfg["hidden_act"] == "gelu" and cfg.get("position_embedding_type", "absolute") == "absolute"
    cfg.setdefault("pad_token_id", 1)  # RobertaPreLayerNormConfig's default
    if "id2label" in cfg:
        cfg["num_labels"] = len(cfg["id2label"])
    cls = CLASSES[cfg["architectures"][0]]
    model = cls(cfg)
    state = read_safetensors(os.path.join(folder, "model.safetensors"))
    expected = set(model.state_dict().keys())
    missing = sorted(expected - set(state) - cls.tied)
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise SystemExit(f"{folder}: missing {missing}, unexpected {unexpected}")
    model.load_state_dict(state, strict=False)
    if cls is RobertaPreLayerNormForMaskedLM:
        # The tie must survive loading, as Hugging Face's tie_weights() keeps it.
        assert model.lm_head.decoder.weight is model.roberta_prelayernorm.embeddings.word_embeddings.weight
        assert model.lm_head.decoder.bias is model.lm_head.bias
    return cls.__name__, model.eval()


def main(d):
    torch.set_num_threads(1)
    name, model = from_pretrained(os.path.join(d, "model"))
    with open(os.path.join(d, "inputs.json")) as f:
        inputs = json.load(f)
    input_ids = torch.tensor(inputs["input_ids"], dtype=torch.long)
    token_type_ids = torch.tensor(inputs["token_type_ids"], dtype=torch.long)
    # As a Hugging Face tokenizer pads: attention_mask 0 exactly on [PAD].
    attention_mask = input_ids.ne(model.roberta_prelayernorm.embeddings.padding_idx).long()
    with torch.no_grad():
        logits = model(input_ids, attention_mask, token_type_ids)
    with open(os.path.join(d, "logits.f32"), "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f4").tobytes())
    with open(os.path.join(d, "hf.json"), "w") as f:
        json.dump({
            "class": name,
            "shape": list(logits.shape),
            "position_ids": model.roberta_prelayernorm.embeddings.last_position_ids.tolist(),
            "torch_version": torch.__version__,
        }, f)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
