"""The package version. Its one source is include/comi.h
(COMI_VERSION_STRING): in a checkout it is read from there; `pip install`
replaces this file in the installed package with the literal it read."""

import os
import re


def _from_header() -> str:
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include",
                          "comi.h")
    try:
        with open(header, encoding="utf-8") as f:
            m = re.search(r'^#define COMI_VERSION_STRING "([^"]+)"', f.read(), re.M)
    except OSError:
        m = None
    return m.group(1) if m else "0+unknown"


__version__ = _from_header()
