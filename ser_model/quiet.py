"""Keep C libraries' own stderr lines (mpg123 inside libsndfile: "Warning: Xing stream size off
by more than 1%, ...") out of the terminal while they decode: one line per problem is the
command's to write, in its own words.

``quiet_library_stderr()`` points file descriptor 2 at a temporary file for the duration, then
writes back to the real stderr every captured line that is not a decoder's chatter, so a
message from another thread in that moment is not lost. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

#: Lines that decoders inside libsndfile write on their own (mpg123: "Warning: ...", "Note: ...",
#: "[src/libmpg123/...] error: ...").
LIBRARY_NOISE = re.compile(r"^(Warning: |Note: |\[[^\]]*mpg123[^\]]*\]|.*libmpg123)")


@contextlib.contextmanager
def quiet_library_stderr() -> Iterator[None]:
    """Swallow decoder chatter on fd 2 while the block runs (a no-op when fd 2 is unusable)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not LIBRARY_NOISE.match(line)]
            if kept:
                try:
                    sys.stderr.write("".join(kept))
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
