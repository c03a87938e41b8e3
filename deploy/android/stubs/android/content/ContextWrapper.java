package android.content;

import android.content.pm.ApplicationInfo;
import android.content.pm.PackageManager;
import android.content.res.AssetManager;

import java.io.File;

public class ContextWrapper extends Context {
    public ContextWrapper(Context base) {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public AssetManager getAssets() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public PackageManager getPackageManager() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public String getPackageName() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public ApplicationInfo getApplicationInfo() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public Context getApplicationContext() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public File getFilesDir() {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public File getCacheDir() {
        throw new UnsupportedOperationException("stub");
    }
}
