"""The HTTP surface: OpenAI-compatible routes, health, metrics, and the error mapping."""
