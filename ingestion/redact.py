"""Keep credentials out of messages and logs."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^@/\s]+)@", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"(?P<key>(?:password|secret|token|aws_secret_access_key|aws_session_token)=)[^&\s]+",
    re.IGNORECASE,
)


def redact_uri(text: str) -> str:
    """Replace the user:password part of any URI and secret query parameters with `***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}***", text)
