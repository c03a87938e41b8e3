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
 * PaddleNLP's ErnieTokenizer (BasicTokenizer + WordPiece) in plain Java, with character offsets. Character
 * classes come from java.lang.Character: on JDK 17 Unicode 13.0, the version of Python 3.9's unicodedata
 * (tests/test_deploy_android.py compares every code point); on a phone, the version of its Android release.
 * Uses only APIs of Android API level 23 (no streams, no String.codePoints()).
 */
public final class Tokenizer {
    /**
     * Token ids ([CLS] query [SEP], then any context turns), their token types (0 for the query, 1 for the
     * context), code-point offsets per token ((0,0) for specials and the context) and whether the query was
     * truncated.
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

    private final Map<String, Long> vocab;
    private final BitSet continuation = new BitSet();  // the lines that start with "##"
    private final long pad, cls, sep, unk;
    private final boolean lowerCase;

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

    /** The vocabulary line of `id` is a WordPiece continuation ("##..."): core.continuation_ids. */
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
        List<int[]> offsets = new ArrayList<>();
        for (List<int[]> word : basicTokens(query)) wordpiece(word, ids, offsets);
        return frame(ids, offsets, maxLength);
    }

    /** BasicTokenizer: words of {code point, index in the query}, split at whitespace, around CJK characters,
     * punctuation and symbols; lower-cased and accent-stripped when asked. */
    private List<List<int[]>> basicTokens(int[] query) {
        List<List<int[]>> tokens = new ArrayList<>();
        List<int[]> cur = new ArrayList<>();
        for (int i = 0; i < query.length; i++) {
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

    private static String text(List<int[]> chars, int b, int e) {
        StringBuilder sb = new StringBuilder();
        for (int i = b; i < e; i++) sb.appendCodePoint(chars.get(i)[0]);
        return sb.toString();
    }

    /** WordPiece, greedy longest match first; a word with an unknown piece is one [UNK]. */
    private void wordpiece(List<int[]> word, List<Long> ids, List<int[]> offsets) {
        int n = ids.size();
        for (int start = 0, end; start < word.size() && word.size() <= MAX_WORD_CHARS; start = end) {
            Long found = null;
            for (end = word.size(); end > start && found == null; ) {
                found = vocab.get((start > 0 ? "##" : "") + text(word, start, end));
                if (found == null) end--;
            }
            if (found == null) break;
            ids.add(found);
            offsets.add(new int[] {word.get(start)[1], word.get(end - 1)[1] + 1});
            if (end == word.size()) return;
        }
        ids.subList(n, ids.size()).clear();
        offsets.subList(n, offsets.size()).clear();
        ids.add(unk);
        offsets.add(new int[] {word.get(0)[1], word.get(word.size() - 1)[1] + 1});
    }

    /**
     * core.add_context: `enc` ([CLS] query [SEP]) followed by the last `turns` of `context` (earlier turns, oldest
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
    private Encoding frame(List<Long> ids, List<int[]> offsets, int maxLength) {
        int keep = Math.max(0, maxLength - 2);
        int n = Math.min(keep, ids.size());
        long[] outIds = new long[n + 2];
        int[][] outOffsets = new int[n + 2][];
        outIds[0] = cls;
        outOffsets[0] = new int[] {0, 0};
        for (int i = 0; i < n; i++) {
            outIds[i + 1] = ids.get(i);
            outOffsets[i + 1] = offsets.get(i);
        }
        outIds[n + 1] = sep;
        outOffsets[n + 1] = new int[] {0, 0};
        return new Encoding(outIds, new long[n + 2], outOffsets, ids.size() > keep);
    }
}
