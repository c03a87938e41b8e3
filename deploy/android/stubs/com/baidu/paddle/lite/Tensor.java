package com.baidu.paddle.lite;

/**
 * Paddle Lite 2.10's public Java API, signatures only (see stubs/README.md). 2.10 has no setData(long[]): it
 * came in 2.12 (Paddle-Lite PR 8999).
 */
public class Tensor {
    protected Tensor(long cppTensorPointer, boolean readOnly, PaddlePredictor predictor) {
        throw new UnsupportedOperationException("stub");
    }

    public boolean isReadOnly() {
        throw new UnsupportedOperationException("stub");
    }

    public boolean resize(long[] dims) {
        throw new UnsupportedOperationException("stub");
    }

    public boolean setData(float[] buf) {
        throw new UnsupportedOperationException("stub");
    }

    public boolean setData(byte[] buf) {
        throw new UnsupportedOperationException("stub");
    }

    public boolean setData(int[] buf) {
        throw new UnsupportedOperationException("stub");
    }

    public native long[] shape();

    public native float[] getFloatData();

    public native byte[] getByteData();

    public native int[] getIntData();

    public native long[] getLongData();
}
