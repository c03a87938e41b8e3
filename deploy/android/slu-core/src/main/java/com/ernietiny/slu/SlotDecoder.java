package com.ernietiny.slu;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Intent and slots from model outputs: the port of core.postprocess, core.SlotDecoder and core.decode_slots.
 * "argmax": each token's best slot label. "constrained": left to right, each token takes its best label among O,
 * B-t for the slot types t of the predicted intent (intent_slot_types; an intent it lacks allows every type, in
 * slot label order) and I-t when the token before is B-t or I-t; a WordPiece continuation ("##...") takes the
 * label of the token before, as I-t (or O); special tokens and padding (offsets end <= start) get PAD (0) and end
 * entities. Of equal logits the first candidate in the order O, B-types, I- wins, as Python's max() keeps.
 */
public final class SlotDecoder {
    public static final String ARGMAX = "argmax";
    public static final String CONSTRAINED = "constrained";
    private static final int PAD = 0;

    private final List<String> intentLabels, slotLabels;
    private final Tokenizer tokenizer;
    private final boolean constrained;
    private final int o;
    private final int[][] begin;  // per intent: O, then the B- labels it allows
    private final int[] inside;   // per label: its type's I- label for a B-/I- label, else -1

    /** Argmax decoding. */
    public SlotDecoder(List<String> intentLabels, List<String> slotLabels) {
        this(ARGMAX, intentLabels, slotLabels, Collections.<String, List<String>>emptyMap(), null);
    }

    /**
     * `tokenizer` tells the WordPiece continuations (constrained). IllegalArgumentException for another mode, and
     * (constrained) slot labels without O, a slot type without both B- and I- labels, or an intentSlotTypes entry
     * naming a slot type the labels lack.
     */
    public SlotDecoder(String mode, List<String> intentLabels, List<String> slotLabels,
                       Map<String, List<String>> intentSlotTypes, Tokenizer tokenizer) {
        if (!mode.equals(ARGMAX) && !mode.equals(CONSTRAINED)) {
            throw new IllegalArgumentException("slot decoding must be " + ARGMAX + " or " + CONSTRAINED + ", not "
                    + mode);
        }
        this.intentLabels = intentLabels;
        this.slotLabels = slotLabels;
        this.tokenizer = tokenizer;
        constrained = mode.equals(CONSTRAINED);
        inside = new int[slotLabels.size()];
        begin = new int[intentLabels.size()][];
        if (!constrained) {
            o = -1;
            return;
        }
        Map<String, Integer> id = new HashMap<>();  // a repeated label keeps its last line, as LabelSet's dict does
        List<String> types = new ArrayList<>();     // LabelSet.slot_types: the B-/I- types in label order
        for (int k = 0; k < slotLabels.size(); k++) {
            String label = slotLabels.get(k);
            id.put(label, k);
            if (isBio(label) && !types.contains(label.substring(2))) types.add(label.substring(2));
        }
        if (!id.containsKey("O")) throw new IllegalArgumentException("constrained slot decoding needs an O slot label");
        o = id.get("O");
        for (String t : types) {
            for (String prefix : new String[] {"B-", "I-"}) {
                if (!id.containsKey(prefix + t)) {
                    throw new IllegalArgumentException("the slot labels have no " + prefix + t + " for slot type " + t);
                }
            }
        }
        for (int k = 0; k < slotLabels.size(); k++) {
            String label = slotLabels.get(k);
            inside[k] = isBio(label) ? id.get("I-" + label.substring(2)) : -1;
        }
        for (int i = 0; i < intentLabels.size(); i++) {
            String intent = intentLabels.get(i);
            List<String> allowed = intentSlotTypes.containsKey(intent) ? intentSlotTypes.get(intent) : types;
            begin[i] = new int[allowed.size() + 1];
            begin[i][0] = o;
            for (int k = 0; k < allowed.size(); k++) {
                Integer b = id.get("B-" + allowed.get(k));
                if (b == null) {
                    throw new IllegalArgumentException("intent_slot_types: intent \"" + intent
                            + "\" allows slot type \"" + allowed.get(k) + "\", which the slot labels lack");
                }
                begin[i][k + 1] = b;
            }
        }
    }

    private static boolean isBio(String label) {
        return label.startsWith("B-") || label.startsWith("I-");
    }

    public boolean constrained() {
        return constrained;
    }

    /** Slot label ids of the tokens `offsets` lists, from `logits` [at least offsets.length * S] row-major. */
    public int[] slotIds(int intent, long[] ids, int[][] offsets, float[] logits) {
        int s = slotLabels.size();
        int[] out = new int[offsets.length];
        if (!constrained) {
            for (int t = 0; t < out.length; t++) {
                int arg = 0;
                for (int k = 1; k < s; k++) if (logits[t * s + k] > logits[t * s + arg]) arg = k;
                out[t] = arg;
            }
            return out;
        }
        int prev = -1;  // the label of the token before; -1 after a special token
        for (int t = 0; t < out.length; t++) {
            if (offsets[t][1] <= offsets[t][0]) {
                out[t] = PAD;
                prev = -1;
                continue;
            }
            int sid;
            if (prev >= 0 && t < ids.length && tokenizer.isContinuation(ids[t])) {
                sid = prev == o ? o : inside[prev];
            } else {  // the first of the highest: O, the B- types, then I- of the token before
                sid = begin[intent][0];
                for (int c = 1; c < begin[intent].length; c++) {
                    if (logits[t * s + begin[intent][c]] > logits[t * s + sid]) sid = begin[intent][c];
                }
                if (prev >= 0 && prev != o && logits[t * s + inside[prev]] > logits[t * s + sid]) sid = inside[prev];
            }
            out[t] = sid;
            prev = sid;
        }
        return out;
    }

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
    public Result decode(int[] query, Tokenizer.Encoding enc, float[] intentLogits, float[] slotLogits) {
        int best = 0;
        for (int k = 1; k < intentLogits.length; k++) if (intentLogits[k] > intentLogits[best]) best = k;
        double z = 0;
        for (float v : intentLogits) z += Math.exp((double) v - intentLogits[best]);
        int[] ids = slotIds(best, enc.ids, enc.offsets, slotLogits);
        return new Result(intentLabels.get(best), 1.0 / z, decodeSlots(query, enc.offsets, ids, slotLabels));
    }
}
