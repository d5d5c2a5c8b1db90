"""An offline-first, empathetic voice assistant for the terminal.

``import assistant`` is kept light: nothing here imports TensorFlow, librosa or PyAudio.
"""

__version__ = "0.1.0"
