"""slu/tokenizer.py (the --use_fast tokenizer) against PaddleNLP's ErnieTokenizer: ids, offsets and truncation
equal on the edge cases both ports are held to, and on a generated sweep over every Unicode category."""
import random
import unicodedata

import pytest

from helpers import TOKENIZER_EDGE_CASES
from slu import data, tokenizer

# symbol-bearing queries that FastTokenizer's own ErnieFastTokenizer answered differently (issue 32)
SYMBOL_QUERIES = ["播放100～200首歌", "温度调到26℃", "价格¥100元", "3×4等于几", "x²", "µg", "来一首😀的歌",
                  "播放ＡＢＣ的歌", "打开ＷｉＦｉ", "导航到Ｂ座"]


def sweep_texts(per_category=40, seed=0):
    """Texts around code points drawn from every general category (all of a category when it has few)."""
    rng = random.Random(seed)
    by_category = {}
    for cp in range(0x110000):
        if not 0xD800 <= cp <= 0xDFFF:  # surrogates cannot be UTF-8 (data.check_text refuses them)
            by_category.setdefault(unicodedata.category(chr(cp)), []).append(cp)
    texts = []
    for category in sorted(by_category):
        cps = by_category[category]
        for cp in cps if len(cps) <= per_category else rng.sample(cps, per_category):
            c = chr(cp)
            texts += [f"播放{c}歌", f"a{c}b", c, f"Ab{c}{c}c 周", f"[SEP]{c}[UNK]"]
    return texts, sorted(by_category)


def rich_vocab(path, texts):
    """A vocabulary holding most of the texts' characters, some whole words and continuation pieces, so that
    WordPiece does not turn everything into [UNK] (which would hide offset and splitting differences)."""
    pieces = set()
    for t in texts:
        for word in tokenizer.basic_tokenize(t):
            if len(word) % 3 == 0:
                pieces.add(word)
            pieces.update(c if i == 0 else "##" + c for i, c in enumerate(word) if i % 4 != 3)
            if len(word) > 2:
                pieces.add("##" + word[1:3])
    # a vocabulary line cannot hold a line break; drop what str.splitlines() would split
    pieces = sorted(p for p in pieces if len(p.splitlines()) == 1 and p.strip())
    base = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "100", "200", "歌", "播", "放", "##0"]
    path.write_text("\n".join(base + [p for p in pieces if p not in base]) + "\n", encoding="utf-8")
    return str(path)


def reference(vocab_path, lower_case):
    """PaddleNLP's tokenizer as the pipeline loads it (from a saved directory: only then are the special tokens
    split out of the text)."""
    import os
    import tempfile

    from paddlenlp.transformers import AutoTokenizer, ErnieTokenizer

    directory = tempfile.mkdtemp(dir=os.path.dirname(vocab_path))
    ErnieTokenizer(vocab_path, do_lower_case=lower_case).save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def differences(vocab_path, texts, lower_case=True, max_length=64):
    ref = data.encode_queries(reference(vocab_path, lower_case), texts, max_length)
    fast = tokenizer.FastTokenizer(vocab_path, lower_case)(texts, max_length)
    return [(t, ref[0][k], fast[0][k], ref[1][k], fast[1][k]) for k, t in enumerate(texts)
            if (ref[0][k], ref[1][k], ref[2][k]) != (fast[0][k], fast[1][k], fast[2][k])]


@pytest.mark.parametrize("lower_case", [True, False])
def test_edge_cases_and_symbol_queries_equal_paddlenlp(tmp_path, lower_case):
    texts = TOKENIZER_EDGE_CASES + SYMBOL_QUERIES
    vocab = rich_vocab(tmp_path / "vocab.txt", texts)
    assert differences(vocab, texts, lower_case) == []
    # truncation: cut to max_length - 2 tokens and flagged, as the reference does
    assert differences(vocab, texts, lower_case, max_length=5) == []


def test_unicode_category_sweep_equals_paddlenlp(tmp_path):
    texts, categories = sweep_texts()
    assert len(categories) == 29 and len(texts) > 3000  # every general category but Cs
    vocab = rich_vocab(tmp_path / "vocab.txt", texts)
    assert differences(vocab, texts) == []


def test_the_symbol_query_keeps_its_three_tokens(tmp_path):
    """`100～200`: three tokens with their own offsets (FastTokenizer's ErnieFastTokenizer made it one [UNK], and the
    song slot was lost)."""
    vocab = rich_vocab(tmp_path / "vocab.txt", ["播放100～200首歌"])
    ids, offsets, _ = tokenizer.FastTokenizer(vocab)(["播放100～200首歌"], 32)
    assert offsets[0] == [(0, 0), (0, 1), (1, 2), (2, 5), (5, 6), (6, 9), (9, 10), (10, 11), (0, 0)]


def test_character_classes_equal_paddlenlp_on_every_code_point():
    from paddlenlp.transformers.tokenizer_utils import _is_control, _is_punctuation, _is_symbol, _is_whitespace

    for cp in range(0x110000):
        c = chr(cp)
        assert tokenizer.is_dropped(c) == (cp in (0, 0xFFFD) or _is_control(c)), hex(cp)
        assert tokenizer.is_split(c) == (_is_punctuation(c) or _is_symbol(c)), hex(cp)
        if _is_whitespace(c):
            assert tokenizer.is_space(c), hex(cp)


def test_missing_vocab_and_vocab_without_unk_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        tokenizer.FastTokenizer(str(tmp_path / "nope.txt"))
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[CLS]\n[SEP]\na\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab.txt: the vocabulary has no \[UNK\] token"):
        tokenizer.FastTokenizer(str(bad))
