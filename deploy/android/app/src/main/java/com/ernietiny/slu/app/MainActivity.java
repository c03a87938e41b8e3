package com.ernietiny.slu.app;

import android.app.Activity;
import android.os.Bundle;
import android.os.SystemClock;
import android.util.Log;
import android.widget.Button;
import android.widget.EditText;
import android.widget.TextView;

import com.ernietiny.slu.SlotDecoder;
import com.ernietiny.slu.android.SluPredictor;

import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Type a query, see intent, confidence and slots (Paddle Lite on the phone, one thread, the max length of the
 * model's deploy_config.json). Whatever loading or running throws, Errors included (a missing native library is
 * an UnsatisfiedLinkError), is shown instead of closing the app.
 */
public class MainActivity extends Activity {
    private static final String TAG = "ErnieTinySLU";
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private SluPredictor predictor;  // created and used on the worker thread only

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        setContentView(R.layout.activity_main);
        final EditText query = findViewById(R.id.query);
        final Button run = findViewById(R.id.run);
        final TextView result = findViewById(R.id.result);
        run.setEnabled(false);
        result.setText(R.string.loading);
        worker.execute(() -> {
            String failure = load();
            runOnUiThread(() -> {
                result.setText(failure == null ? "" : failure);
                run.setEnabled(failure == null);
            });
        });
        run.setOnClickListener(v -> {
            String text = query.getText().toString();
            worker.execute(() -> show(result, understand(text)));
        });
    }

    /** On the worker: null once the model is loaded, else why not. */
    private String load() {
        try {
            predictor = new SluPredictor(getApplicationContext(), 1);
            return null;
        } catch (Throwable t) {
            Log.e(TAG, "model failed to load", t);
            return "model failed to load: " + describe(t);
        }
    }

    /** On the worker: the result for `text`, or the error. */
    private String understand(String text) {
        try {
            long t0 = SystemClock.elapsedRealtimeNanos();
            SlotDecoder.Result r = predictor.predict(text);
            double ms = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6;
            StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "intent: %s (%.3f)\n", r.intent,
                    r.confidence));
            for (SlotDecoder.Slot s : r.slots) {
                b.append(String.format(Locale.ROOT, "%s = %s  [%d, %d]\n", s.slot, s.entity, s.begin, s.end));
            }
            return b.append(String.format(Locale.ROOT, "%.2f ms end to end", ms)).toString();
        } catch (Throwable t) {
            Log.e(TAG, "prediction failed", t);
            return "error: " + describe(t);
        }
    }

    private void show(TextView view, String text) {
        runOnUiThread(() -> view.setText(text));
    }

    static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getSimpleName() + (m == null ? "" : ": " + m);
    }

    @Override
    protected void onDestroy() {
        worker.shutdown();
        super.onDestroy();
    }
}
