"""Bearer-token authentication (secure by default).

The token is a secret: it comes from the environment, never from config.yaml —
``IBKR_SERVICE_TOKEN`` (the value) or ``IBKR_SERVICE_TOKEN_FILE`` (a path, as Docker secrets are
mounted: ``/run/secrets/service_token``). With no token configured, every protected endpoint
answers 403 naming the setting; a wrong or missing token gets 401. Tokens are compared with
:func:`hmac.compare_digest` and never logged.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

TOKEN_ENV = "IBKR_SERVICE_TOKEN"
TOKEN_FILE_ENV = "IBKR_SERVICE_TOKEN_FILE"
MIN_TOKEN_LENGTH = 16
NOT_CONFIGURED = (f"no API token configured: set {TOKEN_ENV} or {TOKEN_FILE_ENV} "
                  "(a file holding the token) to use this endpoint")


class TokenError(ValueError):
    """The token settings are unusable (file missing, unreadable, too short, both set)."""


def load_token(env: Mapping[str, str] | None = None) -> str | None:
    """The configured token, or None when neither variable is set.

    Raises :class:`TokenError` (naming the variable, never the value) when a setting is present
    but unusable: an unreadable file, an empty or too-short token, or both variables set.
    """
    environ = os.environ if env is None else env
    value = environ.get(TOKEN_ENV, "")
    path = environ.get(TOKEN_FILE_ENV, "")
    if value and path:
        raise TokenError(f"set only one of {TOKEN_ENV} and {TOKEN_FILE_ENV}")
    source = TOKEN_ENV
    if path:
        source = f"{TOKEN_FILE_ENV} ({path})"
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise TokenError(f"{source}: cannot read the token file: {e.strerror}") from None
    elif TOKEN_ENV in environ and not value:
        raise TokenError(f"{TOKEN_ENV} is set but empty")
    if not value:
        if path:
            raise TokenError(f"{source}: the token file is empty")
        return None
    if len(value) < MIN_TOKEN_LENGTH:
        raise TokenError(f"{source}: the token must be at least {MIN_TOKEN_LENGTH} characters")
    return value


_bearer = HTTPBearer(auto_error=False, description=f"the token of {TOKEN_ENV} / {TOKEN_FILE_ENV}")


async def require_token(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
                        ) -> None:
    """Dependency of every protected route: 403 unconfigured, 401 missing/wrong."""
    expected: str | None = request.app.state.token
    if expected is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_CONFIGURED)
    given = credentials.credentials if credentials is not None else ""
    if not given or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
