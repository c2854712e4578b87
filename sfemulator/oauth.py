"""The org's OAuth 2.0 server: token grants, revocation, introspection, sessions.

Grants (reference §1): JWT bearer (RS256 assertion checked against the connected app's
certificate; ``iss`` client id, ``sub`` username, ``aud`` a login URL, ``exp`` in seconds and not
past), client credentials (refused on login/test hosts), refresh token (optional rotation), and the
legacy password grant. Responses carry no ``expires_in``; errors are 400
``{"error","error_description"}`` with Salesforce's strings. Pure: form in, (status, body) out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509

from .config import DemoCredentials

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "api"
LOGIN_HOSTS = {"login.salesforce.com", "test.salesforce.com"}


@dataclass
class Session:
    token: str
    client_id: str
    username: str
    issued_at: float
    scope: str = SCOPE
    refresh_token: str | None = None
    calls: int = 0


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.body = {"error": error, "error_description": description}


class OAuthServer:
    def __init__(
        self,
        creds: DemoCredentials,
        clock: Callable[[], float],
        *,
        lifetime_s: float,
        audiences: tuple[str, ...],
        preauthorized: bool,
        rotation: bool,
        base_url: Callable[[], str],
        max_calls: int | None = None,
    ) -> None:
        self.creds = creds
        self.clock = clock
        self.lifetime_s = lifetime_s
        self.audiences = audiences
        self.preauthorized = preauthorized
        self.rotation = rotation
        self.max_calls = max_calls
        self.base_url = base_url
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, bool] = {}  # token -> still valid
        self._public_key = x509.load_pem_x509_certificate(
            creds.certificate_pem.encode()
        ).public_key()

    # -- endpoints ---------------------------------------------------------------------------

    def token(
        self, form: Mapping[str, str], authorization: str | None, host: str
    ) -> tuple[int, dict[str, Any]]:
        try:
            grant = form.get("grant_type", "")
            if grant == JWT_GRANT:
                session = self._jwt(form.get("assertion", ""))
            elif grant == "client_credentials":
                self._client(form, authorization, require_secret=True)
                if host.split(":")[0].lower() in LOGIN_HOSTS:
                    raise OAuthError("invalid_grant", "request not supported on this domain")
                session = self.issue(self.creds.client_id)
            elif grant == "refresh_token":
                self._client(form, authorization, require_secret=False)
                session = self._refresh(form.get("refresh_token", ""))
            elif grant == "password":
                self._client(form, authorization, require_secret=True)
                if form.get("username") != self.creds.username or not hmac.compare_digest(
                    form.get("password", ""), self.creds.password
                ):
                    raise OAuthError("invalid_grant", "authentication failure")
                session = self.issue(self.creds.client_id)
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as err:
            return err.status, err.body
        return 200, self._response(session)

    def revoke(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any] | None]:
        token = form.get("token", "")
        if token in self.sessions:
            del self.sessions[token]
            return 200, None
        if self.refresh_tokens.get(token):
            self.refresh_tokens[token] = False
            for access in [t for t, s in self.sessions.items() if s.refresh_token == token]:
                del self.sessions[access]
            return 200, None
        return 400, {"error": "invalid_token", "error_description": "invalid token"}

    def introspect(
        self, form: Mapping[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        try:
            self._client(form, authorization, require_secret=True)
        except OAuthError as err:
            return 401, err.body
        token = form.get("token", "")
        session = self.authenticate(token, use=False)
        if session is None:
            if self.refresh_tokens.get(token):
                return 200, {
                    "active": True,
                    "client_id": self.creds.client_id,
                    "username": self.creds.username,
                    "token_type": "refresh_token",
                    "scope": SCOPE,
                }
            return 200, {"active": False}
        issued = int(session.issued_at)
        return 200, {
            "active": True,
            "scope": session.scope,
            "client_id": session.client_id,
            "username": session.username,
            "sub": self.identity_url(),
            "token_type": "access_token",
            "exp": int(issued + self.lifetime_s),
            "iat": issued,
            "nbf": issued,
        }

    def authenticate(self, token: str, *, use: bool = True) -> Session | None:
        """The live session for a bearer token, or None (unknown, revoked or expired).

        With ``use`` the call counts toward ``max_calls`` (a test knob: sessions that die after
        N calls); introspection looks without using.
        """
        session = self.sessions.get(token)
        if session is None:
            return None
        worn_out = self.max_calls is not None and session.calls >= self.max_calls
        if self.clock() - session.issued_at >= self.lifetime_s or (use and worn_out):
            del self.sessions[token]
            return None
        session.calls += use
        return session

    def expire_all(self) -> None:
        self.sessions.clear()

    def mint_refresh_token(self) -> str:
        """A refresh token as the web-server flow would have issued it to the integration user."""
        token = f"5Aep861{secrets.token_urlsafe(60)}"
        self.refresh_tokens[token] = True
        return token

    def identity_url(self) -> str:
        return f"{self.base_url()}/id/{self.creds.org_id}/{self.creds.user_id}"

    # -- grants ------------------------------------------------------------------------------

    def _jwt(self, assertion: str) -> Session:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            claims = jwt.decode(
                assertion,
                self._public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims.get("iss") != self.creds.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        audiences = claims.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        if not any(str(a).rstrip("/") in self.audiences for a in audiences):
            raise OAuthError("invalid_grant", "audience is invalid")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self.clock():
            raise OAuthError("invalid_grant", "expired authorization code")
        subject = claims.get("prn") or claims.get("sub")
        if subject != self.creds.username or not self.preauthorized:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self.issue(self.creds.client_id)

    def _client(
        self, form: Mapping[str, str], authorization: str | None, *, require_secret: bool
    ) -> None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                raise OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, secret = decoded.partition(":")
        if client_id != self.creds.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if (require_secret or secret is not None) and not hmac.compare_digest(
            secret or "", self.creds.client_secret
        ):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _refresh(self, refresh_token: str) -> Session:
        if not self.refresh_tokens.get(refresh_token):
            if refresh_token in self.refresh_tokens and self.rotation:
                # Reusing a rotated-out token revokes the current one and its sessions.
                for token, valid in list(self.refresh_tokens.items()):
                    if valid:
                        self.revoke({"token": token})
            raise OAuthError("invalid_grant", "expired access/refresh token")
        if self.rotation:
            self.refresh_tokens[refresh_token] = False
            refresh_token = self.mint_refresh_token()
        return self.issue(self.creds.client_id, refresh_token=refresh_token)

    def issue(self, client_id: str, *, refresh_token: str | None = None) -> Session:
        """A new session for the integration user (what every successful grant ends in)."""
        token = f"{self.creds.org_id[:15]}!{secrets.token_urlsafe(72)}"
        scope = f"{SCOPE} refresh_token" if refresh_token else SCOPE
        session = Session(token, client_id, self.creds.username, self.clock(), scope, refresh_token)
        self.sessions[token] = session
        return session

    def _response(self, session: Session) -> dict[str, Any]:
        issued_at = str(int(session.issued_at * 1000))
        identity = self.identity_url()
        digest = hmac.new(
            self.creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        body: dict[str, Any] = {
            "access_token": session.token,
            "signature": base64.b64encode(digest).decode(),
            "scope": session.scope,
            "instance_url": self.base_url(),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if session.refresh_token and self.rotation:
            body["refresh_token"] = session.refresh_token
        return body
