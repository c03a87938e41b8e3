package com.baidu.paddle.lite;

/**
 * Paddle Lite 2.13-rc's public Java API, signatures only (see stubs/README.md). setData(long[]) came in 2.12
 * (Paddle-Lite PR 8999), but up to v2.13-rc its native function is exported under a wrong JNI name
 * (nativeSetData___3L, not ___3J; fixed by PR 10457, 2024, after v2.13-rc), so calling it throws
 * UnsatisfiedLinkError: the project never calls it (tests/test_deploy_android.py checks).
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

    /** Declared since 2.12; unusable in v2.13-rc's library (see above). */
    public boolean setData(long[] buf) {
        throw new UnsupportedOperationException("stub");
    }

    public native long[] shape();

    public native float[] getFloatData();

    public native byte[] getByteData();

    public native int[] getIntData();

    public native long[] getLongData();
}
