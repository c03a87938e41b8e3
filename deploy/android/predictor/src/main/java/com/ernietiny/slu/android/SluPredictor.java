package com.ernietiny.slu.android;

import android.content.Context;

import com.baidu.paddle.lite.MobileConfig;
import com.baidu.paddle.lite.PaddlePredictor;
import com.baidu.paddle.lite.PowerMode;
import com.baidu.paddle.lite.Tensor;
import com.ernietiny.slu.DeployConfig;
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

/**
 * Paddle Lite predictor for the compressed SLU model. Assets (copied to the app's files dir at first start):
 * model.nb (an arm .nb from the Python deployment) and deploy_config.json with the files it names (vocab and
 * label files), all from the exported directory. The manifest gives the dtype of input_ids (upstream issue 6549
 * was a mismatch there), lower-casing, the default max length and the model's output sizes.
 */
public final class SluPredictor {
    private final PaddlePredictor predictor;
    private final DeployConfig config;
    private final Tokenizer tokenizer;
    private final List<String> intents, slots;
    private final int maxLength;

    /** Max length: the manifest's max_seq_length. */
    public SluPredictor(Context context, int threads) throws IOException {
        this(context, threads, 0);
    }

    /** maxLength 0: the manifest's max_seq_length; above its max_position_embeddings: refused. */
    public SluPredictor(Context context, int threads, int maxLength) throws IOException {
        File dir = new File(context.getFilesDir(), "slu");
        if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
        config = DeployConfig.read(new FileInputStream(asset(context, dir, DeployConfig.FILE)), DeployConfig.FILE);
        this.maxLength = config.maxLength(maxLength);
        tokenizer = new Tokenizer(new FileInputStream(asset(context, dir, config.vocabFile)), config.vocabFile,
                config.doLowerCase);
        config.checkPadId(tokenizer.padId());
        intents = Labels.read(new FileInputStream(asset(context, dir, config.intentLabelFile)),
                config.intentLabelFile);
        slots = Labels.read(new FileInputStream(asset(context, dir, config.slotLabelFile)), config.slotLabelFile);
        config.checkLabels(intents.size(), slots.size());
        MobileConfig lite = new MobileConfig();
        lite.setModelFromFile(asset(context, dir, "model.nb").getAbsolutePath());
        lite.setThreads(threads);
        lite.setPowerMode(PowerMode.LITE_POWER_HIGH);
        predictor = PaddlePredictor.createPaddlePredictor(lite);
    }

    /** The asset `name` in `dir`, copied there if absent. */
    private static File asset(Context context, File dir, String name) throws IOException {
        File dest = new File(dir, name);
        if (dest.exists()) return dest;
        try (InputStream in = context.getAssets().open(name); OutputStream out = new FileOutputStream(dest)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) out.write(buf, 0, n);
        }
        return dest;
    }

    public int maxLength() {
        return maxLength;
    }

    public SlotDecoder.Result predict(String query) {
        if (query == null || query.trim().isEmpty()) throw new IllegalArgumentException("empty query");
        int[] cps = query.codePoints().toArray();
        Tokenizer.Encoding enc = tokenizer.encode(cps, maxLength);
        Tensor input = predictor.getInput(0);
        input.resize(new long[] {1, enc.ids.length});
        if (config.int64Input()) {
            input.setData(enc.ids);
        } else {
            int[] ids = new int[enc.ids.length];
            for (int i = 0; i < ids.length; i++) ids[i] = (int) enc.ids[i];
            input.setData(ids);
        }
        predictor.run();
        float[] intentLogits = predictor.getOutput(0).getFloatData();
        float[] slotLogits = predictor.getOutput(1).getFloatData();
        if (intentLogits.length != intents.size() || slotLogits.length != enc.ids.length * slots.size()) {
            throw new IllegalStateException("model.nb outputs " + intentLogits.length + " intent and "
                    + slotLogits.length + " slot logits for " + enc.ids.length + " tokens; " + DeployConfig.FILE
                    + " says num_intents " + intents.size() + ", num_slot_labels " + slots.size());
        }
        return SlotDecoder.decode(cps, enc, intentLogits, slotLogits, intents, slots);
    }
}
