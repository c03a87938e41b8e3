"""Upstream's 4:1 split of corpus.train.txt, reproducible with a seed.

Upstream shuffles the lines with `shuf`, takes the first 1/5 as dev and the rest as train. `--split_by line`
(the default) does the same with a seeded shuffle of the non-blank lines (blank lines only separate sessions).
`--split_by session` keeps every dialogue session whole: sessions (by the first column) are shuffled and 1/5 of
them go to dev, so no session has turns on both sides; each file keeps the turns of a session in their order,
sessions separated by a blank line.

    python scripts/split_data.py --corpus /path/to/corpus.train.txt --output_dir data --seed 1000
writes data/train.txt and data/dev.txt. Never commit them (they are derived from the corpus).
"""
import argparse
import os
import random

from slu.data import DataError, read_utf8_lines


def split_lines(lines, seed, dev_fraction=0.2):
    lines = [x for x in lines if x.strip()]
    random.Random(seed).shuffle(lines)
    n_dev = int(len(lines) * dev_fraction)
    return lines[n_dev:], lines[:n_dev]


def sessions_of(lines):
    """Non-blank lines grouped by session id (first column), in order of first appearance."""
    sessions = {}
    for x in lines:
        if x.strip():
            sessions.setdefault(x.split("\t", 1)[0], []).append(x)
    return list(sessions.values())


def split_sessions(lines, seed, dev_fraction=0.2):
    sessions = sessions_of(lines)
    random.Random(seed).shuffle(sessions)
    n_dev = int(len(sessions) * dev_fraction)
    return sessions[n_dev:], sessions[:n_dev]


def read_corpus(path):
    if not os.path.isfile(path):
        raise SystemExit(f"split_data.py: error: corpus not found: {path} (download trainingdata04.zip from the "
                         "NLPCC 2018 shared task page and unzip it)")
    try:
        lines = read_utf8_lines(path)
    except DataError as e:
        raise SystemExit(f"split_data.py: error: {e}") from None
    if not any(x.strip() for x in lines):
        raise SystemExit(f"split_data.py: error: {path}: the corpus is empty")
    return lines


def check_outputs(corpus, outputs):
    """Refuse to write over the corpus itself (it would be lost)."""
    for out in outputs:
        if os.path.exists(out) and os.path.samefile(out, corpus):
            raise SystemExit(f"split_data.py: error: {out} is the corpus itself: choose another --output_dir")


def main(argv=None):
    ap = argparse.ArgumentParser(description="4:1 train/dev split of the NLPCC 2018 Task 4 corpus")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--output_dir", default="data")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--split_by", choices=["line", "session"], default="line",
                    help="line: upstream's shuffled lines; session: whole dialogue sessions to train or dev")
    ap.add_argument("--limit", type=int, default=0,
                    help="keep only the first N lines (sessions with --split_by session) after shuffling (tests)")
    a = ap.parse_args(argv)
    lines = read_corpus(a.corpus)
    outputs = [os.path.join(a.output_dir, n) for n in ("train.txt", "dev.txt")]
    check_outputs(a.corpus, outputs)
    if a.split_by == "line":
        train, dev = split_lines(lines, a.seed)
        if a.limit:
            train, dev = train[:a.limit - a.limit // 5], dev[:a.limit // 5]
        texts = ["\n".join(part) + "\n" for part in (train, dev)]
    else:
        train, dev = split_sessions(lines, a.seed)
        if a.limit:
            train, dev = train[:a.limit - a.limit // 5], dev[:a.limit // 5]
        texts = ["\n\n".join("\n".join(s) for s in part) + "\n" for part in (train, dev)]
    os.makedirs(a.output_dir, exist_ok=True)
    for path, text in zip(outputs, texts):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    unit = "lines" if a.split_by == "line" else "sessions"
    print(f"{a.corpus}: {len(train)} train, {len(dev)} dev {unit} (seed {a.seed}) -> {a.output_dir}")


if __name__ == "__main__":
    main()
