"""clipstore: personal-genome Zarr stores and streaming readers for sequence-to-function models."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clipstore")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"
