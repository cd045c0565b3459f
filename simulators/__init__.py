"""Faithful simulators of upstream systems, for tests and the demo."""
