package com.ernietiny.slu;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** A label file: one label per line, id = line index (intent_label.txt, slot_label.txt). */
public final class Labels {
    private Labels() {}

    public static List<String> read(InputStream in, String name) throws IOException {
        List<String> out = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                line = line.trim();
                if (!line.isEmpty()) out.add(line);
            }
        }
        if (out.isEmpty()) throw new IllegalArgumentException(name + ": no labels");
        return out;
    }
}
