package com.baidu.paddle.lite;

/**
 * Paddle Lite 2.13-rc's public Java API (as in 2.10), signatures only (see stubs/README.md). The real class loads
 * libpaddle_lite_jni.so in its static initializer (UnsatisfiedLinkError if it cannot).
 */
public class PaddlePredictor {
    public PaddlePredictor(ConfigBase config) {
        throw new UnsupportedOperationException("stub");
    }

    /** Null if the C++ predictor could not be created. */
    public static PaddlePredictor createPaddlePredictor(ConfigBase config) {
        throw new UnsupportedOperationException("stub");
    }

    /** Null if there is no such input. */
    public Tensor getInput(int offset) {
        throw new UnsupportedOperationException("stub");
    }

    /** Null if there is no such output. */
    public Tensor getOutput(int offset) {
        throw new UnsupportedOperationException("stub");
    }

    public Tensor getTensor(String name) {
        throw new UnsupportedOperationException("stub");
    }

    public native boolean run();

    public native String getVersion();

    public native boolean saveOptimizedModel(String modelDir);

    protected boolean init(ConfigBase config) {
        throw new UnsupportedOperationException("stub");
    }

    protected boolean clear() {
        throw new UnsupportedOperationException("stub");
    }
}
