"""conv3n: self-hosted workflow automation for developers."""

__version__ = "0.1.0"
