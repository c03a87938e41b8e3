package com.ernietiny.slu;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Golden check driver (JDK only). Usage:
 * <pre>
 *   GoldenMain vocab.txt intent_label.txt slot_label.txt cases.tsv [maxLength]   (maxLength default 16)
 *   GoldenMain --model-dir DIR cases.tsv [maxLength]   (files, lower-casing, default max length, context and
 *                                                     slot decoding from DIR/deploy_config.json, through
 *                                                     SluEngine.load)
 *   GoldenMain --encode DIR cases.tsv   (DIR as --model-dir; each line "query[TAB turn]...", the turns oldest
 *                                       first: ids, token_type_ids, offsets, truncated of SluEngine.encode)
 *   GoldenMain --decode DIR cases.tsv   (the SlotDecoder of DIR's manifest; each line "intent TAB ids TAB offsets
 *                                       TAB logits": an intent id, token ids, "start,end" offsets and the T x S
 *                                       slot logits row-major, space separated: the slot label ids as a JSON list)
 *   GoldenMain --config deploy_config.json [maxLength]
 *   GoldenMain --classes      (the tokenizer's class of every code point, run-length coded)
 *   GoldenMain --normalized   (every code point that lower-casing and accent stripping change)
 * </pre>
 * Each case line: the query alone, or query TAB intent logits TAB slot logits (space separated, row-major) TAB
 * intent logits' shape TAB slot logits' shape [TAB context turn]... (oldest first): the outputs a fake runtime
 * gives SluEngine for that query. Prints one JSON line per case: query, ids (those the runtime was given, for a
 * case with logits; and the token_type_ids it was given, if any), truncated, and intent, confidence, slots or
 * the engine's error. --config prints the manifest's fields and the max length served as one JSON line. Errors:
 * their one-line message on stderr, exit status 1.
 */
public final class GoldenMain {
    /** Returns the outputs of the case being run and keeps the ids (and token types) it was given. */
    static final class FakeRuntime implements SluEngine.Runtime {
        SluEngine.Output[] next;
        long[] seen, seenTypes;

        @Override
        public SluEngine.Output[] run(long[] ids, long[] tokenTypeIds) {
            seen = ids;
            seenTypes = tokenTypeIds;
            return next;
        }
    }

    static String esc(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029) {
                b.append(String.format("\\u%04x", (int) c));  // controls, and line breaks to Python's splitlines()
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    static float[] floats(String s) {
        String[] p = s.trim().split(" ");
        float[] f = new float[p.length];
        for (int i = 0; i < p.length; i++) f[i] = Float.parseFloat(p[i]);
        return f;
    }

    static long[] longs(String s) {
        String[] p = s.trim().split(" ");
        long[] v = new long[p.length];
        for (int i = 0; i < p.length; i++) v[i] = Long.parseLong(p[i]);
        return v;
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        try {
            run(out, args);
        } catch (IOException | IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(1);
        }
    }

    static void run(PrintStream out, String[] args) throws IOException {
        FakeRuntime fake = new FakeRuntime();
        switch (args[0]) {
            case "--config":
                printConfig(out, args[1], args.length > 2 ? Integer.parseInt(args[2]) : 0);
                break;
            case "--classes":
                printClasses(out);
                break;
            case "--normalized":
                printNormalized(out);
                break;
            case "--model-dir":
                golden(out, modelDir(new File(args[1]), args.length > 3 ? Integer.parseInt(args[3]) : 0, fake), fake,
                        args[2]);
                break;
            case "--encode":
                encode(out, modelDir(new File(args[1]), 0, fake), args[2]);
                break;
            case "--decode":
                decode(out, new File(args[1]), args[2]);
                break;
            default:
                Tokenizer tok = new Tokenizer(new FileInputStream(args[0]), args[0], true);
                List<String> intents = Labels.read(new FileInputStream(args[1]), args[1]);
                List<String> slots = Labels.read(new FileInputStream(args[2]), args[2]);
                int maxLength = args.length > 4 ? Integer.parseInt(args[4]) : 16;
                golden(out, new SluEngine(tok, intents, slots, maxLength, fake), fake, args[3]);
        }
    }

    static SluEngine modelDir(final File dir, int maxLength, final FakeRuntime fake) throws IOException {
        SluEngine.Files files = name -> new FileInputStream(new File(dir, name));
        try {
            return SluEngine.load(files, maxLength, config -> fake);
        } catch (IOException | IllegalArgumentException e) {
            // SluEngine names files as the manifest does; the tests want the path
            String m = e.getMessage();
            throw new IllegalArgumentException(m.startsWith(DeployConfig.FILE + ":") ? dir + File.separator + m : m);
        }
    }

    static void printConfig(PrintStream out, String path, int requested) throws IOException {
        DeployConfig c = DeployConfig.read(new FileInputStream(path), path);
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("format", DeployConfig.FORMAT);
        f.put("max_seq_length", c.maxSeqLength);
        f.put("max_position_embeddings", c.maxPositionEmbeddings);
        f.put("input_dtype", c.inputDtype);
        f.put("vocab_file", c.vocabFile);
        f.put("do_lower_case", c.doLowerCase);
        f.put("pad_token_id", c.padTokenId);
        f.put("intent_label_file", c.intentLabelFile);
        f.put("slot_label_file", c.slotLabelFile);
        f.put("num_intents", c.numIntents);
        f.put("num_slot_labels", c.numSlotLabels);
        f.put("context_turns", c.contextTurns);
        f.put("max_context_length", c.maxContextLength);
        f.put("slot_decoding", c.slotDecoding);
        f.put("intent_slot_types", c.intentSlotTypes);
        f.put("max_length", c.maxLength(requested));
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, Object> e : f.entrySet()) {
            b.append(b.length() == 0 ? "{\"" : ", \"").append(e.getKey()).append("\": ").append(json(e.getValue()));
        }
        out.println(b.append("}"));
    }

    /** Strings, numbers, booleans, lists and maps of them as JSON. */
    static String json(Object v) {
        if (v instanceof String) return "\"" + esc((String) v) + "\"";
        StringBuilder b = new StringBuilder();
        if (v instanceof List) {
            for (Object x : (List<?>) v) b.append(b.length() == 0 ? "" : ", ").append(json(x));
            return "[" + b + "]";
        }
        if (v instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                b.append(b.length() == 0 ? "" : ", ").append(json(e.getKey())).append(": ").append(json(e.getValue()));
            }
            return "{" + b + "}";
        }
        return String.valueOf(v);
    }

    static List<String> lines(String path) throws IOException {
        List<String> out = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new FileInputStream(path),
                StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) out.add(line);
        }
        return out;
    }

    /** SluEngine.encode of each "query[TAB turn]..." line. */
    static void encode(PrintStream out, SluEngine engine, String cases) throws IOException {
        for (String line : lines(cases)) {
            String[] cols = line.split("\t", -1);
            Tokenizer.Encoding enc = engine.encode(cols[0], Arrays.asList(cols).subList(1, cols.length));
            StringBuilder b = new StringBuilder("{\"ids\": ").append(longs(enc.ids));
            b.append(", \"token_type_ids\": ").append(longs(enc.tokenTypeIds)).append(", \"offsets\": [");
            for (int i = 0; i < enc.offsets.length; i++) {
                int[] o = enc.offsets[i];
                b.append(i > 0 ? ", [" : "[").append(o[0]).append(", ").append(o[1]).append("]");
            }
            out.println(b.append("], \"truncated\": ").append(enc.truncated).append("}"));
        }
    }

    /** The slot label ids the manifest's SlotDecoder gives each "intent TAB ids TAB offsets TAB logits" line. */
    static void decode(PrintStream out, File dir, String cases) throws IOException {
        DeployConfig c = DeployConfig.read(new FileInputStream(new File(dir, DeployConfig.FILE)), DeployConfig.FILE);
        Tokenizer tok = new Tokenizer(new FileInputStream(new File(dir, c.vocabFile)), c.vocabFile, c.doLowerCase);
        List<String> intents = Labels.read(new FileInputStream(new File(dir, c.intentLabelFile)), c.intentLabelFile);
        List<String> slots = Labels.read(new FileInputStream(new File(dir, c.slotLabelFile)), c.slotLabelFile);
        SlotDecoder decoder = new SlotDecoder(c.slotDecoding, intents, slots, c.intentSlotTypes, tok,
                c.slotTransitions);
        for (String line : lines(cases)) {
            String[] cols = line.split("\t", -1);
            String[] pairs = cols[2].split(" ");
            int[][] offsets = new int[pairs.length][];
            for (int i = 0; i < pairs.length; i++) {
                String[] se = pairs[i].split(",");
                offsets[i] = new int[] {Integer.parseInt(se[0]), Integer.parseInt(se[1])};
            }
            int[] ids = decoder.slotIds(Integer.parseInt(cols[0]), longs(cols[1]), offsets, floats(cols[3]));
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < ids.length; i++) b.append(i > 0 ? ", " : "").append(ids[i]);
            out.println(b.append("]"));
        }
    }

    static String longs(long[] v) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < v.length; i++) b.append(i > 0 ? ", " : "").append(v[i]);
        return b.append("]").toString();
    }

    /** d: dropped, w: whitespace, z: CJK, p: punctuation or symbol, '.': other; a line "hex class" where the
     * class changes. */
    static void printClasses(PrintStream out) {
        char last = 0;
        for (int cp = 0; cp <= Character.MAX_CODE_POINT; cp++) {
            char c = Tokenizer.isDropped(cp) ? 'd' : Tokenizer.isWhitespace(cp) ? 'w' : Tokenizer.isChinese(cp) ? 'z'
                    : Tokenizer.isPunct(cp) || Tokenizer.isSymbol(cp) ? 'p' : '.';
            if (c != last) out.println(Integer.toHexString(cp) + " " + c);
            last = c;
        }
    }

    /** "hex: hex hex ..." for every code point that lower-casing and accent stripping change. */
    static void printNormalized(PrintStream out) {
        for (int cp = 0; cp <= Character.MAX_CODE_POINT; cp++) {
            int[] n = Tokenizer.lowerAndStripAccents(cp);
            if (n.length == 1 && n[0] == cp) continue;
            StringBuilder b = new StringBuilder(Integer.toHexString(cp)).append(":");
            for (int x : n) b.append(' ').append(Integer.toHexString(x));
            out.println(b);
        }
    }

    static void golden(PrintStream out, SluEngine engine, FakeRuntime fake, String cases) throws IOException {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new FileInputStream(cases),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) out.println(goldenLine(engine, fake, line));
        }
    }

    static String goldenLine(SluEngine engine, FakeRuntime fake, String line) {
        String[] cols = line.split("\t", -1);
        Tokenizer.Encoding enc = engine.encode(cols[0]);
        StringBuilder b = new StringBuilder("{\"query\": \"" + esc(cols[0]) + "\"");
        if (cols.length == 1) return ids(b, enc.ids).append(", \"truncated\": ").append(enc.truncated).append("}")
                .toString();
        fake.next = new SluEngine.Output[] {new SluEngine.Output(floats(cols[1]), longs(cols[3])),
                new SluEngine.Output(floats(cols[2]), longs(cols[4]))};
        fake.seen = fake.seenTypes = null;
        SlotDecoder.Result res;
        try {
            res = engine.predict(cols[0], Arrays.asList(cols).subList(5, cols.length));
        } catch (IllegalStateException e) {
            return b.append(", \"error\": \"").append(esc(e.getMessage())).append("\"}").toString();
        }
        ids(b, fake.seen).append(", \"truncated\": ").append(enc.truncated);
        if (fake.seenTypes != null) b.append(", \"token_type_ids\": ").append(longs(fake.seenTypes));
        b.append(", \"intent\": \"").append(esc(res.intent)).append("\", \"confidence\": ").append(res.confidence)
                .append(", \"slot\": [");
        for (int i = 0; i < res.slots.size(); i++) {
            SlotDecoder.Slot s = res.slots.get(i);
            b.append(i > 0 ? ", " : "").append("{\"slot\": \"").append(esc(s.slot)).append("\", \"entity\": \"")
                    .append(esc(s.entity)).append("\", \"pos\": [").append(s.begin).append(", ").append(s.end)
                    .append("]}");
        }
        return b.append("]}").toString();
    }

    static StringBuilder ids(StringBuilder b, long[] ids) {
        b.append(", \"ids\": [");
        for (int i = 0; i < ids.length; i++) b.append(i > 0 ? ", " : "").append(ids[i]);
        return b.append("]");
    }
}
