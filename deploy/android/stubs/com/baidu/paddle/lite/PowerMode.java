package com.baidu.paddle.lite;

/** Paddle Lite 2.13-rc's public Java API (as in 2.10), signatures only (see stubs/README.md). */
public enum PowerMode {
    LITE_POWER_HIGH(0),
    LITE_POWER_LOW(1),
    LITE_POWER_FULL(2),
    LITE_POWER_NO_BIND(3),
    LITE_POWER_RAND_HIGH(4),
    LITE_POWER_RAND_LOW(5);

    PowerMode(int value) {
    }

    public int value() {
        throw new UnsupportedOperationException("stub");
    }
}
