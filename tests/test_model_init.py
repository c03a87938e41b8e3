"""Offline initialisation (nano, pico) and the embedding-pruning round trip."""
import json
import logging

import numpy as np
import pytest

from conftest import SAMPLE_DEV, SAMPLE_TRAIN, run_py

# Architectures as published for the v2 models (upstream README: 4L312H, 3L128H2A), written out here
# independently of PaddleNLP's config table.
EXPECTED = {"nano": dict(num_hidden_layers=4, hidden_size=312, num_attention_heads=12, intermediate_size=1248),
            "pico": dict(num_hidden_layers=3, hidden_size=128, num_attention_heads=2, intermediate_size=512)}


@pytest.fixture(scope="module", params=["nano", "pico"])
def offline_dir(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("init") / f"ernie-3.0-tiny-{request.param}-v2-zh"
    run_py(["scripts/init_offline_model.py", "--name", f"ernie-3.0-tiny-{request.param}-v2-zh",
            "--corpus", SAMPLE_TRAIN, SAMPLE_DEV, "--output_dir", str(d)])
    return request.param, d


def test_offline_dir_loads_like_a_model_name(offline_dir, labels):
    import paddle
    from paddlenlp.transformers import AutoTokenizer

    from slu.model import JointErnie

    size, d = offline_dir
    cfg = json.load(open(d / "config.json"))
    for k, v in EXPECTED[size].items():
        assert cfg[k] == v, k
    vocab = (d / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocab[:3] == ["[PAD]", "[CLS]", "[SEP]"] and cfg["vocab_size"] == len(vocab)
    for piece in ["打", "放", "1", "##8", "a", "##z"]:  # CJK per char, Latin/digit WordPiece pieces
        assert piece in vocab
    tok = AutoTokenizer.from_pretrained(str(d))
    assert type(tok).__name__ == "ErnieTokenizer" and len(tok) == len(vocab)
    pieces = tok.tokenize("打电话给10086播放Shape Of You")
    assert "[UNK]" not in pieces
    assert "".join(p[2:] if p.startswith("##") else p for p in pieces) == "打电话给10086播放shapeofyou"
    model = JointErnie.from_pretrained(str(d), intent_dim=11, slot_dim=32, dropout=0.1)
    assert model.ernie.embeddings.word_embeddings.weight.shape == [len(vocab), EXPECTED[size]["hidden_size"]]
    model.eval()
    intent, slots = model(paddle.to_tensor([tok("来一首花心")["input_ids"]]))
    assert intent.shape == [1, 11] and slots.shape == [1, 7, 32]


def test_unknown_name_is_refused():
    p = run_py(["scripts/init_offline_model.py", "--name", "ernie-3.0-tiny-huge-v2-zh", "--corpus", SAMPLE_TRAIN,
                "--output_dir", "/tmp/never"], check=False)
    assert p.returncode != 0 and "unknown model name 'ernie-3.0-tiny-huge-v2-zh'" in p.stderr


class PaddleNLPWarnings(logging.Handler):
    """Collects warnings from PaddleNLP's logger (it does not propagate to the root logger)."""

    def __enter__(self):
        from paddlenlp.utils.log import logger

        self.records, self.target = [], logger.logger
        self.target.addHandler(self)
        return self.records

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            self.records.append(record.getMessage())

    def __exit__(self, *exc):
        self.target.removeHandler(self)


def test_prune_embeddings_round_trip(tmp_path, pico_dir, corpus_subset):
    """Pruned to 60 tokens: rows == vocab_size == tokenizer size, [PAD]/[CLS]/[SEP] first, the most frequent
    tokens kept, positions cut to max_seq_length, the directory reloads with no warning, and kept tokens
    embed exactly as before."""
    import paddle
    from collections import Counter
    from paddlenlp.transformers import AutoTokenizer

    from slu.model import JointErnie
    from slu.export import prune_embeddings

    paddle.seed(0)
    tok = AutoTokenizer.from_pretrained(str(pico_dir))
    with PaddleNLPWarnings() as warned:
        model = JointErnie.from_pretrained(str(pico_dir), intent_dim=11, slot_dim=32)
    assert any("newly initialized" in w for w in warned), warned  # the capture works: new heads are reported
    model.eval()
    queries = [line.split("\t")[1] for line in open(corpus_subset / "train.txt", encoding="utf-8") if "\t" in line]
    counts = Counter(t for q in queries for t in tok.tokenize(q))
    top = [t for t, _ in sorted(counts.items(), key=lambda x: (-x[1], tok.convert_tokens_to_ids(x[0])))][:55]
    out = tmp_path / "pretrained_model"
    new_model, new_tok = prune_embeddings(model, tok, queries, 60, 16, str(out))

    cfg = json.load(open(out / "config.json"))
    vocab = (out / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert cfg["vocab_size"] == len(vocab) == len(new_tok) == 60
    assert cfg["max_position_embeddings"] == 16
    assert vocab[:5] == ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    assert set(vocab[5:]) == set(top)
    state = paddle.load(str(out / "model_state.pdparams"))
    assert state["ernie.embeddings.word_embeddings.weight"].shape == [60, 128]
    assert state["ernie.embeddings.position_embeddings.weight"].shape == [16, 128]

    with PaddleNLPWarnings() as warned:
        reloaded = JointErnie.from_pretrained(str(out), intent_dim=11, slot_dim=32)
    assert warned == []  # no shape mismatch, nothing newly initialised (upstream issue 9896)
    reloaded.eval()
    # a query made only of kept tokens gives the same logits before and after pruning
    q = "".join(t for t in top if len(t) == 1 and not t.isascii())[:8]
    a = model(paddle.to_tensor([tok(q)["input_ids"]]))
    b = reloaded(paddle.to_tensor([new_tok(q)["input_ids"]]))
    assert "[UNK]" not in new_tok.tokenize(q)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(a[1].numpy(), b[1].numpy(), atol=1e-5)
