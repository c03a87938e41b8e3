package com.ernietiny.slu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * deploy_config.json, the manifest of an exported model directory (docs/deploy_config.md): the fields a deployment
 * uses, checked. Errors are one line starting with the file's name.
 */
public final class DeployConfig {
    public static final String FILE = "deploy_config.json";
    public static final String FORMAT = "ernie-tiny-slu/1";

    /** The name errors start with. */
    public final String source;
    public final int maxSeqLength, maxPositionEmbeddings, padTokenId, numIntents, numSlotLabels;
    /** "int32" or "int64": the dtype of the model's input_ids. */
    public final String inputDtype;
    public final String vocabFile, intentLabelFile, slotLabelFile;
    public final boolean doLowerCase;
    /** Dialogue context: a model exported with contextTurns > 0 takes token_type_ids too, and encodes up to
     * contextTurns earlier turns in maxContextLength tokens after the query. 0 and 0 in an older manifest. */
    public final int contextTurns, maxContextLength;
    /** "argmax" (an older manifest's), "constrained" or "crf": see {@link SlotDecoder}. */
    public final String slotDecoding;
    /** intent -> the slot types constrained decoding allows it (an intent it lacks allows every type); read-only,
     * empty in an older manifest. */
    public final Map<String, List<String>> intentSlotTypes;
    /** A CRF slot head's scores (slot_transitions), sized by num_slot_labels; null when the model has none. */
    public final SlotDecoder.CrfScores slotTransitions;

    /** Reads and checks a manifest (closing `in`): IOException if unreadable or not JSON, else
     * IllegalArgumentException if a field is missing or invalid. */
    public static DeployConfig read(InputStream in, String name) throws IOException {
        String text;
        try (InputStream closing = in) {
            text = utf8(closing, name);
        }
        try {
            return new DeployConfig(new Fields(JsonReader.topLevelMembers(text), name));
        } catch (JsonReader.SyntaxError e) {
            throw new IOException(name + ": malformed JSON at character " + e.offset + ": " + e.getMessage());
        }
    }

    private static String utf8(InputStream in, String name) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        for (int n; (n = in.read(buf)) != -1; ) bytes.write(buf, 0, n);
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes.toByteArray())).toString();
        } catch (CharacterCodingException e) {
            throw new IOException(name + ": not UTF-8 text");
        }
    }

    private DeployConfig(Fields f) {
        source = f.name;
        String format = f.string("format");
        if (!format.equals(FORMAT)) throw f.invalid("format", "\"" + FORMAT + "\"");
        maxSeqLength = f.integer("max_seq_length", 1);
        maxPositionEmbeddings = f.integer("max_position_embeddings", 1);
        if (maxSeqLength > maxPositionEmbeddings) {
            throw f.error("max_seq_length " + maxSeqLength + " exceeds max_position_embeddings "
                    + maxPositionEmbeddings);
        }
        inputDtype = f.string("input_dtype");
        if (!inputDtype.equals("int32") && !inputDtype.equals("int64")) {
            throw f.invalid("input_dtype", "int32 or int64");
        }
        vocabFile = f.fileName("vocab_file");
        intentLabelFile = f.fileName("intent_label_file");
        slotLabelFile = f.fileName("slot_label_file");
        doLowerCase = f.bool("do_lower_case");
        padTokenId = f.integer("pad_token_id", 0);
        numIntents = f.integer("num_intents", 1);
        numSlotLabels = f.integer("num_slot_labels", 1);
        // added after the first release (manifest.check_optional): absent, they mean no context and argmax
        contextTurns = f.has("context_turns") ? f.integer("context_turns", 0) : 0;
        maxContextLength = f.has("max_context_length") ? f.integer("max_context_length", 0) : 0;
        if (contextTurns > 0 && maxContextLength < 2) {
            throw f.error("context_turns " + contextTurns + " needs max_context_length >= 2");
        }
        if (contextTurns > 0 && maxSeqLength + maxContextLength > maxPositionEmbeddings) {
            throw f.error("max_seq_length " + maxSeqLength + " + max_context_length " + maxContextLength
                    + " exceed max_position_embeddings " + maxPositionEmbeddings);
        }
        slotDecoding = f.has("slot_decoding") ? f.string("slot_decoding") : SlotDecoder.ARGMAX;
        if (!slotDecoding.equals(SlotDecoder.ARGMAX) && !slotDecoding.equals(SlotDecoder.CONSTRAINED)
                && !slotDecoding.equals(SlotDecoder.CRF)) {
            throw f.invalid("slot_decoding", SlotDecoder.ARGMAX + ", " + SlotDecoder.CONSTRAINED + " or "
                    + SlotDecoder.CRF);
        }
        slotTransitions = f.has("slot_transitions") && f.members.get("slot_transitions") != JsonReader.NULL
                ? f.crfScores("slot_transitions", numSlotLabels) : null;
        if (slotDecoding.equals(SlotDecoder.CRF) && slotTransitions == null) {
            throw f.error("slot_decoding crf needs slot_transitions (a model trained with --use_crf)");
        }
        intentSlotTypes = f.has("intent_slot_types") ? f.typeTable("intent_slot_types")
                : Collections.<String, List<String>>emptyMap();
    }

    public boolean int64Input() {
        return inputDtype.equals("int64");
    }

    /** The max length to serve: max_seq_length when requested <= 0, else `requested` if the model's position
     * embeddings hold it and max_context_length tokens of context (manifest.max_length). */
    public int maxLength(int requested) {
        if (requested <= 0) return maxSeqLength;
        if (requested < 3) {
            throw new IllegalArgumentException(source + ": max length " + requested
                    + " is below 3 ([CLS], one token, [SEP])");
        }
        int room = maxPositionEmbeddings - maxContextLength;
        if (requested > room) {
            throw new IllegalArgumentException(source + ": max length " + requested
                    + (maxContextLength > 0 ? " + max_context_length " + maxContextLength + " exceed" : " exceeds")
                    + " max_position_embeddings " + maxPositionEmbeddings
                    + " (the model has no position beyond it); use at most " + room);
        }
        return requested;
    }

    /** The label files' sizes must equal the model's output sizes. */
    public void checkLabels(int intents, int slotLabels) {
        if (intents != numIntents) throw sizeMismatch("num_intents", numIntents, intentLabelFile, intents);
        if (slotLabels != numSlotLabels) {
            throw sizeMismatch("num_slot_labels", numSlotLabels, slotLabelFile, slotLabels);
        }
    }

    private IllegalArgumentException sizeMismatch(String key, int want, String file, int have) {
        return new IllegalArgumentException(source + ": " + key + " is " + want + " but " + file + " has " + have
                + " labels");
    }

    public void checkPadId(long vocabPadId) {
        if (vocabPadId != padTokenId) {
            throw new IllegalArgumentException(source + ": pad_token_id is " + padTokenId + " but [PAD] is id "
                    + vocabPadId + " in " + vocabFile);
        }
    }

    /** Typed access to the members, with errors naming the file. */
    private static final class Fields {
        final Map<String, Object> members;
        final String name;

        Fields(Map<String, Object> members, String name) {
            this.members = members;
            this.name = name;
        }

        boolean has(String key) {
            return members.containsKey(key);
        }

        /** An object of string arrays. */
        Map<String, List<String>> typeTable(String key) {
            Object v = members.get(key);
            IllegalArgumentException bad = error(key + " must map intents to lists of slot types");
            if (!(v instanceof Map)) throw bad;
            Map<String, List<String>> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!(e.getValue() instanceof List)) throw bad;
                List<String> types = new ArrayList<>();
                for (Object t : (List<?>) e.getValue()) {
                    if (!(t instanceof String)) throw bad;
                    types.add((String) t);
                }
                out.put((String) e.getKey(), Collections.unmodifiableList(types));
            }
            return Collections.unmodifiableMap(out);
        }

        /** {"start": [n], "end": [n], "transitions": [n][n]} of numbers. */
        SlotDecoder.CrfScores crfScores(String key, int n) {
            Object v = members.get(key);
            IllegalArgumentException bad = error(key + " must hold start [" + n + "], end [" + n + "] and transitions ["
                    + n + "][" + n + "] of numbers (the slot labels)");
            if (!(v instanceof Map)) throw bad;
            Map<?, ?> m = (Map<?, ?>) v;
            Object rows = m.get("transitions");
            if (!(rows instanceof List) || ((List<?>) rows).size() != n) throw bad;
            double[][] transitions = new double[n][];
            for (int i = 0; i < n; i++) transitions[i] = numbers(((List<?>) rows).get(i), n, bad);
            return new SlotDecoder.CrfScores(numbers(m.get("start"), n, bad), numbers(m.get("end"), n, bad),
                    transitions);
        }

        private static double[] numbers(Object v, int n, IllegalArgumentException bad) {
            if (!(v instanceof List) || ((List<?>) v).size() != n) throw bad;
            double[] out = new double[n];
            for (int i = 0; i < n; i++) {
                Object x = ((List<?>) v).get(i);
                if (x instanceof Double) out[i] = (Double) x;
                else if (x instanceof BigInteger) out[i] = ((BigInteger) x).doubleValue();
                else throw bad;
                if (Double.isNaN(out[i]) || Double.isInfinite(out[i])) throw bad;
            }
            return out;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException(name + ": " + what);
        }

        IllegalArgumentException invalid(String key, String expected) {
            Object v = members.get(key);
            return error(key + (v == null ? " is missing" : " must be " + expected + ", not " + show(v)));
        }

        String string(String key) {
            Object v = members.get(key);
            if (!(v instanceof String)) throw invalid(key, "a string");
            return (String) v;
        }

        boolean bool(String key) {
            Object v = members.get(key);
            if (!(v instanceof Boolean)) throw invalid(key, "true or false");
            return (Boolean) v;
        }

        int integer(String key, int min) {
            Object v = members.get(key);
            boolean ok = v instanceof BigInteger && ((BigInteger) v).bitLength() < 32
                    && ((BigInteger) v).intValue() >= min;
            if (!ok) throw invalid(key, min == 1 ? "a positive integer" : "an integer >= " + min);
            return ((BigInteger) v).intValue();
        }

        /** A file in the model directory: a bare name, so that it cannot point elsewhere. */
        String fileName(String key) {
            String v = string(key);
            if (v.isEmpty() || v.equals(".") || v.equals("..") || v.contains("/") || v.contains("\\")) {
                throw invalid(key, "a file name in the model directory");
            }
            return v;
        }

        /** A value for a one-line message. */
        static String show(Object v) {
            if (v instanceof List || v instanceof Map) return "an array or object";
            if (v == JsonReader.NULL) return "null";
            if (!(v instanceof String)) return v.toString();
            StringBuilder b = new StringBuilder("\"");
            for (char c : ((String) v).toCharArray()) {
                if (c < 0x20 || c == '"' || c == '\\') b.append(String.format("\\u%04x", (int) c));
                else b.append(c);
            }
            return b.append('"').toString();
        }
    }
}
