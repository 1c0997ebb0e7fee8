"""L2: the storage port (``port.py``) and its adapters (``sqlite/``; ``mongo/`` later)."""
