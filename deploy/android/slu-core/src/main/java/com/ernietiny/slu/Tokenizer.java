package com.ernietiny.slu;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * PaddleNLP's ErnieTokenizer in plain Java: the special tokens typed in the text split out first (exactly and
 * case-sensitively, each kept as that token), BasicTokenizer + WordPiece on the text between them, and the character
 * offsets of PaddleNLP's offset mapping. Character
 * classes come from java.lang.Character: on JDK 17 Unicode 13.0, the version of Python 3.9's unicodedata
 * (tests/test_deploy_android.py compares every code point; training's CPython 3.12 has Unicode 15.0, which differs
 * only on characters added since 13.0); on a phone, the version of its Android release.
 * Uses only APIs of Android API level 23 (no streams, no String.codePoints()).
 */
public final class Tokenizer {
    /**
     * Token ids ([CLS] query [SEP], then any context turns), their token types (0 for the query, 1 for the
     * context), code-point offsets per token as PaddleNLP's offset mapping gives them ((0,0) for the [CLS] and
     * [SEP] around the query and for the context) and whether the query was truncated.
     */
    public static final class Encoding {
        public final long[] ids;
        public final long[] tokenTypeIds;
        public final int[][] offsets;
        public final boolean truncated;

        Encoding(long[] ids, long[] tokenTypeIds, int[][] offsets, boolean truncated) {
            this.ids = ids;
            this.tokenTypeIds = tokenTypeIds;
            this.offsets = offsets;
            this.truncated = truncated;
        }
    }

    /** PaddleNLP's `_is_symbol` adds these to Unicode category S. */
    private static final int[] EXTRA_SYMBOLS = {0x00AD, 0x00B2, 0x00BA, 0x3007, 0x00B5, 0x00D8, 0x014B, 0x01B1};
    private static final int MAX_WORD_CHARS = 100;
    /** ErnieTokenizer's special tokens, [UNK] first. */
    private static final String[] SPECIALS = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

    private final Map<String, Long> vocab;
    private final BitSet continuation = new BitSet();  // the lines that start with "##"
    private final long pad, cls, sep, unk;
    private final boolean lowerCase;
    /** Per special token: its id, and its text as the offset mapping searches it (lower-cased with lowerCase). */
    private final long[] specialIds = new long[SPECIALS.length];
    private final int[][] specialTexts = new int[SPECIALS.length][];

    public Tokenizer(InputStream vocabTxt, String name, boolean lowerCase) throws IOException {
        this.lowerCase = lowerCase;
        vocab = readVocab(vocabTxt, continuation);
        for (String t : new String[] {"[PAD]", "[CLS]", "[SEP]", "[UNK]"}) {
            if (!vocab.containsKey(t)) throw new IllegalArgumentException(name + ": vocab has no " + t + " token");
        }
        pad = vocab.get("[PAD]");
        cls = vocab.get("[CLS]");
        sep = vocab.get("[SEP]");
        unk = vocab.get("[UNK]");
        // a vocabulary without [MASK] still has it split out, as PaddleNLP does (its id there is one past the
        // vocabulary, which no model has; [UNK]'s here)
        for (int k = 0; k < SPECIALS.length; k++) {
            Long id = vocab.get(SPECIALS[k]);
            specialIds[k] = id == null ? unk : id;
            specialTexts[k] = codePoints(lowerCase ? SPECIALS[k].toLowerCase(Locale.ROOT) : SPECIALS[k]);
        }
    }

    /** Token -> line index. A repeated token keeps its last line, as PaddleNLP's Vocab.load_vocabulary does;
     * readLine ends lines at \n, \r or \r\n, as Python's universal newlines do. Sets the continuation lines. */
    private static Map<String, Long> readVocab(InputStream in, BitSet continuation) throws IOException {
        Map<String, Long> vocab = new HashMap<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            int id = 0;
            for (String line; (line = r.readLine()) != null; id++) {
                vocab.put(line, (long) id);
                if (line.startsWith("##")) continuation.set(id);
            }
        }
        return vocab;
    }

    public long padId() {
        return pad;
    }

    /** The vocabulary line of `id` is a WordPiece continuation ("##..."): decoding.continuation_ids. */
    public boolean isContinuation(long id) {
        return id >= 0 && id < Integer.MAX_VALUE && continuation.get((int) id);
    }

    /** The code points of `s` (String.codePoints() needs API 24). */
    public static int[] codePoints(String s) {
        int[] out = new int[s.codePointCount(0, s.length())];
        for (int i = 0, k = 0; i < s.length(); i += Character.charCount(out[k++])) out[k] = s.codePointAt(i);
        return out;
    }

    static boolean isPunct(int cp) {
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
            return true;
        }
        switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION: case Character.DASH_PUNCTUATION: case Character.START_PUNCTUATION:
            case Character.END_PUNCTUATION: case Character.INITIAL_QUOTE_PUNCTUATION:
            case Character.FINAL_QUOTE_PUNCTUATION: case Character.OTHER_PUNCTUATION:
                return true;
            default:
                return false;
        }
    }

    static boolean isSymbol(int cp) {
        switch (Character.getType(cp)) {
            case Character.MATH_SYMBOL: case Character.CURRENCY_SYMBOL: case Character.MODIFIER_SYMBOL:
            case Character.OTHER_SYMBOL:
                return true;
            default:
                for (int x : EXTRA_SYMBOLS) if (cp == x) return true;
                return false;
        }
    }

    /** Dropped: category C* (Cc, Cf, Cs, Co, Cn) but tab and line breaks, and U+0000 / U+FFFD. */
    static boolean isDropped(int cp) {
        if (cp == 0 || cp == 0xFFFD) return true;
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        switch (Character.getType(cp)) {
            case Character.CONTROL: case Character.FORMAT: case Character.SURROGATE: case Character.PRIVATE_USE:
            case Character.UNASSIGNED:
                return true;
            default:
                return false;
        }
    }

    /** Python's str.split() also splits on U+2028/U+2029 (its other extra separators are Cc, dropped first). */
    static boolean isWhitespace(int cp) {
        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
        int t = Character.getType(cp);
        return t == Character.SPACE_SEPARATOR || t == Character.LINE_SEPARATOR || t == Character.PARAGRAPH_SEPARATOR;
    }

    static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    /** lower() then NFD without non-spacing marks, as BasicTokenizer does. PaddleNLP lowers the text one
     * character at a time (a regex over single characters), so no context-dependent casing (final sigma). */
    static int[] lowerAndStripAccents(int cp) {
        String s = Normalizer.normalize(new String(Character.toChars(cp)).toLowerCase(Locale.ROOT),
                Normalizer.Form.NFD);
        int[] cps = codePoints(s);
        int n = 0;
        for (int c : cps) if (Character.getType(c) != Character.NON_SPACING_MARK) cps[n++] = c;
        return Arrays.copyOf(cps, n);
    }

    /** Encode `query` (code points) to at most maxLength tokens including [CLS] and [SEP]. */
    public Encoding encode(int[] query, int maxLength) {
        List<Long> ids = new ArrayList<>();
        List<int[]> pieces = new ArrayList<>();  // each token's text, as the offset mapping searches it
        BitSet special = new BitSet();  // the tokens that are special: typed ones and WordPiece's [UNK]
        // PaddleNLP's tokenize() splits the special tokens typed in the query out first (exact and case-sensitive;
        // its per-character lower-casing keeps them and cannot make one) and tokenizes the text between them on its
        // own (the whitespace it strips next to them would be dropped anyway)
        int begin = 0;
        for (int i = 0; i < query.length; i++) {
            int k = query[i] == '[' ? specialAt(query, i) : -1;
            if (k < 0) continue;
            for (List<int[]> word : basicTokens(query, begin, i)) wordpiece(word, ids, pieces, special);
            special.set(ids.size());
            ids.add(specialIds[k]);
            pieces.add(specialTexts[k]);
            begin = i + SPECIALS[k].length();
            i = begin - 1;
        }
        for (List<int[]> word : basicTokens(query, begin, query.length)) wordpiece(word, ids, pieces, special);
        return frame(ids, offsetMapping(query, pieces, special), maxLength);
    }

    /** The special token spelled at query[i] (an index into SPECIALS), or -1. */
    private static int specialAt(int[] query, int i) {
        for (int k = 0; k < SPECIALS.length; k++) {
            String name = SPECIALS[k];
            int n = name.length();
            boolean match = query.length - i >= n;
            for (int j = 0; match && j < n; j++) match = query[i + j] == name.charAt(j);
            if (match) return k;
        }
        return -1;
    }

    /** BasicTokenizer on query[begin, end): words of {code point, index in the query}, split at whitespace, around
     * CJK characters, punctuation and symbols; lower-cased and accent-stripped when asked. */
    private List<List<int[]>> basicTokens(int[] query, int begin, int end) {
        List<List<int[]>> tokens = new ArrayList<>();
        List<int[]> cur = new ArrayList<>();
        for (int i = begin; i < end; i++) {
            int cp = query[i];
            if (isDropped(cp)) continue;
            boolean cjk = isChinese(cp);  // tested before lower-casing, punctuation and symbols after
            if (cjk) cur = flush(tokens, cur);
            for (int n : lowerCase ? lowerAndStripAccents(cp) : new int[] {cp}) {
                if (isWhitespace(n)) {
                    cur = flush(tokens, cur);
                } else if (isPunct(n) || isSymbol(n)) {
                    cur = flush(tokens, cur);
                    cur.add(new int[] {n, i});
                    cur = flush(tokens, cur);
                } else {
                    cur.add(new int[] {n, i});
                }
            }
            if (cjk) cur = flush(tokens, cur);
        }
        flush(tokens, cur);
        return tokens;
    }

    /** Adds `cur` to `tokens` if not empty; a fresh token. */
    private static List<int[]> flush(List<List<int[]>> tokens, List<int[]> cur) {
        if (cur.isEmpty()) return cur;
        tokens.add(cur);
        return new ArrayList<>();
    }

    private static int[] chars(List<int[]> word, int b, int e) {
        int[] out = new int[e - b];
        for (int i = b; i < e; i++) out[i - b] = word.get(i)[0];
        return out;
    }

    private static String text(List<int[]> word, int b, int e) {
        StringBuilder sb = new StringBuilder();
        for (int i = b; i < e; i++) sb.appendCodePoint(word.get(i)[0]);
        return sb.toString();
    }

    /** WordPiece, greedy longest match first; a word with an unknown piece is one [UNK]. Appends each token's id
     * and text (without "##"), and marks an [UNK] special. */
    private void wordpiece(List<int[]> word, List<Long> ids, List<int[]> pieces, BitSet special) {
        int n = ids.size();
        for (int start = 0, end; start < word.size() && word.size() <= MAX_WORD_CHARS; start = end) {
            Long found = null;
            for (end = word.size(); end > start && found == null; ) {
                found = vocab.get((start > 0 ? "##" : "") + text(word, start, end));
                if (found == null) end--;
            }
            if (found == null) break;
            ids.add(found);
            pieces.add(chars(word, start, end));
            if (end == word.size()) return;
        }
        ids.subList(n, ids.size()).clear();
        pieces.subList(n, pieces.size()).clear();
        special.set(ids.size());
        ids.add(unk);
        pieces.add(specialTexts[0]);
    }

    /**
     * PaddleNLP's _get_bert_like_offset_mapping, which the Python pipeline's slots come from: the query normalized
     * one character at a time (lower-cased and accents stripped when asked, dropped characters removed, whitespace
     * kept), each token (a special one lower-cased, e.g. "[unk]") searched for after the previous one found, and a
     * token not found spanning the gap between its neighbours (one before a special token spans one character).
     * Python's negative indexing is kept; an index past the end, where Python would raise, is clamped.
     */
    private int[][] offsetMapping(int[] query, List<int[]> tokens, BitSet special) {
        int[] text = new int[query.length + 16];  // grown as needed: a character can lower-case and decompose to more
        int[] source = new int[text.length];      // char_mapping: the query index of each normalized character
        int len = 0;
        for (int i = 0; i < query.length; i++) {
            for (int c : lowerCase ? lowerAndStripAccents(query[i]) : new int[] {query[i]}) {
                if (isDropped(c)) continue;
                if (len == text.length) {
                    text = Arrays.copyOf(text, 2 * len + 1);
                    source = Arrays.copyOf(source, text.length);
                }
                text[len] = c;
                source[len++] = i;
            }
        }
        long[][] found = new long[tokens.size()][];  // [start, end) in text; start -1: not found
        int offset = 0;
        for (int t = 0; t < tokens.size(); t++) {
            int[] token = tokens.get(t);
            boolean sigma = false;
            for (int c : token) sigma |= isSigma(c);
            long start = indexOf(text, len, token, offset, sigma), n = token.length;
            if (start < 0 && !sigma && t + 1 < tokens.size() && special.get(t + 1)) {
                start = offset;
                n = 1;
            }
            found[t] = new long[] {start, start + n};
            if (start >= 0) offset = (int) (start + n);
        }
        int[][] out = new int[found.length][];
        for (int t = 0; t < found.length; t++) {
            long start = found[t][0], end = found[t][1];
            if (start == -1) {
                start = t == 0 ? 0 : found[t - 1][1];
                end = t + 1 == found.length ? len : found[t + 1][0];
            }
            out[t] = new int[] {at(source, len, start), at(source, len, end - 1) + 1};
        }
        return out;
    }

    private static final int SIGMA = 0x3C3, FINAL_SIGMA = 0x3C2;

    /** The first index >= from of `token` in text[0, len), or -1; with a sigma in the token both forms are one
     * letter, as PaddleNLP compares them. */
    private static int indexOf(int[] text, int len, int[] token, int from, boolean sigma) {
        for (int i = Math.min(from, len); i + token.length <= len; i++) {
            int j = 0;
            while (j < token.length
                    && (text[i + j] == token[j] || (sigma && isSigma(text[i + j]) && isSigma(token[j])))) {
                j++;
            }
            if (j == token.length) return i;
        }
        return -1;
    }

    private static boolean isSigma(int c) {
        return c == SIGMA || c == FINAL_SIGMA;
    }

    /** char_mapping[k] with Python's negative indexing, clamped to the ends (0 when empty). */
    private static int at(int[] source, int len, long k) {
        if (k < 0) k += len;
        return len == 0 ? 0 : source[(int) Math.max(0, Math.min(k, len - 1))];
    }

    /**
     * data.add_context: `enc` ([CLS] query [SEP]) followed by the last `turns` of `context` (earlier turns, oldest
     * first), most recent first, each as its tokens and a [SEP], with token type 1 and offsets (0,0), in at most
     * maxContextLength tokens in all (a turn that does not fit is cut, the older ones dropped). `enc` itself with
     * turns 0 or maxContextLength below 2.
     */
    public Encoding withContext(Encoding enc, List<int[]> context, int turns, int maxContextLength) {
        if (turns <= 0 || maxContextLength < 2) return enc;
        List<Long> extra = new ArrayList<>();
        int budget = maxContextLength;
        for (int k = 0; k < Math.min(turns, context.size()) && budget >= 2; k++) {
            // the turn's tokens as a query's at max length maxContextLength + 1, without [CLS] and [SEP], cut to
            // budget - 1, then a [SEP]
            Encoding turn = encode(context.get(context.size() - 1 - k), maxContextLength + 1);
            int take = Math.min(turn.ids.length - 2, budget - 1);
            for (int i = 1; i <= take; i++) extra.add(turn.ids[i]);
            extra.add(sep);
            budget -= take + 1;
        }
        int n = enc.ids.length, total = n + extra.size();
        long[] ids = Arrays.copyOf(enc.ids, total);
        long[] types = Arrays.copyOf(enc.tokenTypeIds, total);
        int[][] offsets = Arrays.copyOf(enc.offsets, total);
        for (int i = n; i < total; i++) {
            ids[i] = extra.get(i - n);
            types[i] = 1;
            offsets[i] = new int[] {0, 0};
        }
        return new Encoding(ids, types, offsets, enc.truncated);
    }

    /** [CLS] ids [SEP], truncated to maxLength. */
    private Encoding frame(List<Long> ids, int[][] offsets, int maxLength) {
        int keep = Math.max(0, maxLength - 2);
        int n = Math.min(keep, ids.size());
        long[] outIds = new long[n + 2];
        int[][] outOffsets = new int[n + 2][];
        outIds[0] = cls;
        outOffsets[0] = new int[] {0, 0};
        for (int i = 0; i < n; i++) {
            outIds[i + 1] = ids.get(i);
            outOffsets[i + 1] = offsets[i];
        }
        outIds[n + 1] = sep;
        outOffsets[n + 1] = new int[] {0, 0};
        return new Encoding(outIds, new long[n + 2], outOffsets, ids.size() > keep);
    }
}
