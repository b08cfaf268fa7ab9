"""Benchmarks of chatplane: a mock OpenAI-compatible model, a load generator, and the runner behind ``make bench``."""
