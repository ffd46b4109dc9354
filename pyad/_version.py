"""The package version: the single source, also compiled into the native module."""

__version__ = "0.1.0"
