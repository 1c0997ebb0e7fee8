"""URLs: connection strings shown to people (never with their credentials), web origins."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def without_credentials(url: str) -> str:
    """``url`` for logs and messages: the user and password before ``@`` and the query (which
    may hold secrets too, e.g. ``tlsCertificateKeyFilePassword``) are left out."""
    return _USERINFO.sub(r"\1", url).split("?", 1)[0]


def origin(url: str) -> str:
    """The web origin of an absolute URL, ``scheme://host[:port]`` (RFC 6454)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
