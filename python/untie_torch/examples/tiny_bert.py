"""A BERT for masked LM in plain PyTorch (no `transformers`), with Hugging
Face's BertForMaskedLM module tree and parameter names, computing what
untie's src/models/bert.ts computes: Post-LN (or Pre-LN), exact (erf) GELU,
an additive key mask of -1e9 on padding, the MLM decoder tied to the word
embeddings, the loss a mean cross-entropy over the masked positions
(labels != -100). Its repeated layers are `bert.encoder.layer`, a ModuleList,
as in Hugging Face, so untie_torch's SharingController finds them there.

Used by the tests and by examples/train_ddp.py; a Hugging Face
BertForMaskedLM works the same way with untie_torch.
"""
import json
import math

import torch
import torch.nn.functional as F
from torch import nn


def default_config(**kw):
    c = dict(vocabSize=64, hidden=32, layers=4, heads=4, intermediate=64, maxPositions=32, typeVocabSize=2,
             layerNormEps=1e-12, dropout=0.0, attentionDropout=0.0, norm="post", initStd=0.02)
    c.update(kw)
    return c


def config_from_hf(path):
    """untie's config from an exported config.json (Hugging Face BertConfig names)."""
    with open(path, encoding="utf-8") as f:
        h = json.load(f)
    return default_config(vocabSize=h["vocab_size"], hidden=h["hidden_size"], layers=h["num_hidden_layers"], heads=h["num_attention_heads"],
                          intermediate=h["intermediate_size"], maxPositions=h["max_position_embeddings"], typeVocabSize=h["type_vocab_size"],
                          layerNormEps=h["layer_norm_eps"], dropout=h["hidden_dropout_prob"], attentionDropout=h["attention_probs_dropout_prob"],
                          norm=h.get("untie_norm", "post"), initStd=h.get("initializer_range", 0.02))


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(c["hidden"], c["hidden"]) for _ in range(3))
        self.heads, self.drop = c["heads"], nn.Dropout(c["attentionDropout"])

    def forward(self, x, key_mask):
        B, T, C = x.shape
        D = C // self.heads

        def split(t):
            return t.view(B, T, self.heads, D).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + key_mask
        return torch.matmul(self.drop(torch.softmax(scores, dim=-1)), v).transpose(1, 2).reshape(B, T, C)


class SelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden"], c["hidden"])
        self.LayerNorm = nn.LayerNorm(c["hidden"], eps=c["layerNormEps"])


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "self", SelfAttention(c))
        self.output = SelfOutput(c)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden"], c["intermediate"])


class Output(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate"], c["hidden"])
        self.LayerNorm = nn.LayerNorm(c["hidden"], eps=c["layerNormEps"])


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention, self.intermediate, self.output = Attention(c), Intermediate(c), Output(c)
        self.drop, self.pre = nn.Dropout(c["dropout"]), c["norm"] == "pre"

    def forward(self, x, key_mask):
        att, ao = self.attention.self, self.attention.output

        def ffn(h):
            return self.output.dense(F.gelu(self.intermediate.dense(h)))

        if not self.pre:
            h = ao.LayerNorm(x + self.drop(ao.dense(att(x, key_mask))))
            return self.output.LayerNorm(h + self.drop(ffn(h)))
        h = x + self.drop(ao.dense(att(ao.LayerNorm(x), key_mask)))
        return h + self.drop(ffn(self.output.LayerNorm(h)))


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocabSize"], c["hidden"])
        self.position_embeddings = nn.Embedding(c["maxPositions"], c["hidden"])
        self.token_type_embeddings = nn.Embedding(c["typeVocabSize"], c["hidden"])
        self.LayerNorm = nn.LayerNorm(c["hidden"], eps=c["layerNormEps"])
        self.drop = nn.Dropout(c["dropout"])

    def forward(self, ids, types):
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)
        return self.drop(self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        if c["norm"] == "pre":
            self.final_layer_norm = nn.LayerNorm(c["hidden"], eps=c["layerNormEps"])


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings, self.encoder = Embeddings(c), Encoder(c)


class Transform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden"], c["hidden"])
        self.LayerNorm = nn.LayerNorm(c["hidden"], eps=c["layerNormEps"])


class Predictions(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = Transform(c)
        self.bias = nn.Parameter(torch.zeros(c["vocabSize"]))


class Cls(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = Predictions(c)


class BertForMaskedLM(nn.Module):
    def __init__(self, c, seed=0):
        super().__init__()
        self.config = c
        self.bert, self.cls = Bert(c), Cls(c)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "LayerNorm" in name or "layer_norm" in name:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * c["initStd"])

    def forward(self, input_ids, token_type_ids, attention_mask, labels):
        """Mean MLM cross-entropy over the positions with a label (!= -100)."""
        B, T = input_ids.shape
        key_mask = torch.where(attention_mask > 0, 0.0, -1e9).to(torch.float32).view(B, 1, 1, T)
        x = self.bert.embeddings(input_ids, token_type_ids)
        for layer in self.bert.encoder.layer:
            x = layer(x, key_mask)
        if self.config["norm"] == "pre":
            x = self.bert.encoder.final_layer_norm(x)
        flat = labels.reshape(-1)
        sel = (flat != -100).nonzero().squeeze(1)
        h = x.reshape(-1, x.shape[-1]).index_select(0, sel)
        t = self.cls.predictions.transform
        h = t.LayerNorm(F.gelu(t.dense(h)))
        logits = F.linear(h, self.bert.embeddings.word_embeddings.weight, self.cls.predictions.bias)
        return F.cross_entropy(logits, flat.index_select(0, sel))


def random_batches(c, count, batch=4, seq=16, mask_prob=0.25, seed=0):
    """Deterministic MLM batches of random tokens (ids, types, mask, labels), for tests and the example."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        ids = torch.randint(5, c["vocabSize"], (batch, seq), generator=g)
        types = torch.zeros(batch, seq, dtype=torch.long)
        mask = torch.ones(batch, seq)
        chosen = torch.rand(batch, seq, generator=g) < mask_prob
        chosen[:, 1] = True  # at least one label per row
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        out.append((torch.where(chosen, torch.full_like(ids, 4), ids), types, mask, labels))
    return out
