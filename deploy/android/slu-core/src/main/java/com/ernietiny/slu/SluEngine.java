package com.ernietiny.slu;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A query (with the earlier turns of its dialogue, for a model with context) in, intent and slots out: tokenizer
 * and context encoding, model run through a {@link Runtime}, output checks and slot decoding (argmax or
 * constrained, as the manifest says). The Android predictor only adapts Paddle Lite to {@link Runtime}; the JDK
 * tests pass a fake one.
 */
public final class SluEngine {
    /** Opens a file of the model directory by name: deploy_config.json and the files it names. */
    public interface Files {
        InputStream open(String name) throws IOException;
    }

    /** The model: input_ids of shape [1, ids.length] in, and for a model with context (context_turns > 0)
     * token_type_ids of the same shape (null otherwise); intent logits [1, I] and slot logits [1, T, S] out. */
    public interface Runtime {
        Output[] run(long[] ids, long[] tokenTypeIds);
    }

    /** Makes the runtime once the manifest is read (it gives the input dtype). */
    public interface RuntimeFactory {
        Runtime create(DeployConfig config) throws IOException;
    }

    /** One output tensor: row-major data and its shape. */
    public static final class Output {
        public final float[] data;
        public final long[] shape;

        public Output(float[] data, long[] shape) {
            this.data = data;
            this.shape = shape;
        }
    }

    private final Tokenizer tokenizer;
    private final List<String> intents, slots;
    private final int maxLength, contextTurns, maxContextLength;
    private final SlotDecoder decoder;
    private final Runtime runtime;

    /** A model without context, argmax slot decoding. */
    public SluEngine(Tokenizer tokenizer, List<String> intents, List<String> slots, int maxLength, Runtime runtime) {
        this(tokenizer, intents, slots, maxLength, 0, 0, new SlotDecoder(intents, slots), runtime);
    }

    /** contextTurns > 0: a model with context, whose runtime takes token_type_ids too. */
    public SluEngine(Tokenizer tokenizer, List<String> intents, List<String> slots, int maxLength, int contextTurns,
                     int maxContextLength, SlotDecoder decoder, Runtime runtime) {
        this.tokenizer = tokenizer;
        this.intents = intents;
        this.slots = slots;
        this.maxLength = maxLength;
        this.contextTurns = contextTurns;
        this.maxContextLength = maxContextLength;
        this.decoder = decoder;
        this.runtime = runtime;
    }

    /** Reads deploy_config.json, the vocab and the label files, checks them against each other, then makes the
     * runtime. maxLength 0: the manifest's max_seq_length. Context and slot decoding: the manifest's. */
    public static SluEngine load(Files files, int maxLength, RuntimeFactory factory) throws IOException {
        DeployConfig config = DeployConfig.read(files.open(DeployConfig.FILE), DeployConfig.FILE);
        int length = config.maxLength(maxLength);
        Tokenizer tokenizer = new Tokenizer(files.open(config.vocabFile), config.vocabFile, config.doLowerCase);
        config.checkPadId(tokenizer.padId());
        List<String> intents = Labels.read(files.open(config.intentLabelFile), config.intentLabelFile);
        List<String> slots = Labels.read(files.open(config.slotLabelFile), config.slotLabelFile);
        config.checkLabels(intents.size(), slots.size());
        SlotDecoder decoder;
        try {
            decoder = new SlotDecoder(config.slotDecoding, intents, slots, config.intentSlotTypes, tokenizer,
                    config.slotTransitions);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(config.source + ": " + e.getMessage());
        }
        return new SluEngine(tokenizer, intents, slots, length, config.contextTurns, config.maxContextLength, decoder,
                factory.create(config));
    }

    public int maxLength() {
        return maxLength;
    }

    /** 0 for a model without context, which ignores any context it is given. */
    public int contextTurns() {
        return contextTurns;
    }

    public Tokenizer.Encoding encode(String query) {
        return encode(query, Collections.<String>emptyList());
    }

    /** The query's encoding, with `context` (the earlier turns, oldest first) for a model with context. */
    public Tokenizer.Encoding encode(String query, List<String> context) {
        Tokenizer.Encoding enc = tokenizer.encode(Tokenizer.codePoints(query), maxLength);
        if (contextTurns <= 0) return enc;
        List<int[]> turns = new ArrayList<>();
        for (String turn : context) turns.add(Tokenizer.codePoints(turn));
        return tokenizer.withContext(enc, turns, contextTurns, maxContextLength);
    }

    /** A query without context. */
    public SlotDecoder.Result predict(String query) {
        return predict(query, Collections.<String>emptyList());
    }

    /** `context`: the earlier turns of the dialogue, oldest first (used by a model with context, ignored by one
     * without). IllegalArgumentException for an empty query or context turn; IllegalStateException when the
     * model's outputs do not match the label files. */
    public SlotDecoder.Result predict(String query, List<String> context) {
        if (query == null || query.trim().isEmpty()) throw new IllegalArgumentException("empty query");
        for (int k = 0; k < context.size(); k++) {
            String turn = context.get(k);
            if (turn == null || turn.trim().isEmpty()) throw new IllegalArgumentException("empty context turn " + k);
        }
        int[] cps = Tokenizer.codePoints(query);
        Tokenizer.Encoding enc = encode(query, context);
        Output[] out = runtime.run(enc.ids, contextTurns > 0 ? enc.tokenTypeIds : null);
        if (out == null || out.length != 2) {
            throw new IllegalStateException("the model returned " + (out == null ? "no" : out.length)
                    + " outputs, expected 2 (intent and slot logits)");
        }
        int t = enc.ids.length;
        check(out[0], "intent", new long[] {1, intents.size()}, "num_intents " + intents.size());
        check(out[1], "slot", new long[] {1, t, slots.size()}, t + " tokens, num_slot_labels " + slots.size());
        return decoder.decode(cps, enc, out[0].data, out[1].data);
    }

    private static void check(Output out, String what, long[] shape, String why) {
        if (out != null && out.data != null && out.shape != null && Arrays.equals(out.shape, shape)
                && out.data.length == product(shape)) {
            return;
        }
        String got = out == null ? "no output" : "shape " + (out.shape == null ? "null" : Arrays.toString(out.shape))
                + " with " + (out.data == null ? "no" : String.valueOf(out.data.length)) + " values";
        throw new IllegalStateException("the model's " + what + " logits: " + got + "; expected "
                + Arrays.toString(shape) + " (" + why + " in " + DeployConfig.FILE + ")");
    }

    private static long product(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }
}
