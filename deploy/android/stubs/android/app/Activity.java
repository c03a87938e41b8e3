package android.app;

import android.os.Bundle;
import android.view.ContextThemeWrapper;
import android.view.View;

public class Activity extends ContextThemeWrapper {
    protected void onCreate(Bundle savedInstanceState) {
        throw new UnsupportedOperationException("stub");
    }

    protected void onDestroy() {
        throw new UnsupportedOperationException("stub");
    }

    public void setContentView(int layoutResID) {
        throw new UnsupportedOperationException("stub");
    }

    /** Generic since API 26; the erasure (View) is the API 1 method, so it runs on older releases. */
    public <T extends View> T findViewById(int id) {
        throw new UnsupportedOperationException("stub");
    }

    public final void runOnUiThread(Runnable action) {
        throw new UnsupportedOperationException("stub");
    }

    public boolean isFinishing() {
        throw new UnsupportedOperationException("stub");
    }
}
