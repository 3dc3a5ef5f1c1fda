"""Backends: one module per tool (search index, in-process llama.cpp, litellm), behind ``Backend``."""
