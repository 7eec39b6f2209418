"""Tandem's Python side.

The Tandem server is written in Rust; Python environments (Gymnasium,
PettingZoo, or a user's factory) run in worker processes that speak the
protocol in ``docs/WORKER.md``. This package holds that worker
(``python -m tandem.worker``). It imports nothing heavy at package level, so a
worker can move its standard output aside before numpy or any environment
code is loaded.
"""

__version__ = "0.1.0"
