"""FerryMQ: a message broker for Python people."""

__version__ = "0.1.0"
__all__ = ["__version__"]
