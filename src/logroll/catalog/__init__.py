from .store import Catalog, redact_url

__all__ = ["Catalog", "redact_url"]
