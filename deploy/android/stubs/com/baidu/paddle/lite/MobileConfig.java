package com.baidu.paddle.lite;

/** Paddle Lite 2.13-rc's public Java API (as in 2.10), signatures only (see stubs/README.md). */
public class MobileConfig extends ConfigBase {
    public void setPowerMode(PowerMode powerMode) {
        throw new UnsupportedOperationException("stub");
    }

    public PowerMode getPowerMode() {
        throw new UnsupportedOperationException("stub");
    }

    public void setThreads(int threads) {
        throw new UnsupportedOperationException("stub");
    }

    public int getThreads() {
        throw new UnsupportedOperationException("stub");
    }

    public int getPowerModeInt() {
        throw new UnsupportedOperationException("stub");
    }

    public void setModelFromFile(String modelFile) {
        throw new UnsupportedOperationException("stub");
    }

    public String getModelFromFile() {
        throw new UnsupportedOperationException("stub");
    }

    public void setModelFromBuffer(String modelBuffer) {
        throw new UnsupportedOperationException("stub");
    }

    public String getModelFromBuffer() {
        throw new UnsupportedOperationException("stub");
    }
}
