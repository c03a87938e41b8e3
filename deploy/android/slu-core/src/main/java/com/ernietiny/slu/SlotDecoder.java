package com.ernietiny.slu;

import java.util.ArrayList;
import java.util.List;

/** Intent and slots from model outputs: the port of utils.postprocess / utils.decode_slots. */
public final class SlotDecoder {
    private SlotDecoder() {}

    public static final class Slot {
        public final String slot;
        public final String entity;
        public final int begin;
        public final int end;  // inclusive

        Slot(String slot, String entity, int begin, int end) {
            this.slot = slot;
            this.entity = entity;
            this.begin = begin;
            this.end = end;
        }
    }

    public static final class Result {
        public final String intent;
        public final double confidence;
        public final List<Slot> slots;

        Result(String intent, double confidence, List<Slot> slots) {
            this.intent = intent;
            this.confidence = confidence;
            this.slots = slots;
        }
    }

    /** Entities from per-token label ids and token offsets; `pos` inclusive code-point offsets. */
    public static List<Slot> decodeSlots(int[] query, int[][] offsets, int[] slotIds, List<String> slotLabels) {
        List<int[]> spans = new ArrayList<>();
        List<String> types = new ArrayList<>();
        boolean open = false;
        for (int k = 0; k < offsets.length && k < slotIds.length; k++) {
            int s = offsets[k][0], e = offsets[k][1];
            if (e <= s) {
                open = false;
                continue;
            }
            int sid = slotIds[k];
            String label = sid >= 0 && sid < slotLabels.size() ? slotLabels.get(sid) : "O";
            String prefix = label.length() >= 2 ? label.substring(0, 2) : label;
            String type = label.length() > 2 ? label.substring(2) : "";
            if (prefix.equals("I-") && open && types.get(types.size() - 1).equals(type)) {
                spans.get(spans.size() - 1)[1] = e;
                continue;
            }
            open = false;
            if (prefix.equals("B-") || prefix.equals("I-")) {
                spans.add(new int[] {s, e});
                types.add(type);
                open = true;
            }
        }
        List<Slot> out = new ArrayList<>();
        for (int i = 0; i < spans.size(); i++) {
            int[] sp = spans.get(i);
            out.add(new Slot(types.get(i), new String(query, sp[0], sp[1] - sp[0]), sp[0], sp[1] - 1));
        }
        return out;
    }

    /** intentLogits [I]; slotLogits [T * S] row-major for the encoding's T tokens. */
    public static Result decode(int[] query, Tokenizer.Encoding enc, float[] intentLogits, float[] slotLogits,
                                List<String> intentLabels, List<String> slotLabels) {
        int best = 0;
        for (int k = 1; k < intentLogits.length; k++) if (intentLogits[k] > intentLogits[best]) best = k;
        double z = 0;
        for (float v : intentLogits) z += Math.exp((double) v - intentLogits[best]);
        int s = slotLabels.size();
        int[] ids = new int[enc.ids.length];
        for (int t = 0; t < ids.length; t++) {
            int arg = 0;
            for (int k = 1; k < s; k++) if (slotLogits[t * s + k] > slotLogits[t * s + arg]) arg = k;
            ids[t] = arg;
        }
        return new Result(intentLabels.get(best), 1.0 / z, decodeSlots(query, enc.offsets, ids, slotLabels));
    }
}
