"""mmedkit: build, train, evaluate and serve multilingual medical language models."""

__version__ = "0.1.0"
