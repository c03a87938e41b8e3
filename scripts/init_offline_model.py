"""Write a local pretrained directory for an ERNIE 3.0 Tiny v2 size, with no download.

The architecture comes from PaddleNLP's own built-in config for the name (e.g.
ernie-3.0-tiny-nano-v2-zh); weights are initialised from that config (random, as PaddleNLP does for
a new model); the vocabulary is built from a corpus: one token per CJK character (and per
punctuation mark), WordPiece pieces for Latin letters and digits (every letter and digit as a
word-initial piece and as a `##` continuation, plus frequent whole words). The directory holds
config.json, model_state.pdparams, vocab.txt, tokenizer_config.json and special_tokens_map.json,
and works anywhere a model name works:

    python scripts/init_offline_model.py --name ernie-3.0-tiny-nano-v2-zh \
        --corpus data/sample/train.txt --output_dir pretrained/ernie-3.0-tiny-nano-v2-zh
    python run_train.py --model_name_or_path pretrained/ernie-3.0-tiny-nano-v2-zh ...

With internet, pass the name itself to run_train.py instead (upstream's pretrained weights).
"""
import argparse
import os
import string
from collections import Counter

from slu import data  # first: zlib work-around before paddle

SIZES = ("base", "medium", "mini", "micro", "nano", "pico")


def model_names():
    return [f"ernie-3.0-tiny-{s}-v2-zh" for s in SIZES]


def builtin_config(name):
    from paddlenlp.transformers.ernie.configuration import ERNIE_PRETRAINED_INIT_CONFIGURATION

    if name not in ERNIE_PRETRAINED_INIT_CONFIGURATION:
        raise SystemExit(f"unknown model name {name!r}; choose one of: {', '.join(model_names())}")
    return dict(ERNIE_PRETRAINED_INIT_CONFIGURATION[name])


def _is_cjk_or_punct(word):
    return len(word) == 1 and not word.isascii() or (len(word) == 1 and word in string.punctuation)


def build_vocab(texts, min_word_freq=2, max_word_len=16):
    """Vocabulary for ErnieTokenizer (lower-cased BasicTokenizer + WordPiece) from raw queries."""
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    basic = BasicTokenizer(do_lower_case=True)
    singles, words = Counter(), Counter()
    for t in texts:
        for w in basic.tokenize(t):
            if len(w) == 1:
                singles[w] += 1
            else:
                words[w] += 1
                for k, c in enumerate(w):
                    singles[c if k == 0 else "##" + c] += 1
    for c in string.ascii_lowercase + string.digits:  # any Latin word or number stays tokenizable
        singles.setdefault(c, 0)
        singles.setdefault("##" + c, 0)
    tokens = Counter(singles)
    for w, n in words.items():
        if n >= min_word_freq and len(w) <= max_word_len:
            tokens[w] += n
    specials = list(data.SPECIAL_TOKENS)
    ranked = sorted((t for t in tokens if t not in specials), key=lambda t: (-tokens[t], t))
    return specials + ranked


def read_texts(path):
    """Queries of a corpus file (column 2), or every line of a plain text file."""
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) == 4:
                texts.append(cols[1])
            elif line.strip() and len(cols) == 1:
                texts.append(line.strip())
    if not texts:
        raise SystemExit(f"{path}: no text found")
    return texts


def init_offline_model(name, corpus_paths, output_dir, seed=42):
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieModel, ErnieTokenizer

    cfg = builtin_config(name)
    texts = []
    for p in corpus_paths:
        texts += read_texts(p)
    vocab = build_vocab(texts)
    cfg.update(vocab_size=len(vocab), pad_token_id=0)
    os.makedirs(output_dir, exist_ok=True)
    paddle.seed(seed)
    config = ErnieConfig(**cfg)
    model = ErnieModel(config)
    model.save_pretrained(output_dir)
    vocab_file = os.path.join(output_dir, "vocab.txt")
    data.write_lines(vocab_file, vocab)
    ErnieTokenizer(vocab_file, do_lower_case=True).save_pretrained(output_dir)
    n_params = sum(int(p.numel()) for p in model.parameters())
    print(f"{output_dir}: {name} architecture, vocab {len(vocab)} from {len(texts)} texts, "
          f"{n_params / 1e6:.2f}M parameters (random init, seed {seed})")
    return output_dir


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", default="ernie-3.0-tiny-nano-v2-zh", help=", ".join(model_names()))
    ap.add_argument("--corpus", nargs="+", required=True, help="corpus file(s) to build the vocabulary from")
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)
    init_offline_model(a.name, a.corpus, a.output_dir, a.seed)


if __name__ == "__main__":
    main()
