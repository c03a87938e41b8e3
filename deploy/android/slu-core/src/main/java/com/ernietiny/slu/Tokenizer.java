package com.ernietiny.slu;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * PaddleNLP's ErnieTokenizer (BERT basic tokenization + WordPiece) in plain Java, with character offsets.
 * Character classes come from java.lang.Character (JDK 17: Unicode 13.0, the same tables as Python 3.9's
 * unicodedata). Checked against the Python pipeline by tests/test_deploy_android.py.
 */
public final class Tokenizer {
    /** Token ids ([CLS] ... [SEP]), code-point offsets per token ((0,0) for specials) and a truncation flag. */
    public static final class Encoding {
        public final long[] ids;
        public final int[][] offsets;
        public final boolean truncated;

        Encoding(long[] ids, int[][] offsets, boolean truncated) {
            this.ids = ids;
            this.offsets = offsets;
            this.truncated = truncated;
        }
    }

    private final Map<String, Long> vocab = new HashMap<>();
    private final long pad, cls, sep, unk;
    private final boolean lowerCase;

    public Tokenizer(InputStream vocabTxt, String name, boolean lowerCase) throws IOException {
        this.lowerCase = lowerCase;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(vocabTxt, StandardCharsets.UTF_8))) {
            String line;
            long id = 0;
            while ((line = r.readLine()) != null) {
                if (line.endsWith("\r")) line = line.substring(0, line.length() - 1);
                vocab.putIfAbsent(line, id++);
            }
        }
        for (String t : new String[] {"[PAD]", "[CLS]", "[SEP]", "[UNK]"}) {
            if (!vocab.containsKey(t)) throw new IllegalArgumentException(name + ": vocab has no " + t + " token");
        }
        pad = vocab.get("[PAD]");
        cls = vocab.get("[CLS]");
        sep = vocab.get("[SEP]");
        unk = vocab.get("[UNK]");
    }

    public long padId() {
        return pad;
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

    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        int t = Character.getType(cp);
        return t == Character.CONTROL || t == Character.FORMAT;
    }

    static boolean isWhitespace(int cp) {
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }

    static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    /** lower() then NFD without non-spacing marks, as BasicTokenizer does. */
    private int[] normalize(int cp) {
        if (!lowerCase) return new int[] {cp};
        String s = Normalizer.normalize(new String(Character.toChars(cp)).toLowerCase(Locale.ROOT), Normalizer.Form.NFD);
        return s.codePoints().filter(c -> Character.getType(c) != Character.NON_SPACING_MARK).toArray();
    }

    private static String text(List<int[]> chars, int b, int e) {
        StringBuilder sb = new StringBuilder();
        for (int i = b; i < e; i++) sb.appendCodePoint(chars.get(i)[0]);
        return sb.toString();
    }

    /** Encode `query` (code points) to at most maxLength tokens including [CLS] and [SEP]. */
    public Encoding encode(int[] query, int maxLength) {
        List<List<int[]>> words = new ArrayList<>();  // each char: {code point, original index}
        words.add(new ArrayList<>());
        for (int i = 0; i < query.length; i++) {
            int cp = query[i];
            if (cp == 0 || cp == 0xFFFD || isControl(cp)) continue;
            List<int[]> last = words.get(words.size() - 1);
            if (isWhitespace(cp)) {
                if (!last.isEmpty()) words.add(new ArrayList<>());
            } else if (isChinese(cp)) {
                if (!last.isEmpty()) words.add(new ArrayList<>());
                words.get(words.size() - 1).add(new int[] {cp, i});
                words.add(new ArrayList<>());
            } else {
                last.add(new int[] {cp, i});
            }
        }
        List<List<int[]>> tokens = new ArrayList<>();
        for (List<int[]> w : words) {
            List<int[]> cur = new ArrayList<>();
            for (int[] c : w) {
                for (int n : normalize(c[0])) {
                    if (isPunct(n)) {
                        if (!cur.isEmpty()) tokens.add(cur);
                        cur = new ArrayList<>();
                        List<int[]> p = new ArrayList<>();
                        p.add(new int[] {n, c[1]});
                        tokens.add(p);
                    } else if (isWhitespace(n)) {
                        if (!cur.isEmpty()) tokens.add(cur);
                        cur = new ArrayList<>();
                    } else {
                        cur.add(new int[] {n, c[1]});
                    }
                }
            }
            if (!cur.isEmpty()) tokens.add(cur);
        }
        List<Long> ids = new ArrayList<>();
        List<int[]> offs = new ArrayList<>();
        for (List<int[]> t : tokens) {
            List<Long> pid = new ArrayList<>();
            List<int[]> poff = new ArrayList<>();
            boolean bad = t.size() > 100;
            int start = 0;
            while (!bad && start < t.size()) {
                int end = t.size();
                Long found = null;
                while (start < end) {
                    found = vocab.get((start > 0 ? "##" : "") + text(t, start, end));
                    if (found != null) break;
                    end--;
                }
                if (found == null) {
                    bad = true;
                    break;
                }
                pid.add(found);
                poff.add(new int[] {t.get(start)[1], t.get(end - 1)[1] + 1});
                start = end;
            }
            if (bad) {
                ids.add(unk);
                offs.add(new int[] {t.get(0)[1], t.get(t.size() - 1)[1] + 1});
            } else {
                ids.addAll(pid);
                offs.addAll(poff);
            }
        }
        int keep = Math.max(0, maxLength - 2);
        boolean truncated = ids.size() > keep;
        int n = Math.min(keep, ids.size());
        long[] outIds = new long[n + 2];
        int[][] outOffs = new int[n + 2][];
        outIds[0] = cls;
        outOffs[0] = new int[] {0, 0};
        for (int i = 0; i < n; i++) {
            outIds[i + 1] = ids.get(i);
            outOffs[i + 1] = offs.get(i);
        }
        outIds[n + 1] = sep;
        outOffs[n + 1] = new int[] {0, 0};
        return new Encoding(outIds, outOffs, truncated);
    }
}
