package com.ernietiny.slu.android;

import android.content.Context;
import android.content.pm.PackageManager;

import com.ernietiny.slu.SluEngine;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;

/**
 * The app's assets as files under files/slu/ (Paddle Lite reads the model from a path). Each is copied to a
 * temporary file and renamed, so a crash never leaves a partial file under the real name; and copied again after
 * the app is installed or updated: a stamp file records the install (PackageInfo.lastUpdateTime) whose copies
 * are there, written by {@link #commit()} once all of them loaded.
 */
final class AssetCache implements SluEngine.Files {
    private static final String STAMP = "installed.stamp";

    private final Context context;
    private final File dir;
    private final String install;
    private final boolean current;
    private final Set<String> copied = new HashSet<>();

    AssetCache(Context context) throws IOException {
        this.context = context;
        dir = new File(context.getFilesDir(), "slu");
        if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
        install = Long.toString(lastUpdateTime(context));
        current = install.equals(readStamp());
    }

    @SuppressWarnings("deprecation")  // its replacement, getPackageInfo(String, PackageInfoFlags), needs API 33
    private static long lastUpdateTime(Context context) throws IOException {
        try {
            return context.getPackageManager().getPackageInfo(context.getPackageName(), 0).lastUpdateTime;
        } catch (PackageManager.NameNotFoundException e) {
            throw new IOException("cannot read this app's package info", e);
        }
    }

    @Override
    public InputStream open(String name) throws IOException {
        return new FileInputStream(file(name));
    }

    /** The asset `name` as a file: copied unless this install's copy is there. */
    File file(String name) throws IOException {
        File dest = new File(dir, name);
        if (copied.contains(name) || (current && dest.isFile())) return dest;
        try (InputStream in = context.getAssets().open(name)) {
            write(in, dest);
        }
        copied.add(name);
        return dest;
    }

    /** Records that the copies are this install's: later starts reuse them. */
    void commit() throws IOException {
        if (!current) write(new ByteArrayInputStream(install.getBytes(StandardCharsets.UTF_8)), new File(dir, STAMP));
    }

    private String readStamp() {
        File f = new File(dir, STAMP);
        byte[] b = new byte[64];
        try (InputStream in = new FileInputStream(f)) {
            int n = in.read(b);
            return n <= 0 ? "" : new String(b, 0, n, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";  // none yet, or unreadable: copy again
        }
    }

    /** Writes `in` to a temporary file in `dir`, syncs it and renames it to `dest`. */
    private void write(InputStream in, File dest) throws IOException {
        File tmp = File.createTempFile("." + dest.getName() + ".", ".tmp", dir);  // unique: loads may overlap
        try {
            try (FileOutputStream out = new FileOutputStream(tmp)) {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) != -1; ) out.write(buf, 0, n);
                out.getFD().sync();
            }
            if (!tmp.renameTo(dest)) throw new IOException("cannot rename " + tmp + " to " + dest);
        } finally {
            if (tmp.exists() && !tmp.delete()) tmp.deleteOnExit();
        }
    }
}
