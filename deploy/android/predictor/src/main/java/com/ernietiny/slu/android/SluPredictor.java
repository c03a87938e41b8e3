package com.ernietiny.slu.android;

import android.content.Context;

import com.ernietiny.slu.SlotDecoder;
import com.ernietiny.slu.SluEngine;

import java.io.IOException;
import java.util.List;

/**
 * The compressed SLU model on Paddle Lite. Assets: model.nb (an arm .nb made by the Python deployment) and
 * deploy_config.json with the files it names (vocab and label files), all from one exported directory. Pre- and
 * post-processing are slu-core's {@link SluEngine}; this class only supplies Paddle Lite as its runtime.
 * Not thread-safe: create and call it from one thread.
 */
public final class SluPredictor {
    static final String MODEL = "model.nb";

    private final SluEngine engine;

    /** Max length: the manifest's max_seq_length. */
    public SluPredictor(Context context, int threads) throws IOException {
        this(context, threads, 0);
    }

    /** maxLength 0: the manifest's max_seq_length; above its max_position_embeddings: refused. Throws
     * IOException, IllegalArgumentException (bad assets) or IllegalStateException (Paddle Lite refused the
     * model); UnsatisfiedLinkError if libpaddle_lite_jni.so cannot be loaded. */
    public SluPredictor(Context context, final int threads, int maxLength) throws IOException {
        final AssetCache assets = new AssetCache(context);
        engine = SluEngine.load(assets, maxLength, config -> new LiteRuntime(assets.file(MODEL), threads, config));
        assets.commit();
    }

    public int maxLength() {
        return engine.maxLength();
    }

    /** IllegalArgumentException for an empty query, IllegalStateException when Paddle Lite fails or returns
     * outputs that do not match the label files. */
    public SlotDecoder.Result predict(String query) {
        return engine.predict(query);
    }

    /** With the earlier turns of the dialogue, oldest first: a model exported with context (context_turns > 0
     * in deploy_config.json) encodes them after the query; one without ignores them. */
    public SlotDecoder.Result predict(String query, List<String> context) {
        return engine.predict(query, context);
    }
}
