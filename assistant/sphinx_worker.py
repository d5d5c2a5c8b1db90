"""The pocketsphinx decoder's child process (``python -m assistant.sphinx_worker``), driven by
``stt.SphinxTranscriber``.

Why a child: pocketsphinx holds the GIL for the whole of ``process_raw``, so a decode in the
assistant's process stalls the emotion model's thread until it ends (measured: a side thread
165 ms alone took 600-1270 ms next to an in-process decode of a 2 s clip, 290-520 ms next to
this child, on a loaded 2-core machine).

Protocol, on stdin/stdout: the child writes ``ready\\n`` once its decoder is made. Each request
is one byte of operation, a little-endian uint32 length and that many bytes of 16 kHz 16-bit
mono PCM:

- ``S`` start an utterance (no reply);
- ``C`` a chunk of it (no reply; decoded as it arrives, so little is left at the end);
- ``E`` end it; ``F`` a whole utterance at once (start, all of it, end).

After ``E`` or ``F`` the child writes one JSON line: ``{"text": ...}`` or ``{"error": ...}``.
A failure in ``S`` or ``C`` is kept and reported at the ``E``. End of stdin ends the child.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
from typing import BinaryIO

READY = b"ready\n"
HEADER = struct.Struct("<cI")
"""Operation byte, then the PCM length."""


def request(op: bytes, pcm: bytes = b"") -> bytes:
    """One request as the parent sends it."""
    return HEADER.pack(op, len(pcm)) + pcm


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until ``inp`` ends."""
    from pocketsphinx import Decoder

    # fwdflat and bestpath are second passes over the whole utterance after it ends: they
    # cost about half of the decoding time for little gain on short sentences.
    decoder = Decoder(logfn=os.devnull, fwdflat=False, bestpath=False)
    out.write(READY)
    out.flush()
    failed: str | None = None
    while True:
        head = inp.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        op, n = HEADER.unpack(head)
        pcm = inp.read(n) if n else b""
        try:
            if op == b"S":
                failed = None
                decoder.start_utt()
                continue
            if op == b"C":
                if failed is None:
                    decoder.process_raw(pcm, full_utt=False)
                continue
            if op == b"F":
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
            if failed is not None:
                raise RuntimeError(failed)
            decoder.end_utt()
            hyp = decoder.hyp()
            reply = {"text": hyp.hypstr.strip() if hyp is not None else ""}
        except Exception as err:  # pocketsphinx raises RuntimeError subclasses
            if op in (b"S", b"C"):
                failed = str(err) or type(err).__name__
                continue
            reply = {"error": str(err) or type(err).__name__}
        out.write((json.dumps(reply) + "\n").encode())
        out.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
