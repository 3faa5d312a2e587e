"""The package version (one definition: a2dkit.__version__ and the conversion manifest read it)."""

__version__ = "0.2.0"
