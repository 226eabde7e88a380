"""logroll: files keep landing in a bucket; turn them into clean, deduplicated per-day results."""

from .api import run, status
from .errors import LogrollError
from .report import RunReport

__all__ = ["run", "status", "LogrollError", "RunReport"]
__version__ = "0.1.0"
