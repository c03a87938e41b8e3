"""ERNIE 3.0 Tiny joint intent detection and slot filling: the library behind the entry scripts.

Importing any `slu` module first runs one zlib round trip: libpaddle.so exports its own zlib symbols, and
the first zlib decompression after `import paddle` can crash the process (SIGSEGV in inflateReset2) or raise
zlib.error. Going through the system zlib once before paddle is imported avoids it, so every entry point
imports `slu` before paddle.
"""
import warnings
import zlib

zlib.decompress(zlib.compress(b"x"))
# Paddle 3 warns at every import that ccache (for building C++ extensions, which nothing here does) is missing:
# two lines in front of every one-line error
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
