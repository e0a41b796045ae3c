"""Releases of a stack: recorded in its history, listed, rolled back, optionally atomic (`make releases`)."""
