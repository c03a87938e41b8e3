package com.ernietiny.slu.android;

import com.baidu.paddle.lite.MobileConfig;
import com.baidu.paddle.lite.PaddlePredictor;
import com.baidu.paddle.lite.PowerMode;
import com.baidu.paddle.lite.Tensor;
import com.ernietiny.slu.DeployConfig;
import com.ernietiny.slu.SluEngine;

import java.io.File;

/** Paddle Lite 2.10's Java API as a {@link SluEngine.Runtime}, every status checked. */
final class LiteRuntime implements SluEngine.Runtime {
    private final PaddlePredictor predictor;
    private final String model;

    LiteRuntime(File model, int threads, DeployConfig config) {
        this.model = model.getName();
        if (config.int64Input()) {
            // Tensor.setData(long[]) came in Paddle Lite 2.12
            throw new IllegalArgumentException(config.source + ": input_dtype is int64, but Paddle Lite 2.10's "
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
    public SluEngine.Output[] run(long[] ids) {
        Tensor input = predictor.getInput(0);
        if (input == null) throw failure("has no input 0");
        if (!input.resize(new long[] {1, ids.length})) throw failure("refused input shape [1, " + ids.length + "]");
        int[] data = new int[ids.length];
        for (int i = 0; i < ids.length; i++) data[i] = (int) ids[i];
        if (!input.setData(data)) throw failure("refused the input ids");
        if (!predictor.run()) throw failure("failed to run (see logcat)");
        return new SluEngine.Output[] {output(0), output(1)};
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
