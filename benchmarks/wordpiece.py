"""The `--use_fast` tokenizer's WordPiece: Hugging Face `tokenizers` (what slu/tokenizer.py uses now) against
FastTokenizer 1.0.2 (what it used before the move to CPython 3.12; no wheel past 3.10), inside the same
slu/tokenizer.py pipeline (special tokens, BasicTokenizer, offsets), on every query of a corpus file.

    .venv/bin/python benchmarks/wordpiece.py --vocab work/pretrained/ernie-3.0-tiny-nano-v2-zh/vocab.txt \\
        --corpus work/nlpcc_sessions/dev.txt [--rounds 5] [--name wordpiece]

It runs in .venv-legacy (the one environment with both; it restarts itself there). Equality: ids and offsets of
every query. Speed, per query, median over --rounds passes: "cold" with the per-word cache emptied before each
query (WordPiece runs on every word), "warm" with the cache kept across the pass (what a server does).
Writes benchmarks/results/<name>.json and .md.
"""
import argparse
import json
import os
import statistics
import sys
import time

from slu import data, envs, tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FastTokenizerWordPiece(tokenizer.FastTokenizer):
    """slu/tokenizer.py's pipeline with FastTokenizer's WordPiece, as the project ran it until 2026-12-08."""

    def __init__(self, vocab_path, do_lower_case=True):
        super().__init__(vocab_path, do_lower_case)
        from fast_tokenizer import ErnieFastTokenizer
        from fast_tokenizer.models import WordPiece

        self.fast = ErnieFastTokenizer(WordPiece.read_file(vocab_path), lowercase=False, strip_accents=False)
        self.fast.disable_padding()
        self.fast.disable_truncation()

    def word_ids(self, word):
        ids = self.cache.get(word)
        if ids is None:
            if len(word) > tokenizer.MAX_WORD_CHARS:
                ids = [self.unk_id]
            else:
                ids = list(self.fast.encode(word).ids[1:-1]) or [self.unk_id]
            self.cache[word] = ids
        return ids


def per_query_ms(tok, queries, rounds, cold):
    passes = []
    for _ in range(rounds):
        tok.cache.clear()
        times = []
        for q in queries:
            if cold:
                tok.cache.clear()
            t0 = time.perf_counter()
            tok.encode(q)
            times.append(time.perf_counter() - t0)
        passes.append(statistics.median(times) * 1e3)
    return round(statistics.median(passes), 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--corpus", required=True, help="a corpus file (query<TAB>...) or one query per line")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no_lower_case", action="store_true")
    ap.add_argument("--name", default="wordpiece")
    ap.add_argument("--out_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    for path, flag in ((a.vocab, "--vocab"), (a.corpus, "--corpus")):
        if not os.path.isfile(path):
            ap.error(f"{flag}: file not found: {path}")
    queries = [line.split("\t")[0] for line in data.read_utf8_lines(a.corpus) if line.strip()]
    if not queries:
        ap.error(f"--corpus: no queries in {a.corpus}")
    lower = not a.no_lower_case
    tokenizers_wp, fast_wp = tokenizer.FastTokenizer(a.vocab, lower), FastTokenizerWordPiece(a.vocab, lower)
    differing = [q for q in queries if tokenizers_wp.encode(q) != fast_wp.encode(q)]
    from importlib import metadata

    result = {"queries": len(queries), "equal": len(queries) - len(differing), "differing": differing[:20],
              "vocab_size": len(data.read_utf8_lines(a.vocab)), "rounds": a.rounds,
              "versions": {n: metadata.version(n) for n in ("tokenizers", "fast-tokenizer-python")},
              "python": "%d.%d" % sys.version_info[:2], "date": time.strftime("%Y-%m-%d %H:%M")}
    for name, tok in (("tokenizers", tokenizers_wp), ("fast_tokenizer", fast_wp)):
        result[name] = {"cold_ms": per_query_ms(tok, queries, a.rounds, cold=True),
                        "warm_ms": per_query_ms(tok, queries, a.rounds, cold=False)}
    v = result["versions"]
    lines = [f"{result['queries']} queries of {a.corpus}, vocabulary of {result['vocab_size']} tokens "
             f"({result['date']}, CPython {result['python']}): ids and offsets equal on {result['equal']}.", "",
             "| WordPiece | per query, cold cache (ms) | per query, warm cache (ms) |", "|---|---|---|",
             f"| tokenizers {v['tokenizers']} | {result['tokenizers']['cold_ms']} | "
             f"{result['tokenizers']['warm_ms']} |",
             f"| FastTokenizer {v['fast-tokenizer-python']} | {result['fast_tokenizer']['cold_ms']} | "
             f"{result['fast_tokenizer']['warm_ms']} |"]
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, a.name + ".json"), "w") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
    with open(os.path.join(a.out_dir, a.name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if not envs.in_legacy() and not envs.has_module("fast_tokenizer"):
        envs.reexec_in_legacy()
    main()
