"""Generate unicode_tables.h: what PaddleNLP's BERT-style tokenizer (ErnieTokenizer = PretrainedTokenizer.tokenize's
per-character lower-casing, BasicTokenizer, WordpieceTokenizer) takes from Python's unicodedata, as compact ranges
for the C++ tokenizer. CMakeLists.txt runs it at build time with the project's Python:

    .venv/bin/python deploy/cpp/gen_unicode_tables.py --output build/generated/unicode_tables.h

The tables must come from the Unicode version of the Python that runs the Python tokenizer and training (the
default environment's CPython 3.12: Unicode 15.0.0), or the C++ tokenizer would split or normalize some characters differently. The predicates are
slu/tokenizer.py's (PaddleNLP's _is_control, _is_whitespace, _is_punctuation, _is_symbol, is_chinese_char restated
without importing paddlenlp, and tested against them there); tests/test_deploy_cpp.py compares the C++ tokenizer's
view of every code point (slu_chars) with PaddleNLP's own predicates.
"""
import argparse
import os
import sys
import unicodedata

from slu.tokenizer import is_cjk, is_dropped, is_mn, is_space, is_split  # the repository on the path (CMake sets it)

UNICODE_VERSION = "15.0.0"


def decompose(c):
    """Lower-cased and canonically decomposed, Mn kept: PretrainedTokenizer.tokenize lowers each character, then
    BasicTokenizer lowers the word and NFD-decomposes it (the C++ tokenizer puts the word's combining marks in
    canonical order and drops the Mn, as NFD and _run_strip_accents do on the whole word)."""
    return "".join(unicodedata.normalize("NFD", d) for d in c.lower().lower())


def code_points():
    return (chr(cp) for cp in range(0x110000))


def ranges(flags):
    """[(lo, hi)] for the runs of true flags[cp]."""
    out, start = [], None
    for cp, ok in enumerate(flags):
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, len(flags) - 1))
    return out


def value_ranges(values):
    """[(lo, hi, v)] for the runs of equal non-zero values[cp]."""
    out = []
    for cp, v in enumerate(values):
        if v and out and out[-1][1] == cp - 1 and out[-1][2] == v:
            out[-1][1] = cp
        elif v:
            out.append([cp, cp, v])
    return out


def decompose_map():
    """{code point: [code points]} for every character that decompose() changes (surrogates excluded)."""
    out = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        n = decompose(chr(cp))
        if n != chr(cp):
            out[cp] = [ord(x) for x in n]
    return out


def check_assumptions():
    """What the C++ tokenizer relies on to work one code point at a time: it decides drop, space and CJK on the
    original character, where PaddleNLP decides them on the lower-cased one, and BasicTokenizer's second lower()
    (of the whole word, where final sigma would apply) changes nothing after the per-character one."""
    for cp, c in enumerate(code_points()):
        low = c.lower()
        if low != c:
            assert low.lower() == low, hex(cp)
            for d in low:
                assert (is_dropped(d), is_space(d), is_cjk(d)) == (is_dropped(c), is_space(c), is_cjk(c)), hex(cp)


def runs(mapping):
    """Runs [lo, hi, stride, out, delta]: code point lo + k * stride (k = 0, 1, ...) maps to out + k * delta,
    element-wise. Each run extends only to the next mapped code point, so runs never overlap."""
    result = []
    for cp, out in sorted(mapping.items()):
        if result:
            r = result[-1]
            lo, hi, stride, first, delta = r
            k = (cp - lo) // stride if stride else 1
            if len(out) == len(first):
                if hi == lo:  # a second point fixes the run's stride and delta
                    r[1:] = [cp, cp - lo, first, [b - a for a, b in zip(first, out)]]
                    continue
                if cp == hi + stride and all(b == a + k * d for a, b, d in zip(first, out, delta)):
                    r[1] = cp
                    continue
        result.append([cp, cp, 0, out, [0] * len(out)])
    return result


def expand(run_list):
    out = {}
    for lo, hi, stride, first, delta in run_list:
        for k, cp in enumerate(range(lo, hi + 1, stride or 1)):
            out[cp] = [a + k * d for a, d in zip(first, delta)]
    return out


def emit_ranges(name, rs):
    body = ",\n".join(f"    {{0x{a:X}, 0x{b:X}}}" for a, b in rs)
    return f"static const CodeRange {name}[] = {{\n{body}\n}};\nstatic const size_t {name}_LEN = {len(rs)};\n"


def emit_runs(name, rs, width):
    def row(lo, hi, stride, first, delta):
        pad = width - len(first)
        out = ", ".join(f"0x{v:X}" for v in first + [0] * pad)
        dl = ", ".join(str(v) for v in delta + [0] * pad)
        return f"    {{0x{lo:X}, 0x{hi:X}, {stride or 1}, {len(first)}, {{{out}}}, {{{dl}}}}}"

    body = ",\n".join(row(*r) for r in rs)
    return f"static const CodeRun {name}[] = {{\n{body}\n}};\nstatic const size_t {name}_LEN = {len(rs)};\n"


def header():
    classes = {"DROPPED": is_dropped, "SPACE": is_space, "CJK": is_cjk, "SPLIT": is_split, "MN": is_mn}
    tables = {name: ranges([pred(c) for c in code_points()]) for name, pred in classes.items()}
    ccc = value_ranges([unicodedata.combining(c) for c in code_points()])
    mapping = decompose_map()
    assert all(mapping.values()), "a character decomposes to nothing"
    check_assumptions()
    decompose_runs = runs(mapping)
    assert expand(decompose_runs) == mapping, "the runs do not reproduce the decomposition map"
    width = max(len(v) for v in mapping.values())
    ccc_body = ",\n".join(f"    {{0x{lo:X}, 0x{hi:X}, {v}}}" for lo, hi, v in ccc)
    return "\n".join([
        f"// Generated by gen_unicode_tables.py from Python {sys.version.split()[0]} unicodedata "
        f"{unicodedata.unidata_version}. Do not edit.",
        "#pragma once", "#include <cstddef>", "#include <cstdint>",
        f'#define SLU_UNICODE_VERSION "{unicodedata.unidata_version}"',
        "struct CodeRange { uint32_t lo, hi; };",
        "struct CodeValue { uint32_t lo, hi; uint8_t value; };",
        f"constexpr int kMaxDecomposition = {width};",
        "// lo + k * stride (k = 0 .. (hi - lo) / stride) maps to the n code points out[j] + k * delta[j]",
        "struct CodeRun { uint32_t lo, hi; uint32_t stride; uint8_t n; uint32_t out[kMaxDecomposition]; "
        "int32_t delta[kMaxDecomposition]; };",
        *(emit_ranges(name, rs) for name, rs in tables.items()),
        f"static const CodeValue CCC[] = {{\n{ccc_body}\n}};\nstatic const size_t CCC_LEN = {len(ccc)};\n",
        emit_runs("DECOMPOSE", decompose_runs, width),
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", help="header to write (default: stdout)")
    a = ap.parse_args()
    if unicodedata.unidata_version != UNICODE_VERSION:
        raise SystemExit(f"gen_unicode_tables.py: error: {sys.executable} (Python {sys.version.split()[0]}) has "
                         f"Unicode {unicodedata.unidata_version}, but the tokenizer tables must come from Unicode "
                         f"{UNICODE_VERSION}, the version of the Python tokenizer (CPython 3.12, the project's .venv); "
                         "build with PYTHON=/path/to/python3.12 bash deploy/cpp/build.sh (CMake: -DPython=...)")
    text = header()
    if not a.output:
        sys.stdout.write(text)
        return
    tmp = a.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
