"""In-domain masked-LM pretraining of the ERNIE encoder on the training queries, before fine-tuning.

With no pretrained weights, the encoder starts from random initialisation; masked-LM training on the training
queries themselves (no other text, no dev data) gives it language statistics before the SLU heads are trained.
Masking follows ERNIE's entity-level masking: an annotated slot value of a training query is masked as one unit,
other tokens one by one, until `mask_prob` of the query's tokens are masked (at least one); a masked token becomes
[MASK] 80% of the time, a random vocabulary token 10%, and stays itself 10% (BERT). Masks are drawn anew each
time a query is drawn. run_pretrain.py is the main; its output directory is a model directory that
run_train.py --model_name_or_path fine-tunes (the encoder is kept, the masked-LM head is dropped).
"""
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers import ErnieModel, ErniePretrainedModel

from slu import data

MASK_UNITS = ("slot", "token")


@dataclass
class PretrainArguments:
    model_name_or_path: str = field(default="ernie-3.0-tiny-nano-v2-zh", metadata={
        "help": "The model to start from: a PaddleNLP name or a local directory (scripts/init_offline_model.py)."})
    train_path: Optional[str] = field(default=None, metadata={"help": "Training queries (corpus format)."})
    intent_label_path: str = field(default="data/intent_label.txt", metadata={"help": "Intent label file."})
    slot_label_path: str = field(default="data/slot_label.txt", metadata={"help": "Slot label file."})
    max_seq_length: int = field(default=16, metadata={"help": "Max tokens per query, [CLS] and [SEP] included."})
    mask_prob: float = field(default=0.15, metadata={"help": "Share of each query's tokens that are masked."})
    mask_unit: str = field(default="slot", metadata={
        "help": "slot: an annotated slot value is masked as a whole (ERNIE's entity masking); token: tokens one "
                "by one (BERT)."})
    skip_malformed: bool = field(default=False, metadata={"help": "Skip (and count) malformed data lines."})
    context_turns: int = field(default=0, metadata={
        "help": "Earlier turns of the session as a second segment (token type 1), as run_train.py --context_turns "
                "encodes them: visible, never masked, so masked query tokens can be predicted from the dialogue. "
                "0: the query alone."})
    max_context_length: Optional[int] = field(default=None, metadata={
        "help": "Tokens for the context turns and their [SEP]s (default 16 per turn, as run_train.py)."})


def check_args(pre_args):
    errors = []
    if not pre_args.train_path:
        errors.append("--train_path is needed (the queries to pretrain on)")
    if not 0.0 < pre_args.mask_prob < 1.0:
        errors.append(f"--mask_prob must be in (0, 1), not {pre_args.mask_prob}")
    if pre_args.mask_unit not in MASK_UNITS:
        errors.append(f"--mask_unit must be one of {', '.join(MASK_UNITS)}, not {pre_args.mask_unit!r}")
    if pre_args.max_seq_length < 3:
        errors.append("--max_seq_length must be at least 3 ([CLS], one token, [SEP])")
    if pre_args.context_turns < 0:
        errors.append(f"--context_turns must be 0 or more, not {pre_args.context_turns}")
    if pre_args.max_context_length is not None and pre_args.max_context_length < 2:
        errors.append("--max_context_length must be at least 2 (one token and its [SEP])")
    return errors


def mask_units(slot_ids, labels, whole_slots):
    """Groups of token positions masked together: each slot value (B- then its I-) when `whole_slots`, every other
    token alone. Position 0 ([CLS]) and the last ([SEP]) are never in a group; `slot_ids` are the per-token BIO
    label ids of the query."""
    units, k, last = [], 1, len(slot_ids) - 1
    while k < last:
        name = labels.slots[slot_ids[k]]
        end = k + 1
        if whole_slots and name.startswith("B-"):
            while end < last and labels.slots[slot_ids[end]] == "I-" + name[2:]:
                end += 1
        units.append(list(range(k, end)))
        k = end
    return units


def mask_query(ids, units, mask_prob, rng, mask_id, vocab_size, special_ids):
    """(masked ids, positions, original ids at those positions). Units are drawn in random order until
    round(mask_prob * tokens) tokens, at least one, are masked; a unit is taken whole, so a long slot value may
    overshoot. Each masked token: [MASK] with p 0.8, a random non-special token with p 0.1, itself with p 0.1."""
    ids = list(ids)
    want = max(1, int(round(mask_prob * sum(len(u) for u in units))))
    positions = []
    for u in rng.permutation(len(units)):
        if len(positions) >= want:
            break
        positions.extend(units[u])
    positions.sort()
    originals = [ids[p] for p in positions]
    for p in positions:
        r = rng.random_sample()
        if r < 0.8:
            ids[p] = mask_id
        elif r < 0.9:
            token = int(rng.randint(vocab_size))
            while token in special_ids:
                token = int(rng.randint(vocab_size))
            ids[p] = token
    return ids, positions, originals


def query_length(item):
    """Tokens of `[CLS] query [SEP]` at the start of an encoded item (all of it without context, whose tokens have
    type 1)."""
    types = item.get("token_type_ids")
    return len(item["input_ids"]) - (sum(types) if types is not None else 0)


class MaskingDataset(paddle.io.Dataset):
    """Encoded training queries, masked anew each time one is drawn (seeded). Only the query is masked; context
    tokens (token type 1), where the items have them, are passed through with their token_type_ids."""

    def __init__(self, encoded, labels, tokenizer, mask_prob, whole_slots, seed):
        self.encoded, self.mask_prob = encoded, mask_prob
        self.units = [mask_units(x["slot_label"][:query_length(x)], labels, whole_slots) for x in encoded]
        self.lengths = [len(x["input_ids"]) for x in encoded]
        self.mask_id, self.vocab_size = tokenizer.mask_token_id, len(tokenizer)
        self.special_ids = set(tokenizer.all_special_ids)
        self.rng = np.random.RandomState(seed)

    def __len__(self):
        return len(self.encoded)

    def __getitem__(self, index):
        x = self.encoded[index]
        ids, positions, originals = mask_query(x["input_ids"], self.units[index], self.mask_prob, self.rng,
                                               self.mask_id, self.vocab_size, self.special_ids)
        item = {"input_ids": ids, "positions": positions, "originals": originals}
        if "token_type_ids" in x:
            item["token_type_ids"] = x["token_type_ids"]
        return item


class MaskingCollator:
    """Pads input_ids (and token_type_ids, with 0, where the items have them); masked_positions index the flattened
    [B * T] batch, masked_labels hold the original ids."""

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, batch):
        input_ids = data.pad_batch([b["input_ids"] for b in batch], self.pad_token_id, "int64")
        width = input_ids.shape[1]
        positions = [k * width + p for k, b in enumerate(batch) for p in b["positions"]]
        originals = [t for b in batch for t in b["originals"]]
        out = {"input_ids": input_ids, "masked_positions": np.array(positions, dtype="int64"),
               "masked_labels": np.array(originals, dtype="int64")}
        if "token_type_ids" in batch[0]:
            out["token_type_ids"] = data.pad_batch([b["token_type_ids"] for b in batch], 0, "int64")
        return out


class ErnieMaskedLM(ErniePretrainedModel):
    """ERNIE encoder and a masked-LM head (dense, activation, LayerNorm, then the word embeddings transposed and a
    bias: input and output embeddings are tied). forward returns (loss, logits at the masked positions); the loss
    is the mean cross entropy over the masked tokens."""

    def __init__(self, config):
        super().__init__(config)
        self.ernie = ErnieModel(config)
        self.mlm_transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.mlm_layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.mlm_bias = self.create_parameter([config.vocab_size], is_bias=True)
        self.activation = getattr(F, config.hidden_act)

    def forward(self, input_ids, masked_positions, masked_labels=None, token_type_ids=None):
        sequence_output, _ = self.ernie(input_ids, token_type_ids=token_type_ids)
        hidden = sequence_output.reshape([-1, sequence_output.shape[-1]])
        hidden = paddle.gather(hidden, masked_positions)
        hidden = self.mlm_layer_norm(self.activation(self.mlm_transform(hidden)))
        logits = paddle.matmul(hidden, self.ernie.embeddings.word_embeddings.weight, transpose_y=True) + self.mlm_bias
        if masked_labels is None:
            return (logits,)
        return F.cross_entropy(logits, masked_labels.reshape([-1, 1])), logits
