"""FerryMQ: a message broker for Python people."""

__version__ = "0.1.0"
__all__ = ["EmbeddedBroker", "__version__"]


def __getattr__(name: str) -> object:
    # Imported lazily so `import ferrymq` stays cheap and the core never pulls in the server.
    if name == "EmbeddedBroker":
        from ferrymq.testing.embedded import EmbeddedBroker

        return EmbeddedBroker
    raise AttributeError(name)
