package com.baidu.paddle.lite;

/** Paddle Lite 2.10's public Java API, signatures only (see stubs/README.md). */
public class ConfigBase {
    protected String modelDir;

    public String getModelDir() {
        throw new UnsupportedOperationException("stub");
    }

    public void setModelDir(String modelDir) {
        throw new UnsupportedOperationException("stub");
    }
}
