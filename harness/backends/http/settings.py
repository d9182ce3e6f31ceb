"""`[engine.http]`: the http backend's own table, read and validated by this type (harness.config builds it key by
key from its annotations; `validate` holds its rules). Secrets never sit in it: the URL and header values may come
from environment variables, read at run time, and reports record the URL with its credentials redacted."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from harness.model.settings import EngineSettings, require
from harness.util.errors import UserError
from harness.util.service_url import redact_url, url_problem

NAME = "http"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class HttpSettings:
    """A running service speaking the PaddleX serving OCR protocol (`POST /ocr`)."""

    url: str | None = None  # e.g. http://127.0.0.1:8080/ocr
    url_env: str | None = None  # or: the name of an environment variable holding the URL (CI secrets, tox)
    # Header name -> the environment variable holding its value (a token as `Authorization`, not in the URL).
    headers_env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 120.0  # one try: connect, send and the whole answer; tries stop at image_timeout_s
    retries: int = 2  # after the first try, on connection errors, timeouts, 429 and 5xx
    backoff_s: float = 0.5  # doubled after every retry, unless the service sends Retry-After
    max_in_flight: int = 1  # requests in flight at once
    max_response_bytes: int = 8 * 1024 * 1024  # a larger answer is that image's error, not memory
    max_retry_rate: float = 0.05  # share of images that needed a retry above which `inference` fails

    def validate(self, where: str) -> None:
        require(not (self.url and self.url_env), f"{where}.url", "set url or url_env, not both")
        why = url_problem(self.url) if self.url else None
        require(why is None, f"{where}.url", why or "")
        require(math.isfinite(self.timeout_s) and self.timeout_s > 0, f"{where}.timeout_s",
                "must be a finite number of seconds > 0")
        require(0 <= self.retries <= 10, f"{where}.retries", "must be in 0..10")
        require(math.isfinite(self.backoff_s) and self.backoff_s >= 0, f"{where}.backoff_s",
                "must be a finite number of seconds >= 0")
        require(1 <= self.max_in_flight <= 64, f"{where}.max_in_flight", "must be in 1..64")
        require(1024 <= self.max_response_bytes <= 2**31, f"{where}.max_response_bytes", "must be in 1024..2**31")
        require(0.0 <= self.max_retry_rate <= 1.0, f"{where}.max_retry_rate", "must be in 0..1")
        for name, var in self.headers_env.items():
            require(bool(_HEADER_NAME.fullmatch(name)), f"{where}.headers_env.{name}", "is not an HTTP header name")
            require(bool(var), f"{where}.headers_env.{name}", "must name an environment variable")

    def to_dict(self) -> dict[str, Any]:
        """The table as reports record it: a URL's credentials redacted (transport settings: never hashed)."""
        d = dataclasses.asdict(self)
        if d["url"]:
            d["url"] = redact_url(d["url"])
        return d

    def resolved_url(self, where: str) -> str:
        """The endpoint; from the environment when `url_env` names a variable (read at run time)."""
        if self.url:
            return self.url
        if not self.url_env:
            raise UserError(f"{where}.url: the http backend needs url or url_env")
        value = os.environ.get(self.url_env, "").strip()
        if not value:
            raise UserError(f"{where}.url_env: environment variable {self.url_env} is not set")
        why = url_problem(value)
        if why is not None:  # the value is a secret: named by its variable, never quoted
            raise UserError(f"{where}.url_env: the URL in {self.url_env}: {why}")
        return value

    def resolved_headers(self, where: str) -> dict[str, str]:
        """The extra request headers, their values read from the environment at run time."""
        out = {}
        for name, var in self.headers_env.items():
            value = os.environ.get(var, "").strip()
            if not value:
                raise UserError(f"{where}.headers_env.{name}: environment variable {var} is not set")
            if any(c in value for c in "\r\n\0"):
                raise UserError(f"{where}.headers_env.{name}: the value of {var} contains a line break")
            out[name] = value
        return out


def http_settings(engine: EngineSettings) -> HttpSettings:
    """The profile's `[engine.http]` table (its defaults when it sets none)."""
    return engine.table(NAME, HttpSettings)


def with_url(engine: EngineSettings, url: str) -> EngineSettings:
    """`run --service-url`: the settings with this endpoint in place of the table's url or url_env."""
    table = dataclasses.replace(http_settings(engine), url=url, url_env=None)
    return dataclasses.replace(engine, tables={**engine.tables, NAME: table})
