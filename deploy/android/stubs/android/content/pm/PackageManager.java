package android.content.pm;

import android.util.AndroidException;

public abstract class PackageManager {
    public static class NameNotFoundException extends AndroidException {
        private static final long serialVersionUID = 1L;

        public NameNotFoundException() {
        }

        public NameNotFoundException(String name) {
            super(name);
        }
    }

    /** Deprecated in API 33 for getPackageInfo(String, PackageInfoFlags), which needs API 33. */
    @Deprecated
    public abstract PackageInfo getPackageInfo(String packageName, int flags) throws NameNotFoundException;
}
