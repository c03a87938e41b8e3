package com.ernietiny.slu.android;

import com.baidu.paddle.lite.MobileConfig;
import com.baidu.paddle.lite.PaddlePredictor;
import com.baidu.paddle.lite.PowerMode;
import com.baidu.paddle.lite.Tensor;
import com.ernietiny.slu.DeployConfig;
import com.ernietiny.slu.SluEngine;

import java.io.File;

/** Paddle Lite 2.13-rc's Java API as a {@link SluEngine.Runtime}, every status checked. */
final class LiteRuntime implements SluEngine.Runtime {
    private final PaddlePredictor predictor;
    private final String model;

    LiteRuntime(File model, int threads, DeployConfig config) {
        this.model = model.getName();
        if (config.int64Input()) {
            // Tensor.setData(long[]) is declared since Paddle Lite 2.12, but v2.13-rc's libpaddle_lite_jni.so
            // exports its native half under a wrong JNI name (nativeSetData___3L): a call throws
            // UnsatisfiedLinkError (stubs/README.md)
            throw new IllegalArgumentException(config.source + ": input_dtype is int64, but Paddle Lite 2.13-rc's "
                    + "Java API can only set int32 data: export the model with --input_dtype int32");
        }
        MobileConfig lite = new MobileConfig();
        lite.setModelFromFile(model.getAbsolutePath());
        lite.setThreads(threads);
        lite.setPowerMode(PowerMode.LITE_POWER_HIGH);
        predictor = PaddlePredictor.createPaddlePredictor(lite);
        if (predictor == null) {
            throw new IllegalStateException("Paddle Lite could not load " + this.model + ": it must be an arm .nb "
                    + "written by the same Paddle Lite version as the app's library (see logcat)");
        }
    }

    @Override
    public SluEngine.Output[] run(long[] ids, long[] tokenTypeIds) {
        setInput(0, ids, "input ids");
        if (tokenTypeIds != null) setInput(1, tokenTypeIds, "token type ids");  // a model with context
        if (!predictor.run()) throw failure("failed to run (see logcat)");
        return new SluEngine.Output[] {output(0), output(1)};
    }

    private void setInput(int i, long[] values, String what) {
        Tensor input = predictor.getInput(i);
        if (input == null) throw failure("has no input " + i + " (" + what + ")");
        if (!input.resize(new long[] {1, values.length})) {
            throw failure("refused input " + i + " shape [1, " + values.length + "]");
        }
        int[] data = new int[values.length];
        for (int k = 0; k < values.length; k++) data[k] = (int) values[k];
        if (!input.setData(data)) throw failure("refused the " + what);
    }

    private SluEngine.Output output(int i) {
        Tensor t = predictor.getOutput(i);
        if (t == null) throw failure("has no output " + i);
        return new SluEngine.Output(t.getFloatData(), t.shape());
    }

    private IllegalStateException failure(String what) {
        return new IllegalStateException("Paddle Lite: " + model + " " + what);
    }
}
