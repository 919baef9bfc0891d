"""Keep credentials out of messages, logs and run history.

Two layers: patterns that need no knowledge of the secrets (the user:password part of any URI,
`password=...` parameters, `'password': '...'` in reprs), and the secret values this process knows
(`remember_secret`, `remember_uri`, `remember_known_secrets`), masked wherever they appear, even in
a message that broke the URI apart (pymongo's "invalid URI" errors, a password with a space)."""

from __future__ import annotations

import io
import os
import re
from typing import Iterable, Mapping, TextIO
from urllib.parse import quote, unquote

MASK = "***"

# Known values shorter than this are masked only by the patterns: masking every "ab" in a message
# would make it unreadable and says the value's length anyway.
MIN_KNOWN_SECRET = 4

# Up to the last `@` before whitespace or a quote, so that a password with an unescaped `/` or `@`
# (a URI pymongo refuses) is masked whole.
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^\s'\"<>]*)@", re.IGNORECASE)
_SECRET_KEY = r"[a-z_]*(?:password|passwd|pwd|secret|secret_access_key|session_token|access_token|api_key)"
_SECRET_PARAM = re.compile(rf"(?P<key>\b{_SECRET_KEY}=)(?![\"'])[^&\s,;)]+", re.IGNORECASE)
_SECRET_ITEM = re.compile(rf"(?P<key>[\"']?\b{_SECRET_KEY}[\"']?\s*[:=]\s*)(?P<quote>[\"'])(?:\\.|(?!(?P=quote)).)*(?P=quote)",
                          re.IGNORECASE)

# Environment variables whose whole value is a secret, and those that hold a URI whose password is.
_SECRET_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIALS)", re.IGNORECASE)
_URI_ENV = re.compile(r"(_URI|_URL|CONNECTION_STRING)$", re.IGNORECASE)
# dlt secrets this project reads (.dlt/secrets.toml or their environment variables)
_DLT_SECRETS = (
    "sources.atlas.connection_url",
    "destination.redshift.credentials",
    "destination.redshift.credentials.password",
    "destination.filesystem.credentials.aws_secret_access_key",
    "destination.filesystem.credentials.aws_session_token",
)

_known: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Mask `value` (and its URL-quoted and unquoted forms) in everything `redact` sees from now on."""
    if not value or not isinstance(value, str):
        return
    for form in {value, unquote(value), quote(value, safe="")}:
        if len(form) >= MIN_KNOWN_SECRET:
            _known.add(form)


def uri_password(uri: str) -> str | None:
    """The password of a URI as written (between the user's `:` and the last `@` of the authority),
    read without a URI parser, so that URIs pymongo refuses are covered too."""
    scheme_end = uri.find("://")
    if scheme_end < 0:
        return None
    rest = uri[scheme_end + 3:]
    at = rest.rfind("@")
    if at < 0:
        return None
    userinfo = rest[:at]
    _, colon, password = userinfo.partition(":")
    return password if colon else None


def remember_uri(uri: str | None) -> None:
    if uri:
        remember_secret(uri_password(uri))


def remember_known_secrets(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> None:
    """Remember the secrets of this process that need no import: secret-named environment
    variables, and the password of URIs in the environment and in `extra` (command-line
    arguments, which argparse echoes in its errors)."""
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if _URI_ENV.search(name) or "://" in value:
            remember_uri(value)
        elif _SECRET_ENV.search(name):
            remember_secret(value)
    for arg in extra:
        if "://" in arg:
            remember_uri(arg.split("=", 1)[-1] if arg.startswith("--") else arg)


def remember_dlt_secrets() -> None:
    """Remember the secrets dlt reads for this project (`.dlt/secrets.toml` or their environment
    variables)."""
    import dlt

    for key in _DLT_SECRETS:
        try:
            value = dlt.secrets.get(key)
        except Exception:  # an unreadable secrets.toml is reported by the command that reads it
            return
        if isinstance(value, str):
            remember_uri(value) if "://" in value else remember_secret(value)
        elif isinstance(value, dict):
            remember_secret(value.get("password"))


def redact(text: str) -> str:
    """`text` with credentials replaced by `***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _SECRET_ITEM.sub(lambda m: f"{m['key']}{m['quote']}{MASK}{m['quote']}", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that redacts what is written to it, line by line (a secret is never split
    between two writes of one line), before passing it to `target`."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            complete, _, self._pending = self._pending.rpartition("\n")
            self.target.write(redact(complete + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.target.write(redact(self._pending))
            self._pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")
