"""Import TensorFlow and Keras once, quietly, for every caller in this package.

TensorFlow 2.21 writes absl and oneDNN lines straight to file descriptor 2 when it loads,
before Python's logging can filter them, and ``TF_CPP_MIN_LOG_LEVEL=2`` no longer stops the
oneDNN notice (it is logged through absl before absl is initialised, which also prints the
"All log messages before absl::InitializeLog()" warning). Turning the oneDNN custom kernels
off is what silences both; our models are small enough that the kernels make no measurable
difference here (see the README's training times). The Python-side loggers (``tensorflow``,
``absl``) and Keras' warnings are set to errors only. A user who sets these variables
themselves keeps their choice.

Every import of TensorFlow or Keras in ``ser_model`` goes through :func:`import_tensorflow`
or :func:`import_keras`, so the command-line contract (stderr carries only our own lines)
holds on every path: predict, evaluate, train, compare and the keras backend.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any

__all__ = ["import_keras", "import_tensorflow", "quiet_environment"]

_LOCK = threading.Lock()
_THREADS: dict[str, int] = {}
log = logging.getLogger(__name__)


def quiet_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """Set (by default) the variables that keep TensorFlow's native logging off stderr.

    With ``env`` given (a child process's environment), it is updated and returned instead
    of ``os.environ``; values already there are kept.
    """
    target = os.environ if env is None else env
    target.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    target.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    target.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    return target  # type: ignore[return-value]


def import_tensorflow(threads: int | None = None) -> Any:
    """Return the ``tensorflow`` module, imported quietly.

    ``threads`` sets the intra-op pool (inter-op is 1) the first time a caller asks; once
    TensorFlow's runtime has started its pools are fixed, and a later, different request is
    logged at debug level and otherwise ignored.
    """
    quiet_environment()
    import tensorflow as tf

    with _LOCK:
        if not _THREADS.get("quiet"):
            tf.get_logger().setLevel(logging.ERROR)
            logging.getLogger("absl").setLevel(logging.ERROR)
            warnings.filterwarnings("ignore", module=r"(keras|tensorflow)(\.|$)")
            _THREADS["quiet"] = 1
        if threads is not None:
            if "intra" in _THREADS:
                if _THREADS["intra"] != threads:
                    log.debug("TensorFlow threads already set to %d; ignoring %d", _THREADS["intra"], threads)
            else:
                try:
                    tf.config.threading.set_intra_op_parallelism_threads(threads)
                    tf.config.threading.set_inter_op_parallelism_threads(1)
                except RuntimeError as err:  # the runtime was started by someone else
                    log.debug("could not set TensorFlow threads (%s); keeping its defaults", err)
                _THREADS["intra"] = tf.config.threading.get_intra_op_parallelism_threads()
    return tf


def import_keras() -> Any:
    """Return the ``keras`` module, with TensorFlow (its backend) imported quietly first."""
    import_tensorflow()
    import keras

    return keras
