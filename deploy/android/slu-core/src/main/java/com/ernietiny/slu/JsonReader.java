package com.ernietiny.slu;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict JSON (RFC 8259) reader of a top-level object. No third-party library, no Android dependency.
 */
final class JsonReader {
    /** JSON null. */
    static final Object NULL = new Object();
    private static final int MAX_DEPTH = 512;
    private static final int END = -1;

    /** Malformed text; `offset` counts code points, as Python's JSONDecodeError.pos does. */
    static final class SyntaxError extends Exception {
        private static final long serialVersionUID = 1L;
        final int offset;

        SyntaxError(String what, int offset) {
            super(what);
            this.offset = offset;
        }
    }

    private final String s;
    private int pos;

    private JsonReader(String s) {
        this.s = s;
    }

    /**
     * The top-level object's members: String, Boolean, BigInteger (a literal without fraction or exponent),
     * Double (other numbers), NULL, List (an array) or Map (an object, in key order). A repeated key keeps its last
     * value, as Python's json does.
     */
    static Map<String, Object> topLevelMembers(String text) throws SyntaxError {
        JsonReader r = new JsonReader(text);
        if (r.next() != '{') throw r.error("expected a JSON object");
        Map<String, Object> members = new LinkedHashMap<>();
        r.object(members, 1);
        if (r.next() != END) throw r.error("extra data after the object");
        return members;
    }

    private SyntaxError error(String what) {
        return new SyntaxError(what, s.codePointCount(0, Math.min(pos, s.length())));
    }

    /** Skips whitespace; the next character, or END. */
    private int next() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c;
            pos++;
        }
        return END;
    }

    private int peek() {
        return pos < s.length() ? s.charAt(pos) : END;
    }

    /** At '{'; the members go to `out`. */
    private void object(Map<String, Object> out, int depth) throws SyntaxError {
        pos++;
        if (next() == '}') {
            pos++;
            return;
        }
        while (true) {
            if (next() != '"') throw error("expected a string key");
            String key = string();
            if (next() != ':') throw error("expected ':'");
            pos++;
            out.put(key, value(depth));
            if (!separator('}')) return;
        }
    }

    /** At '['; the elements go to `out`. */
    private void array(List<Object> out, int depth) throws SyntaxError {
        pos++;
        if (next() == ']') {
            pos++;
            return;
        }
        do {
            out.add(value(depth));
        } while (separator(']'));
    }

    /** After a member or element: true at ',' (more follow), false at `close`. */
    private boolean separator(char close) throws SyntaxError {
        int c = next();
        if (c != ',' && c != close) throw error("expected ',' or '" + close + "'");
        pos++;
        return c == ',';
    }

    private Object value(int depth) throws SyntaxError {
        int c = next();
        if ((c == '{' || c == '[') && depth >= MAX_DEPTH) throw error("nested deeper than " + MAX_DEPTH);
        switch (c) {
            case '{': {
                Map<String, Object> members = new LinkedHashMap<>();
                object(members, depth + 1);
                return members;
            }
            case '[': {
                List<Object> items = new ArrayList<>();
                array(items, depth + 1);
                return items;
            }
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", NULL);
            default:
                return number();
        }
    }

    private Object literal(String word, Object value) throws SyntaxError {
        if (!s.startsWith(word, pos)) throw error("expected a value");
        pos += word.length();
        return value;
    }

    private Object number() throws SyntaxError {
        int start = pos;
        if (peek() == '-') pos++;
        if (peek() == '0') {
            pos++;
        } else if (!digits()) {
            pos = start;
            throw error("expected a value");
        }
        boolean integer = true;
        if (peek() == '.') {
            pos++;
            integer = false;
            if (!digits()) throw error("expected a digit");
        }
        if (peek() == 'e' || peek() == 'E') {
            pos++;
            integer = false;
            if (peek() == '+' || peek() == '-') pos++;
            if (!digits()) throw error("expected a digit");
        }
        String text = s.substring(start, pos);
        return integer ? new BigInteger(text) : Double.valueOf(text);
    }

    private boolean digits() {
        int start = pos;
        while (peek() >= '0' && peek() <= '9') pos++;
        return pos > start;
    }

    /** At '"'. */
    private String string() throws SyntaxError {
        int open = pos++;
        StringBuilder b = new StringBuilder();
        while (true) {
            int c = peek();
            if (c == END) {
                pos = open;
                throw error("unterminated string");
            }
            if (c < 0x20) throw error("control character in a string");
            pos++;
            if (c == '"') return b.toString();
            b.append(c == '\\' ? escape() : (char) c);
        }
    }

    /**
     * After a backslash. A \\uXXXX escape is one UTF-16 unit, so a surrogate pair (two escapes) joins into one
     * code point in the Java string by itself.
     */
    private char escape() throws SyntaxError {
        int c = peek();
        pos++;
        switch (c) {
            case '"': case '\\': case '/':
                return (char) c;
            case 'b':
                return '\b';
            case 'f':
                return '\f';
            case 'n':
                return '\n';
            case 'r':
                return '\r';
            case 't':
                return '\t';
            case 'u':
                return hex4();
            default:
                pos -= 2;
                throw error("invalid escape");
        }
    }

    private char hex4() throws SyntaxError {
        int v = 0;
        for (int i = 0; i < 4; i++) {
            int d = hexDigit(peek());
            if (d < 0) throw error("invalid \\u escape");
            v = v * 16 + d;
            pos++;
        }
        return (char) v;
    }

    private static int hexDigit(int c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
}
