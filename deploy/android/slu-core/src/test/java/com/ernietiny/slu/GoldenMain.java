package com.ernietiny.slu;

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Golden check driver (JDK only). Usage: GoldenMain vocab.txt intent_label.txt slot_label.txt cases.tsv [maxLength]
 * Each case line: query TAB intent logits (space separated) TAB slot logits for T x S (space separated, T = the
 * Python tokenizer's length). Prints one JSON line per case: query, ids, intent, confidence, slots.
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
        Tokenizer tok = new Tokenizer(new FileInputStream(args[0]), args[0], true);
        List<String> intents = Labels.read(new FileInputStream(args[1]), args[1]);
        List<String> slots = Labels.read(new FileInputStream(args[2]), args[2]);
        int maxLength = args.length > 4 ? Integer.parseInt(args[4]) : 16;
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new FileInputStream(args[3]),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                String[] cols = line.split("\t", -1);
                int[] query = cols[0].codePoints().toArray();
                Tokenizer.Encoding enc = tok.encode(query, maxLength);
                StringBuilder b = new StringBuilder("{\"query\": \"" + esc(cols[0]) + "\", \"ids\": [");
                for (int i = 0; i < enc.ids.length; i++) b.append(i > 0 ? ", " : "").append(enc.ids[i]);
                b.append("], \"truncated\": ").append(enc.truncated);
                if (cols.length == 3) {
                    SlotDecoder.Result res = SlotDecoder.decode(query, enc, floats(cols[1]), floats(cols[2]),
                            intents, slots);
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
                out.println(b.append("}"));
            }
        }
    }
}
