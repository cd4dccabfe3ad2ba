"""TensorFlow's start-up banner is dropped; other stderr output is not."""
import subprocess
import sys

import pytest

from clipstore.tfquiet import NOISE


def _stderr(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stderr


def test_banner_dropped_and_other_lines_kept():
    plain = _stderr("import tensorflow")
    quiet = _stderr("import sys\nfrom clipstore.tfquiet import import_tensorflow\n"
                    "tf = import_tensorflow()\nassert tf.constant(1).numpy() == 1\n"
                    "import os; os.write(2, b'after import\\n')")
    if not any(n in plain for n in NOISE):
        pytest.skip("this TensorFlow prints none of the known start-up notes")
    assert not any(n in quiet for n in NOISE)
    assert "after import" in quiet
