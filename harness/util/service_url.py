"""A service URL: checked when the profile is read, and shown only with its credentials redacted.

A URL may carry a secret (`http://user:token@host/ocr`, `...?access_token=...`; `url_env` exists so that CI can
keep it in a secret). Whatever the harness prints or writes names the URL through `redact_url`: the user info
and every query value become `***`, the host, port, path and query keys stay, so a reader still sees which
service it was.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

REDACTED = "***"


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and what to ask for; `shown` is the URL with its credentials redacted."""

    scheme: str  # http | https
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    username: str | None
    password: str | None
    shown: str


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a service endpoint, or None. Never quotes the URL (it may hold a secret)."""
    try:
        parse_endpoint(url)
    except ValueError as e:
        return str(e)
    return None


def parse_endpoint(url: str) -> Endpoint:
    """The endpoint of an http(s) URL; ValueError saying what is wrong (without quoting the URL)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises for a non-numeric or out-of-range port
    except ValueError as e:
        raise ValueError(f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("has no host")
    if any(c.isspace() for c in url):
        raise ValueError("contains whitespace")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Endpoint(scheme=parts.scheme, host=parts.hostname, port=port or default, target=target,
                    username=urllib.parse.unquote(parts.username) if parts.username is not None else None,
                    password=urllib.parse.unquote(parts.password) if parts.password is not None else None,
                    shown=redact_url(url))


def redact_url(url: str) -> str:
    """`url` with its user info and every query value replaced by `***` (fragments dropped)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED  # unparseable: nothing of it is known to be safe to show
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{REDACTED}@" if "@" in parts.netloc else "") + host + (f":{port}" if port is not None else "")
    query = "&".join(f"{k}={REDACTED}" if sep else REDACTED  # a bare value may be the secret
                     for k, sep, _ in (pair.partition("=") for pair in parts.query.split("&") if pair))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
