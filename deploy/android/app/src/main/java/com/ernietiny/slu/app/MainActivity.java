package com.ernietiny.slu.app;

import android.app.Activity;
import android.os.Bundle;
import android.os.SystemClock;
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
 * model's deploy_config.json).
 */
public class MainActivity extends Activity {
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private SluPredictor predictor;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        setContentView(R.layout.activity_main);
        EditText query = findViewById(R.id.query);
        Button run = findViewById(R.id.run);
        TextView result = findViewById(R.id.result);
        run.setEnabled(false);
        worker.execute(() -> {
            try {
                predictor = new SluPredictor(this, 1);
                runOnUiThread(() -> run.setEnabled(true));
            } catch (Exception e) {
                runOnUiThread(() -> result.setText("model failed to load: " + e.getMessage()));
            }
        });
        run.setOnClickListener(v -> {
            String text = query.getText().toString();
            worker.execute(() -> {
                String shown;
                try {
                    long t0 = SystemClock.elapsedRealtimeNanos();
                    SlotDecoder.Result r = predictor.predict(text);
                    double ms = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6;
                    StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "intent: %s (%.3f)\n", r.intent,
                            r.confidence));
                    for (SlotDecoder.Slot s : r.slots) {
                        b.append(String.format(Locale.ROOT, "%s = %s  [%d, %d]\n", s.slot, s.entity, s.begin, s.end));
                    }
                    shown = b.append(String.format(Locale.ROOT, "%.2f ms end to end", ms)).toString();
                } catch (Exception e) {
                    shown = "error: " + e.getMessage();
                }
                String finalShown = shown;
                runOnUiThread(() -> result.setText(finalShown));
            });
        });
    }

    @Override
    protected void onDestroy() {
        worker.shutdown();
        super.onDestroy();
    }
}
