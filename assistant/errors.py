"""The assistant's own errors share one base, :class:`AssistantError`: each says in one line
(``str(err)``) what went wrong, meant for the user. The ``assistant`` command prints any of
them as ``assistant: MESSAGE`` and exits non-zero (``assistant/cli.py``); the places that can
recover (the loop, the profile commands) catch the specific subclasses.

The subclasses live with the code that raises them: ``ConfigError`` (config.py),
``NoInputDeviceError``, ``DeviceError``, ``AudioSystemError`` (audio_io.py), ``UtteranceError``,
``MicrophoneLost`` (sources.py), ``SttError`` (stt.py), ``TtsError`` (tts.py), ``HistoryError``
(history.py), ``ProfileStoreError`` (profiles.py), ``LogLineError`` (session_log.py).
The emotion library's errors are ``ser_model.errors.SerError``.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base of the assistant's errors; ``str(err)`` is one line."""
