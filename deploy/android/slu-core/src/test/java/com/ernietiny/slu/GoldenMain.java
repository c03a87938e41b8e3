package com.ernietiny.slu;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Golden check driver (JDK only). Usage:
 * <pre>
 *   GoldenMain vocab.txt intent_label.txt slot_label.txt cases.tsv [maxLength]   (maxLength default 16)
 *   GoldenMain --model-dir DIR cases.tsv [maxLength]   (files, lower-casing and default max length from
 *                                                     DIR/deploy_config.json, as SluPredictor takes them)
 *   GoldenMain --config deploy_config.json [maxLength]
 * </pre>
 * Each case line: query TAB intent logits (space separated) TAB slot logits for T x S (space separated, T = the
 * Python tokenizer's length), or the query alone. Prints one JSON line per case: query, ids, truncated, and with
 * logits intent, confidence, slots. --config prints the manifest's fields and the max length served as one JSON
 * line. Errors: their one-line message on stderr, exit status 1.
 */
public final class GoldenMain {
    static String esc(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.toString();
    }

    static float[] floats(String s) {
        String[] p = s.trim().split(" ");
        float[] f = new float[p.length];
        for (int i = 0; i < p.length; i++) f[i] = Float.parseFloat(p[i]);
        return f;
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        try {
            if (args[0].equals("--config")) {
                printConfig(out, args[1], args.length > 2 ? Integer.parseInt(args[2]) : 0);
            } else if (args[0].equals("--model-dir")) {
                goldenFromModelDir(out, new File(args[1]), args[2], args.length > 3 ? Integer.parseInt(args[3]) : 0);
            } else {
                Tokenizer tok = new Tokenizer(new FileInputStream(args[0]), args[0], true);
                List<String> intents = Labels.read(new FileInputStream(args[1]), args[1]);
                List<String> slots = Labels.read(new FileInputStream(args[2]), args[2]);
                golden(out, tok, intents, slots, args[3], args.length > 4 ? Integer.parseInt(args[4]) : 16);
            }
        } catch (IOException | IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(1);
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
        f.put("max_length", c.maxLength(requested));
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, Object> e : f.entrySet()) {
            Object v = e.getValue();
            b.append(b.length() == 0 ? "{\"" : ", \"").append(e.getKey()).append("\": ")
                    .append(v instanceof String ? "\"" + esc((String) v) + "\"" : v);
        }
        out.println(b.append("}"));
    }

    static void goldenFromModelDir(PrintStream out, File dir, String cases, int requested) throws IOException {
        File manifest = new File(dir, DeployConfig.FILE);
        DeployConfig c = DeployConfig.read(new FileInputStream(manifest), manifest.getPath());
        int maxLength = c.maxLength(requested);
        File vocab = new File(dir, c.vocabFile);
        Tokenizer tok = new Tokenizer(new FileInputStream(vocab), vocab.getPath(), c.doLowerCase);
        c.checkPadId(tok.padId());
        File intentFile = new File(dir, c.intentLabelFile), slotFile = new File(dir, c.slotLabelFile);
        List<String> intents = Labels.read(new FileInputStream(intentFile), intentFile.getPath());
        List<String> slots = Labels.read(new FileInputStream(slotFile), slotFile.getPath());
        c.checkLabels(intents.size(), slots.size());
        golden(out, tok, intents, slots, cases, maxLength);
    }

    static void golden(PrintStream out, Tokenizer tok, List<String> intents, List<String> slots, String cases,
                       int maxLength) throws IOException {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new FileInputStream(cases),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) out.println(goldenLine(tok, intents, slots, line, maxLength));
        }
    }

    static String goldenLine(Tokenizer tok, List<String> intents, List<String> slots, String line, int maxLength) {
        String[] cols = line.split("\t", -1);
        int[] query = cols[0].codePoints().toArray();
        Tokenizer.Encoding enc = tok.encode(query, maxLength);
        StringBuilder b = new StringBuilder("{\"query\": \"" + esc(cols[0]) + "\", \"ids\": [");
        for (int i = 0; i < enc.ids.length; i++) b.append(i > 0 ? ", " : "").append(enc.ids[i]);
        b.append("], \"truncated\": ").append(enc.truncated);
        if (cols.length == 3) {
            SlotDecoder.Result res = SlotDecoder.decode(query, enc, floats(cols[1]), floats(cols[2]), intents, slots);
            b.append(", \"intent\": \"").append(esc(res.intent)).append("\", \"confidence\": ")
                    .append(res.confidence).append(", \"slot\": [");
            for (int i = 0; i < res.slots.size(); i++) {
                SlotDecoder.Slot s = res.slots.get(i);
                b.append(i > 0 ? ", " : "").append("{\"slot\": \"").append(esc(s.slot))
                        .append("\", \"entity\": \"").append(esc(s.entity)).append("\", \"pos\": [")
                        .append(s.begin).append(", ").append(s.end).append("]}");
            }
            b.append("]");
        }
        return b.append("}").toString();
    }
}
