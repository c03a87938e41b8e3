"""Upstream's 4:1 split of corpus.train.txt, reproducible with a seed.

Upstream shuffles the lines with `shuf`, takes the first 1/5 as dev and the rest as train. This does
the same with a seeded shuffle of the non-blank lines (blank lines only separate sessions):

    python scripts/split_data.py --corpus /path/to/corpus.train.txt --output_dir data --seed 1000
writes data/train.txt and data/dev.txt. Never commit them (they are derived from the corpus).
"""
import argparse
import os
import random


def split_lines(lines, seed, dev_fraction=0.2):
    lines = [x for x in lines if x.strip()]
    random.Random(seed).shuffle(lines)
    n_dev = int(len(lines) * dev_fraction)
    return lines[n_dev:], lines[:n_dev]


def main(argv=None):
    ap = argparse.ArgumentParser(description="4:1 train/dev split of the NLPCC 2018 Task 4 corpus")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--output_dir", default="data")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=0, help="keep only the first N lines after shuffling (tests)")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.corpus):
        raise SystemExit(f"corpus not found: {a.corpus} (download trainingdata04.zip from the NLPCC 2018 "
                         "shared task page and unzip it)")
    with open(a.corpus, encoding="utf-8") as f:
        lines = [x.rstrip("\n") for x in f]
    train, dev = split_lines(lines, a.seed)
    if a.limit:
        train, dev = train[:a.limit - a.limit // 5], dev[:a.limit // 5]
    os.makedirs(a.output_dir, exist_ok=True)
    for name, part in (("train.txt", train), ("dev.txt", dev)):
        with open(os.path.join(a.output_dir, name), "w", encoding="utf-8") as f:
            f.write("\n".join(part) + "\n")
    print(f"{a.corpus}: {len(train)} train, {len(dev)} dev lines (seed {a.seed}) -> {a.output_dir}")


if __name__ == "__main__":
    main()
