package com.ernietiny.slu.android;

import android.content.Context;

import com.baidu.paddle.lite.MobileConfig;
import com.baidu.paddle.lite.PaddlePredictor;
import com.baidu.paddle.lite.PowerMode;
import com.baidu.paddle.lite.Tensor;
import com.ernietiny.slu.Labels;
import com.ernietiny.slu.SlotDecoder;
import com.ernietiny.slu.Tokenizer;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Properties;

/**
 * Paddle Lite predictor for the compressed SLU model. Assets (copied to the app's files dir at first start):
 * model.nb (an arm .nb from the Python deployment), vocab.txt, intent_label.txt, slot_label.txt and
 * model.properties with input_dtype=int32|int64, the dtype the .nb's input_ids takes (upstream issue 6549 was a
 * mismatch here).
 */
public final class SluPredictor {
    private static final String[] ASSETS = {"model.nb", "vocab.txt", "intent_label.txt", "slot_label.txt",
            "model.properties"};
    private final PaddlePredictor predictor;
    private final Tokenizer tokenizer;
    private final List<String> intents, slots;
    private final boolean int64Input;
    private final int maxLength;

    public SluPredictor(Context context, int threads, int maxLength) throws IOException {
        File dir = new File(context.getFilesDir(), "slu");
        if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
        for (String name : ASSETS) copyAsset(context, name, new File(dir, name));
        Properties meta = new Properties();
        try (InputStream in = new FileInputStream(new File(dir, "model.properties"))) {
            meta.load(in);
        }
        String dtype = meta.getProperty("input_dtype", "");
        if (!dtype.equals("int32") && !dtype.equals("int64")) {
            throw new IOException("model.properties: input_dtype must be int32 or int64, not '" + dtype + "'");
        }
        int64Input = dtype.equals("int64");
        tokenizer = new Tokenizer(new FileInputStream(new File(dir, "vocab.txt")), "vocab.txt", true);
        intents = Labels.read(new FileInputStream(new File(dir, "intent_label.txt")), "intent_label.txt");
        slots = Labels.read(new FileInputStream(new File(dir, "slot_label.txt")), "slot_label.txt");
        MobileConfig config = new MobileConfig();
        config.setModelFromFile(new File(dir, "model.nb").getAbsolutePath());
        config.setThreads(threads);
        config.setPowerMode(PowerMode.LITE_POWER_HIGH);
        predictor = PaddlePredictor.createPaddlePredictor(config);
        this.maxLength = maxLength;
    }

    private static void copyAsset(Context context, String name, File dest) throws IOException {
        if (dest.exists()) return;
        try (InputStream in = context.getAssets().open(name); OutputStream out = new FileOutputStream(dest)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) out.write(buf, 0, n);
        }
    }

    public SlotDecoder.Result predict(String query) {
        if (query == null || query.trim().isEmpty()) throw new IllegalArgumentException("empty query");
        int[] cps = query.codePoints().toArray();
        Tokenizer.Encoding enc = tokenizer.encode(cps, maxLength);
        Tensor input = predictor.getInput(0);
        input.resize(new long[] {1, enc.ids.length});
        if (int64Input) {
            input.setData(enc.ids);
        } else {
            int[] ids = new int[enc.ids.length];
            for (int i = 0; i < ids.length; i++) ids[i] = (int) enc.ids[i];
            input.setData(ids);
        }
        predictor.run();
        float[] intentLogits = predictor.getOutput(0).getFloatData();
        float[] slotLogits = predictor.getOutput(1).getFloatData();
        return SlotDecoder.decode(cps, enc, intentLogits, slotLogits, intents, slots);
    }
}
