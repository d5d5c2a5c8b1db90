"""One voice profile per user: the running statistics that adapt the emotion model to a voice.

A profile (``ser_model.profile.VoiceProfile``) holds a count, a mean and a spread of the
emotion model's features over the user's past utterances: no audio, no words. It lives in
``<user data dir>/profiles/<user>.json``, mode 0600 in a 0700 folder. Each turn is scored with
the profile as it was *before* that turn, then the turn is added (causal: an utterance never
adapts its own score). A profile made for another emotion model (another feature extractor)
is not used: it is set aside as ``<user>.json.old`` and a new one starts, with a notice.

Light module: ``ser_model.profile`` (NumPy only) is imported when a profile is loaded.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

LEARNING_CLIPS = 10
"""Below this many utterances the live view says the assistant is still learning the voice."""

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ProfileStoreError(AssistantError, ValueError):
    """A user name or profile folder is unusable; ``str(err)`` is one line."""


def default_user() -> str:
    """The login name, made safe for a file name (``default`` when there is none)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        name = ""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")[:64]
    return name or "default"


def check_user(name: str) -> str:
    """``name`` when it can name a profile file; ProfileStoreError (one line) otherwise."""
    if not _USER_NAME.match(name or ""):
        raise ProfileStoreError(f"--user {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                                "(starting with a letter or digit)")
    return name


def default_profile_dir() -> Path:
    """``<user data dir>/profiles`` (``$XDG_DATA_HOME`` is honoured on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("empathetic-assistant", appauthor=False)) / "profiles"


@dataclass
class ProfileStore:
    """Where one user's profile is kept, and how it is loaded and saved."""

    user: str
    folder: Path

    @classmethod
    def for_user(cls, user: str | None = None, folder: str | Path | None = None) -> ProfileStore:
        return cls(check_user(user) if user is not None else default_user(),
                   Path(folder) if folder is not None else default_profile_dir())

    @property
    def path(self) -> Path:
        return self.folder / f"{self.user}.json"

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> Any:
        """The stored profile (ser_model.profile.VoiceProfile); ProfileError when unreadable."""
        from ser_model.profile import VoiceProfile

        return VoiceProfile.load(self.path)

    def load_for(self, recognizer: Any) -> tuple[Any, str | None]:
        """(profile, notice): the stored profile when it fits ``recognizer``, else a new one.

        ``notice`` is one line for the user when a stored profile could not be used (it is
        kept beside as ``.old`` or ``.bad``, never silently overwritten), else None.
        """
        from ser_model.profile import ProfileError

        fresh = recognizer.new_profile()
        if not self.exists():
            return fresh, None
        try:
            stored = self.read()
        except ProfileError as err:
            self._set_aside(".bad")
            return fresh, f"voice profile unreadable ({err}); kept as {self.path.name}.bad, starting a new one"
        if stored.feature_id != fresh.feature_id or stored.dim != fresh.dim:
            self._set_aside(".old")
            return fresh, (f"voice profile of {self.user!r} was made for another emotion model; "
                           f"kept as {self.path.name}.old, starting a new one")
        return stored, None

    def save(self, profile: Any) -> None:
        """Write ``profile`` (0600, atomically) in a 0700 folder; OSError when it cannot."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(self.folder, 0o700)
        except OSError:
            pass
        profile.save(self.path)

    def reset(self) -> bool:
        """Delete the stored profile; True when there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _set_aside(self, suffix: str) -> None:
        try:
            os.replace(self.path, self.path.with_name(self.path.name + suffix))
        except OSError:
            pass
