package com.baidu.paddle.lite;

/** Paddle Lite 2.13-rc's public Java API (as in 2.10), signatures only (see stubs/README.md). */
public class ConfigBase {
    protected String modelDir;

    public String getModelDir() {
        throw new UnsupportedOperationException("stub");
    }

    public void setModelDir(String modelDir) {
        throw new UnsupportedOperationException("stub");
    }
}
