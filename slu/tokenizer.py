"""The deployment tokenizer: PaddleNLP's ErnieTokenizer (what training uses) restated without importing PaddleNLP,
with the WordPiece model of Hugging Face's `tokenizers` (Rust, maintained, wheels for every CPython this project
uses) for the ids. Upstream's `--use_fast` used PaddleNLP's FastTokenizer, which has no wheel past CPython 3.10 and
no release since 2023.

FastTokenizer 1.0.2's own ErnieFastTokenizer also answers differently from PaddleNLP on symbols (category S and
PaddleNLP's `_is_symbol` extras: `100～200` becomes one [UNK] instead of three tokens), on characters of category
C that PaddleNLP drops (private use, unassigned), on U+2028/U+2029, on special tokens typed in the text, and in
its offsets. So everything before WordPiece is done here, as PaddleNLP does it:

1. the special tokens typed in the text ([CLS], [SEP], [PAD], [UNK], [MASK], exactly and case-sensitively) are split
   out first, each kept as that token; the text between them is tokenized on its own;
2. BasicTokenizer: drop U+0000, U+FFFD and category C (but tab, LF, CR); whitespace splits; each CJK character is
   a word; per word, lower-case and strip accents (NFD, drop Mn); punctuation and symbols are tokens of their own;
3. WordPiece (greedy longest match, [UNK] for a word it cannot split or longer than 100 characters): `tokenizers`'
   WordPiece model, given one normalized word at a time, memoized per word;
4. PaddleNLP's offset mapping (`_get_bert_like_offset_mapping`), quirks included.

tests/test_tokenizer.py holds this to PaddleNLP's tokenizer on the edge cases and on a sweep over every Unicode
category; deploy/cpp/gen_unicode_tables.py builds the C++ port's tables from the same predicates.
"""
import os
import unicodedata

SPECIAL_TOKENS = ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]")
SYMBOL_EXTRAS = (0x00AD, 0x00B2, 0x00BA, 0x3007, 0x00B5, 0x00D8, 0x014B, 0x01B1)  # PaddleNLP's _is_symbol
CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
       (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))  # BasicTokenizer._is_chinese_char
MAX_WORD_CHARS = 100  # WordpieceTokenizer.max_input_chars_per_word


# ------------------------------------------------------------------------------------------------ characters
def is_dropped(c):
    """_clean_text drops U+0000, U+FFFD and _is_control: every C* category (Cc, Cf, Cs, Co, Cn) but tab, LF, CR."""
    if ord(c) in (0, 0xFFFD):
        return True
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def is_space(c):
    """Where the text is split: _clean_text's _is_whitespace (space, tab, LF, CR, Zs) and what str.split() splits on
    besides (U+2028, U+2029, and C0/C1 separators that are dropped first)."""
    return c.isspace() or c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_cjk(c):
    return any(lo <= ord(c) <= hi for lo, hi in CJK)


def is_split(c):
    """_run_split_on_punc: _is_punctuation (ASCII non-alphanumerics, category P*) or _is_symbol (S*, extras)."""
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c)[0] in "PS" or cp in SYMBOL_EXTRAS


def is_mn(c):
    return unicodedata.category(c) == "Mn"


def strip_accents(word):
    return "".join(c for c in unicodedata.normalize("NFD", word) if not is_mn(c))


# ------------------------------------------------------------------------------------------------ tokenizer
class FastTokenizer:
    """(ids, offsets, truncated) per text, equal to data.encode_queries with PaddleNLP's ErnieTokenizer."""

    def __init__(self, vocab_path, do_lower_case=True):
        from tokenizers.models import WordPiece

        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"model file not found: {vocab_path}")
        vocab = WordPiece.read_file(vocab_path)
        for token in ("[PAD]", "[CLS]", "[SEP]", "[UNK]"):
            if token not in vocab:
                raise ValueError(f"{vocab_path}: the vocabulary has no {token} token")
        self.lower_case = do_lower_case
        self.pad_token_id, self.cls_id, self.sep_id, self.unk_id = (vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]",
                                                                                        "[UNK]"))
        # a special token missing from the vocabulary is still split out, with [UNK]'s id (as PaddleNLP's dict)
        self.special_ids = {t: vocab.get(t, self.unk_id) for t in SPECIAL_TOKENS}
        self.piece_text = {i: t[2:] if t.startswith("##") else t for t, i in vocab.items()}
        self.wordpiece = WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_WORD_CHARS)
        self.cache = {}

    def __call__(self, texts, max_length):
        keep = max(0, max_length - 2)
        ids, offsets, truncated = [], [], []
        for text in texts:
            token_ids, token_offsets = self.encode(text)
            truncated.append(len(token_ids) > keep)
            ids.append([self.cls_id] + token_ids[:keep] + [self.sep_id])
            offsets.append([(0, 0)] + token_offsets[:keep] + [(0, 0)])
        return ids, offsets, truncated

    def encode(self, text):
        """Token ids and (start, end) character offsets of one text, without [CLS]/[SEP]."""
        ids, pieces, special = [], [], []
        for segment, special_token in split_special_tokens(text):
            if special_token:
                ids.append(self.special_ids[segment])
                pieces.append(segment.lower() if self.lower_case else segment)
                special.append(True)
                continue
            for word in basic_tokenize(segment, self.lower_case):
                for i in self.word_ids(word):
                    ids.append(i)
                    is_unk = i == self.unk_id
                    pieces.append(("[unk]" if self.lower_case else "[UNK]") if is_unk else self.piece_text[i])
                    special.append(is_unk)
        return ids, offset_mapping(text, pieces, special, self.lower_case)

    def word_ids(self, word):
        ids = self.cache.get(word)
        if ids is None:
            if len(word) > MAX_WORD_CHARS:
                ids = [self.unk_id]
            else:
                ids = [t.id for t in self.wordpiece.tokenize(word)] or [self.unk_id]
            if len(self.cache) > 200_000:
                self.cache.clear()
            self.cache[word] = ids
        return ids


def split_special_tokens(text):
    """[(segment, is_special_token)]: PaddleNLP's tokens_trie split, then the whitespace next to a special token
    stripped (empty segments dropped)."""
    out, start, i = [], 0, 0
    while i < len(text):
        token = next((t for t in SPECIAL_TOKENS if text.startswith(t, i)), None) if text[i] == "[" else None
        if token is None:
            i += 1
            continue
        out.append((text[start:i], False))
        out.append((token, True))
        i = start = i + len(token)
    out.append((text[start:], False))
    for k, (segment, special) in enumerate(out):
        if not special:
            if k > 0:
                segment = segment.lstrip()
            if k + 1 < len(out):
                segment = segment.rstrip()
            out[k] = (segment, False)
    return [(s, special) for s, special in out if s]


def basic_tokenize(text, lower_case=True):
    """BasicTokenizer.tokenize after PretrainedTokenizer.tokenize's per-character lower-casing: the words WordPiece
    gets."""
    if lower_case:
        text = "".join(c.lower() for c in text)
    words, word = [], []
    for c in text:
        if is_dropped(c):
            continue
        if is_space(c) or is_cjk(c):
            if word:
                words.append("".join(word))
                word = []
            if is_cjk(c):
                words.append(c)
            continue
        word.append(c)
    if word:
        words.append("".join(word))
    tokens = []
    for w in words:
        if lower_case:
            w = strip_accents(w.lower())
        piece = []
        for c in w:
            if is_split(c) or is_space(c):
                if piece:
                    tokens.append("".join(piece))
                    piece = []
                if not is_space(c):
                    tokens.append(c)
            else:
                piece.append(c)
        if piece:
            tokens.append("".join(piece))
    return tokens


def offset_mapping(text, pieces, special, lower_case=True):
    """PaddleNLP's _get_bert_like_offset_mapping: the text normalized one character at a time, each token's text
    (`pieces`, "##" removed, special tokens lower-cased with the text) searched for after the previous one found, a
    token not found spanning the gap between its neighbours (one before a special token spans one character).
    Python's negative indexing is kept; an index past the end, where PaddleNLP raises, is clamped."""
    normalized, source = [], []
    for i, ch in enumerate(text):
        if lower_case:
            ch = strip_accents(ch.lower())
        for c in ch:
            if not is_dropped(c):
                normalized.append(c)
                source.append(i)
    norm = "".join(normalized)
    found, offset = [], 0
    for t, piece in enumerate(pieces):
        if "σ" in piece or "ς" in piece:
            start = norm.replace("ς", "σ").find(piece.replace("ς", "σ"), offset)
            length = len(piece)
        else:
            start, length = norm.find(piece, offset), len(piece)
            if start < 0 and t + 1 < len(pieces) and special[t + 1]:
                start, length = offset, 1
        found.append((start, start + length))
        if start >= 0:
            offset = start + length

    def at(k):
        n = len(source)
        if k < 0:
            k += n
        return source[max(0, min(k, n - 1))] if n else 0

    out = []
    for t, (start, end) in enumerate(found):
        if start == -1:
            start = 0 if t == 0 else found[t - 1][1]
            end = len(source) if t + 1 == len(found) else found[t + 1][0]
        out.append((at(start), at(end - 1) + 1))
    return out
