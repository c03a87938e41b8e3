"""JointErnie: one ERNIE encoder shared by an intent head (pooled [CLS]) and a slot head (every token)."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers import ErnieModel, ErniePretrainedModel

from slu.data import PAD_SLOT_ID


class JointErnie(ErniePretrainedModel):
    """ERNIE encoder, dropout, intent classifier on the pooled output, slot classifier per token.

    `JointErnie.from_pretrained(name_or_dir, intent_dim=11, slot_dim=32, dropout=0.1)` loads the
    encoder from a PaddleNLP model name (e.g. ``ernie-3.0-tiny-nano-v2-zh``, downloaded when online)
    or from a local directory (config.json + model_state.pdparams); the heads are new unless the
    directory holds a fine-tuned JointErnie. Returns (intent_logits [B, intent_dim],
    slot_logits [B, T, slot_dim]).
    """

    def __init__(self, config, intent_dim=11, slot_dim=32, dropout=None, use_crf=None):
        super().__init__(config)
        # PaddleNLP 2.8 initialises weights after __init__; calling self.apply(self.init_weights)
        # here raises a TypeError on that release.
        self.ernie = ErnieModel(config)
        self.intent_dim, self.slot_dim = intent_dim, slot_dim
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.intent_classifier = nn.Linear(config.hidden_size, intent_dim)
        self.slot_classifier = nn.Linear(config.hidden_size, slot_dim)
        # A CRF slot head: the slot logits are its emissions; its transition scores are trained by JointLoss and
        # written to deploy_config.json (the exported graph is the same). The config remembers it.
        self.use_crf = bool(getattr(config, "use_crf", False) if use_crf is None else use_crf)
        config.use_crf = self.use_crf
        self.crf = LinearChainCrf(slot_dim) if self.use_crf else None
        width_mult = getattr(config, "width_mult", 1.0) or 1.0
        if width_mult < 1.0:  # a DynaBERT width-pruned model saved by compress.py
            shrink_width(self.ernie, width_mult)

    def forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None):
        sequence_output, pooled_output = self.ernie(
            input_ids, token_type_ids=token_type_ids, position_ids=position_ids, attention_mask=attention_mask
        )
        intent_logits = self.intent_classifier(self.dropout(pooled_output))
        slot_logits = self.slot_classifier(self.dropout(sequence_output))
        return intent_logits, slot_logits


def shrink_width(ernie, width_mult):
    """Make every encoder layer `width_mult` as wide as DynaBERT leaves it: the attention heads and the
    feed-forward inner size are cut, the hidden size stays. The layers are new (re-initialised); load
    the pruned state dict afterwards."""
    def linear(old, rows, cols):
        return nn.Linear(rows, cols, old._weight_attr, old._bias_attr)

    for layer in ernie.encoder.layers:
        attn = layer.self_attn
        hidden = attn.q_proj.weight.shape[0]
        heads = int(attn.num_heads * width_mult)
        inner = int(hidden * width_mult)
        if heads < 1 or heads * attn.head_dim != inner:
            raise ValueError(f"width_mult {width_mult} does not give whole attention heads "
                             f"({attn.num_heads} heads of {attn.head_dim})")
        attn.num_heads = heads
        attn.q_proj = linear(attn.q_proj, hidden, inner)
        attn.k_proj = linear(attn.k_proj, hidden, inner)
        attn.v_proj = linear(attn.v_proj, hidden, inner)
        attn.out_proj = linear(attn.out_proj, inner, hidden)
        ffn = int(layer.linear1.weight.shape[1] * width_mult)
        layer.linear1 = linear(layer.linear1, hidden, ffn)
        layer.linear2 = linear(layer.linear2, ffn, hidden)
    return ernie


class LinearChainCrf(nn.Layer):
    """Start, end and label-to-label scores of a linear-chain CRF over slot labels (JointBERT's --use_crf)."""

    def __init__(self, num_labels):
        super().__init__()
        init = nn.initializer.Uniform(-0.1, 0.1)
        self.start = self.create_parameter([num_labels], default_initializer=init)
        self.end = self.create_parameter([num_labels], default_initializer=init)
        self.transitions = self.create_parameter([num_labels, num_labels], default_initializer=init)

    def scores(self):
        """The scores as lists, for deploy_config.json (decoding.SlotDecoder's "crf" mode reads them)."""
        return {"start": self.start.numpy().tolist(), "end": self.end.numpy().tolist(),
                "transitions": self.transitions.numpy().tolist()}

    def nll(self, emissions, labels, mask):
        """Mean over rows of -log p(labels | emissions) over the positions where `mask` is true, which must be one
        contiguous run per row (the query's tokens: slot label != PAD). emissions [B, T, L], labels [B, T]."""
        mask = mask.astype(emissions.dtype)
        num_labels = emissions.shape[-1]
        labels = labels.astype("int64")
        prev_mask = paddle.concat([paddle.zeros_like(mask[:, :1]), mask[:, :-1]], axis=1)
        next_mask = paddle.concat([mask[:, 1:], paddle.zeros_like(mask[:, :1])], axis=1)
        gold_emit = paddle.take_along_axis(emissions, labels.unsqueeze(-1), axis=-1).squeeze(-1)
        prev_labels = paddle.concat([labels[:, :1], labels[:, :-1]], axis=1)
        gold_trans = paddle.gather(self.transitions.reshape([-1]), (prev_labels * num_labels + labels).reshape([-1]))
        gold = (mask * gold_emit + mask * prev_mask * gold_trans.reshape(labels.shape) +
                mask * (1 - prev_mask) * paddle.gather(self.start, labels.reshape([-1])).reshape(labels.shape) +
                mask * (1 - next_mask) * paddle.gather(self.end, labels.reshape([-1])).reshape(labels.shape)).sum(1)
        # forward algorithm; alpha is carried unchanged through masked-out positions
        alpha = paddle.zeros_like(emissions[:, 0])
        started = paddle.zeros_like(mask[:, :1])
        for t in range(emissions.shape[1]):
            m = mask[:, t:t + 1]
            first = self.start.unsqueeze(0) + emissions[:, t]
            following = paddle.logsumexp(alpha.unsqueeze(2) + self.transitions.unsqueeze(0), axis=1) + emissions[:, t]
            alpha = m * (started * following + (1 - started) * first) + (1 - m) * alpha
            started = paddle.maximum(started, m)
        log_z = paddle.logsumexp(alpha + self.end.unsqueeze(0), axis=1)
        has_tokens = started.squeeze(1)
        return ((log_z - gold) * has_tokens).sum() / paddle.clip(has_tokens.sum(), min=1.0)


class JointLoss(nn.Layer):
    """Intent cross entropy + slot cross entropy; slot label PAD (0) is ignored. With `crf` (the model's
    LinearChainCrf) the slot loss is the CRF's negative log-likelihood of the query's labels, averaged over
    queries as JointBERT does."""

    def __init__(self, crf=None):
        super().__init__()
        self._crf = [crf] if crf is not None else []  # a list: the parameters stay the model's alone

    def forward(self, outputs, labels):
        intent_logits, slot_logits = outputs[0], outputs[1]
        intent_label, slot_label = labels[0], labels[1]
        intent_loss = F.cross_entropy(intent_logits, intent_label.reshape([-1, 1]).astype("int64"))
        if self._crf:
            return intent_loss + self._crf[0].nll(slot_logits, slot_label, slot_label != PAD_SLOT_ID)
        slot_logits = slot_logits.reshape([-1, slot_logits.shape[-1]])
        slot_loss = F.cross_entropy(slot_logits, slot_label.reshape([-1, 1]).astype("int64"),
                                    ignore_index=PAD_SLOT_ID)
        return intent_loss + slot_loss


def intent_slot_kl(p_outputs, q_outputs, slot_label, temperature=1.0):
    """Mean over queries of KL(p || q) of the intent distribution + mean over the query's tokens (slot label !=
    PAD) of KL(p || q) of the slot-label distribution; both softmaxes at `temperature`. Outputs are (intent
    logits, slot logits) pairs."""
    def kl(p_logits, q_logits):
        log_p = F.log_softmax(p_logits / temperature, axis=-1)
        log_q = F.log_softmax(q_logits / temperature, axis=-1)
        return (log_p.exp() * (log_p - log_q)).sum(-1)

    intent = kl(p_outputs[0], q_outputs[0]).mean()
    mask = (slot_label != PAD_SLOT_ID).astype(p_outputs[1].dtype)
    slot = (kl(p_outputs[1], q_outputs[1]) * mask).sum() / paddle.clip(mask.sum(), min=1.0)
    return intent + slot


def rdrop_loss(first, second, slot_label):
    """R-Drop's regulariser (Liang et al., 2021): the symmetric KL divergence (the mean of both directions) between
    the intent and slot distributions of two runs of the same batch under different dropout."""
    return 0.5 * (intent_slot_kl(first, second, slot_label) + intent_slot_kl(second, first, slot_label))



def to_static_input_spec(input_dtype, context=False):
    """input_ids [B, T], and token_type_ids [B, T] for a model with dialogue context."""
    spec = [paddle.static.InputSpec(shape=[None, None], dtype=input_dtype, name="input_ids")]
    if context:
        spec.append(paddle.static.InputSpec(shape=[None, None], dtype=input_dtype, name="token_type_ids"))
    return spec
