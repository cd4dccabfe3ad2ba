"""Import TensorFlow without its C++ start-up banner.

Why: TensorFlow 2.21 writes absl's "All log messages before absl::InitializeLog() is called..."
warning, a oneDNN note and a CPU-feature note straight to file descriptor 2 while it imports,
whatever TF_CPP_MIN_LOG_LEVEL says — users of `clipstore demo` or `train` saw them as if
something had gone wrong. The import runs with fd 2 captured; every other line (real errors
included) is passed on unchanged.
"""
from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType

NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
         "This TensorFlow binary is optimized", "To enable the following instructions")


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, with the known start-up notes dropped from stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not any(n in line for n in NOISE):
                    sys.stderr.write(line)
    return tensorflow
