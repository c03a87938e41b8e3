package android.content.pm;

public class PackageInfo {
    public String packageName;
    public String versionName;
    /** Deprecated in API 28 for getLongVersionCode(). */
    @Deprecated
    public int versionCode;
    public long firstInstallTime;
    public long lastUpdateTime;
    public ApplicationInfo applicationInfo;
}
