"""Frugal: an OpenAI-compatible router that answers with the cheapest sufficient tier."""

__version__ = "0.1.0"
