"""clipstore: personal-genome Zarr stores and streaming readers for sequence-to-function models."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clipstore")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["open", "StoreDataset", "__version__"]


def __getattr__(name: str):
    """Lazy exports: `import clipstore` stays light (no zarr/xarray/TensorFlow until used)."""
    if name == "open":
        from .xr import open as _open
        return _open
    if name == "StoreDataset":
        from .reader import StoreDataset
        return StoreDataset
    raise AttributeError(f"module 'clipstore' has no attribute {name!r}")
