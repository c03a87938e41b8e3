package com.ernietiny.slu;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Intent and slots from model outputs: the port of decoding.postprocess, decoding.SlotDecoder and decoding.decode_slots.
 * "argmax": each token's best slot label. "constrained": left to right, each token takes its best label among O,
 * B-t for the slot types t of the predicted intent (intent_slot_types; an intent it lacks allows every type, in
 * slot label order) and I-t when the token before is B-t or I-t; a WordPiece continuation ("##...") takes the
 * label of the token before, as I-t (or O); special tokens and padding (offsets end <= start) get PAD (0) and end
 * entities. Of equal logits the first candidate in the order O, B-types, I- wins, as Python's max() keeps.
 * "crf": decoding.constrained_viterbi on each run of query tokens: the best label sequence under a CRF slot head's
 * scores among those the same constraints allow, in double precision, ties to the first candidate in the order O,
 * then B-t, I-t for each allowed type (numpy's argmax).
 */
public final class SlotDecoder {
    public static final String ARGMAX = "argmax";
    public static final String CONSTRAINED = "constrained";
    public static final String CRF = "crf";
    private static final int PAD = 0;

    private final List<String> intentLabels, slotLabels;
    private final Tokenizer tokenizer;
    private final boolean constrained;
    private final CrfScores crf;   // crf mode's scores, else null
    private final int[][] candidates;  // per intent: O, then B-t, I-t for each type it allows
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
        this(mode, intentLabels, slotLabels, intentSlotTypes, tokenizer, null);
    }

    /** As above; mode "crf" needs `crf`, the scores of a model trained with --use_crf, sized by the slot labels. */
    public SlotDecoder(String mode, List<String> intentLabels, List<String> slotLabels,
                       Map<String, List<String>> intentSlotTypes, Tokenizer tokenizer, CrfScores crf) {
        if (!mode.equals(ARGMAX) && !mode.equals(CONSTRAINED) && !mode.equals(CRF)) {
            throw new IllegalArgumentException("slot decoding must be " + ARGMAX + ", " + CONSTRAINED + " or " + CRF
                    + ", not " + mode);
        }
        int s = slotLabels.size();
        if (mode.equals(CRF) && crf == null) {
            throw new IllegalArgumentException("slot decoding crf needs the CRF transition scores of a model trained "
                    + "with --use_crf");
        }
        if (mode.equals(CRF) && (crf.start.length != s || crf.end.length != s || crf.transitions.length != s
                || !allRows(crf.transitions, s))) {
            throw new IllegalArgumentException("slot_transitions must hold start [" + s + "], end [" + s
                    + "] and transitions [" + s + "][" + s + "] (the slot labels)");
        }
        this.intentLabels = intentLabels;
        this.slotLabels = slotLabels;
        this.tokenizer = tokenizer;
        this.crf = mode.equals(CRF) ? crf : null;
        constrained = !mode.equals(ARGMAX);
        inside = new int[slotLabels.size()];
        begin = new int[intentLabels.size()][];
        candidates = new int[intentLabels.size()][];
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
            candidates[i] = new int[2 * allowed.size() + 1];
            candidates[i][0] = o;
            for (int k = 0; k < allowed.size(); k++) {
                Integer b = id.get("B-" + allowed.get(k));
                if (b == null) {
                    throw new IllegalArgumentException("intent_slot_types: intent \"" + intent
                            + "\" allows slot type \"" + allowed.get(k) + "\", which the slot labels lack");
                }
                begin[i][k + 1] = b;
                candidates[i][2 * k + 1] = b;
                candidates[i][2 * k + 2] = inside[b];
            }
        }
    }

    private static boolean allRows(double[][] rows, int n) {
        for (double[] row : rows) if (row == null || row.length != n) return false;
        return true;
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
        if (crf != null) {
            for (int t = 0; t < out.length; ) {  // PAD (0) stays on special tokens and padding
                if (offsets[t][1] <= offsets[t][0]) {
                    t++;
                    continue;
                }
                int end = t;
                while (end < out.length && offsets[end][1] > offsets[end][0]) end++;
                viterbi(intent, ids, t, end, logits, out);
                t = end;
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

    private void viterbi(int intent, long[] ids, int from, int to, float[] logits, int[] out) {
        int[] cand = candidates[intent];
        int c = cand.length, s = slotLabels.size();
        boolean[] in = new boolean[c];
        for (int j = 0; j < c; j++) in[j] = cand[j] != o && inside[cand[j]] == cand[j];
        double[] score = new double[c], next = new double[c];
        for (int j = 0; j < c; j++) {
            score[j] = in[j] ? Double.NEGATIVE_INFINITY : crf.start[cand[j]] + (double) logits[from * s + cand[j]];
        }
        int[][] back = new int[to - from][c];
        for (int k = from + 1; k < to; k++) {
            boolean continuing = k < ids.length && tokenizer.isContinuation(ids[k]);
            for (int j = 0; j < c; j++) {
                double best = Double.NEGATIVE_INFINITY;
                int arg = 0;
                for (int i = 0; i < c; i++) {
                    // I-t only after B-t or I-t; a continuation piece: O only after O, never B-t
                    boolean ok = !(in[j] && inside[cand[i]] != cand[j])
                            && (!continuing || in[j] || (i == 0 && j == 0));
                    double v = ok ? score[i] + crf.transitions[cand[i]][cand[j]] : Double.NEGATIVE_INFINITY;
                    if (v > best) {
                        best = v;
                        arg = i;
                    }
                }
                back[k - from][j] = arg;
                next[j] = best + (double) logits[k * s + cand[j]];
            }
            double[] swap = score;
            score = next;
            next = swap;
        }
        int last = 0;
        double best = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < c; j++) {
            double v = score[j] + crf.end[cand[j]];
            if (v > best) {
                best = v;
                last = j;
            }
        }
        for (int k = to - 1; k >= from; k--) {
            out[k] = cand[last];
            if (k > from) last = back[k - from][last];
        }
    }

    /** A CRF slot head's scores over the slot labels (deploy_config.json's slot_transitions; row = previous). */
    public static final class CrfScores {
        public final double[] start, end;
        public final double[][] transitions;

        public CrfScores(double[] start, double[] end, double[][] transitions) {
            this.start = start;
            this.end = end;
            this.transitions = transitions;
        }
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
