"""A learning platform simulated for the LTI tests: a real HTTP server on a local port with
its own RSA key, serving what an LMS serves a tool.

- ``/jwks``: the platform's public keys (the tool checks launch JWTs against them);
- ``/auth``: OIDC authorisation: answers the tool's login redirect with a page that posts a
  signed id_token (a resource-link launch or a deep-linking request) back to the tool;
- ``/token``: OAuth2 client credentials, granted for a client assertion signed by the tool's
  key (checked against the tool's JWKS);
- ``/deep-link-return``: takes the tool's signed deep-linking answer, creating a resource
  link and its line item;
- ``/lineitems/<id>/scores``: AGS scores, for a bearer token the platform issued.

Everything the platform refuses is kept in ``refusals`` with the reason.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests
from jwcrypto.jwk import JWK

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


class Refused(Exception):
    pass


@dataclass
class PlatformUser:
    sub: str
    name: str
    roles: list[str]


@dataclass
class SimulatedPlatform:
    client_id: str = "gantry-tool"
    deployment_id: str = "deployment-1"
    tool_launch_url: str = ""  # the tool's redirect URI, registered with the platform
    tool_jwks: dict | None = None  # the tool's public keys, given ...
    tool_jwks_url: str | None = None  # ... or fetched
    users: dict[str, PlatformUser] = field(default_factory=dict)
    resource_links: dict[str, dict] = field(default_factory=dict)
    line_items: dict[str, dict] = field(default_factory=dict)
    scores: list[dict] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    custom_override: dict | None = None  # a tampering platform: these custom parameters
    host: str = "127.0.0.1"  # the name in the platform's URLs (the server listens on 127.0.0.1)

    def __post_init__(self) -> None:
        self.kid = f"platform-{uuid.uuid4().hex[:8]}"
        self.key = JWK.generate(kty="RSA", size=2048, kid=self.kid)
        self.signing_key = self.key  # a forger signs with another key under the same kid
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://{self.host}:{self.server.server_address[1]}"
        self.users = {
            "learner": PlatformUser("learner-1", "Lee Learner", [ROLE + "Learner"]),
            "teacher": PlatformUser("teacher-1", "Tess Teacher", [ROLE + "Instructor"]),
        }
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def issuer(self) -> str:
        return self.url

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what a person does in the platform ---------------------------------------------

    def login_url(self, tool_login_url: str, *, user: str, hint: str, target: str) -> str:
        """The third-party login initiation the platform sends the browser to."""
        query = {
            "iss": self.issuer,
            "login_hint": user,
            "target_link_uri": target,
            "lti_message_hint": hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }
        return f"{tool_login_url}?{urlencode(query)}"

    # --- messages ------------------------------------------------------------------------

    def _base_claims(self, user: PlatformUser, nonce: str, message_type: str) -> dict:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "sub": user.sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": user.name,
            "given_name": user.name.split()[0],
            "family_name": user.name.split()[-1],
            "email": f"{user.sub}@platform.test",
            LTI + "message_type": message_type,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "roles": user.roles,
            LTI + "context": {"id": "course-1", "title": "Neuroradiology 101"},
        }

    def id_token(self, *, user: str, hint: str, nonce: str) -> str:
        person = self.users[user]
        if hint == "deep-link":
            claims = self._base_claims(person, nonce, "LtiDeepLinkingRequest")
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": f"{self.url}/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["window"],
                "accept_multiple": False,
                "data": "opaque-platform-data",
            }
            claims[LTI + "target_link_uri"] = self.tool_launch_url
        else:
            link = self.resource_links[hint]
            claims = self._base_claims(person, nonce, "LtiResourceLinkRequest")
            claims[LTI + "resource_link"] = {"id": hint, "title": link["title"]}
            claims[LTI + "target_link_uri"] = link["url"]
            claims[LTI + "custom"] = self.custom_override or link["custom"]
            claims[AGS] = {
                "scope": AGS_SCOPES,
                "lineitems": f"{self.url}/lineitems",
                "lineitem": f"{self.url}/lineitems/{link['line_item']}",
            }
        return jwt.encode(
            claims,
            self.signing_key.export_to_pem(private_key=True, password=None),
            "RS256",
            headers={"kid": self.kid},
        )

    def authorize(self, query: dict[str, str]) -> tuple[str, dict[str, str]]:
        """OIDC authorisation: where to post and what (id_token, state)."""
        if query.get("client_id") != self.client_id:
            raise Refused("unknown client_id")
        if query.get("redirect_uri") != self.tool_launch_url:
            raise Refused(f"redirect_uri {query.get('redirect_uri')} is not registered")
        for name, value in (("response_type", "id_token"), ("scope", "openid")):
            if query.get(name) != value:
                raise Refused(f"{name} must be {value}")
        token = self.id_token(
            user=query["login_hint"], hint=query["lti_message_hint"], nonce=query["nonce"]
        )
        return query["redirect_uri"], {"id_token": token, "state": query["state"]}

    def _tool_key(self, token: str) -> Any:
        keys = self.tool_jwks or requests.get(self.tool_jwks_url, timeout=10).json()
        kid = jwt.get_unverified_header(token).get("kid")
        for key in keys["keys"]:
            if key.get("kid") == kid:
                return jwt.PyJWK(key).key
        raise Refused(f"no tool key with kid {kid}")

    def grant_token(self, form: dict[str, str]) -> dict:
        if form.get("grant_type") != "client_credentials":
            raise Refused("grant_type must be client_credentials")
        assertion = form.get("client_assertion", "")
        claims = jwt.decode(
            assertion,
            self._tool_key(assertion),
            algorithms=["RS256"],
            audience=f"{self.url}/token",
        )
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            raise Refused("the client assertion is not the tool's")
        token = secrets.token_hex(16)
        self.tokens[token] = form.get("scope", "").split()
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": form.get("scope", ""),
        }

    def deep_link_return(self, form: dict[str, str]) -> str:
        token = form.get("JWT", "")
        claims = jwt.decode(
            token, self._tool_key(token), algorithms=["RS256"], audience=self.issuer
        )
        if claims["iss"] != self.client_id:
            raise Refused("the deep-linking answer is not from the tool")
        if claims[LTI + "message_type"] != "LtiDeepLinkingResponse":
            raise Refused("not a deep-linking response")
        if claims[LTI + "deployment_id"] != self.deployment_id:
            raise Refused("wrong deployment")
        if claims.get(DL + "data") != "opaque-platform-data":
            raise Refused("the tool did not return the platform's data")
        for item in claims[DL + "content_items"]:
            n = len(self.resource_links) + 1
            line_item = f"li-{n}"
            self.line_items[line_item] = {**item["lineItem"], "resourceLinkId": f"rl-{n}"}
            self.resource_links[f"rl-{n}"] = {
                "title": item["title"],
                "url": item["url"],
                "custom": item.get("custom", {}),
                "line_item": line_item,
            }
        return ", ".join(self.resource_links)

    def take_score(self, line_item: str, authorization: str, body: bytes, ctype: str) -> None:
        scopes = self.tokens.get(authorization.removeprefix("Bearer "))
        if scopes is None:
            raise Refused("unknown bearer token")
        if AGS_SCOPES[2] not in scopes:
            raise Refused("the token has no score scope")
        if ctype != "application/vnd.ims.lis.v1.score+json":
            raise Refused(f"wrong content type {ctype}")
        if line_item not in self.line_items:
            raise Refused(f"no line item {line_item}")
        self.scores.append({"line_item": line_item, **json.loads(body)})


JSON, HTML = "application/json", "text/html"


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def route(
    platform: SimulatedPlatform, method: str, url: str, headers: Any, body: bytes
) -> tuple[int, str, str]:
    """(status, body, content type) of one request to the platform."""
    parts = urlsplit(url)
    path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
    routes = {
        ("GET", "/jwks"): lambda: json.dumps({"keys": [json.loads(platform.key.export_public())]}),
        ("GET", "/auth"): lambda: auto_post_page(*platform.authorize(query)),
        ("POST", "/token"): lambda: json.dumps(platform.grant_token(_form(body))),
        ("POST", "/deep-link-return"): lambda: (
            f"<p id=added>Added {html.escape(platform.deep_link_return(_form(body)))}</p>"
        ),
    }
    handler = routes.get((method, path))
    if method == "POST" and path.startswith("/lineitems/") and path.endswith("/scores"):
        line_item, auth, ctype = (
            path.split("/")[2],
            headers.get("Authorization", ""),
            headers.get("Content-Type", ""),
        )

        def handler() -> str:
            platform.take_score(line_item, auth, body, ctype)
            return "{}"

    if handler is None:
        return 404, "{}", JSON
    try:
        answer = handler()
    except (Refused, KeyError, jwt.PyJWTError) as exc:
        platform.refusals.append(f"{method} {path}: {exc}")
        return 400, json.dumps({"error": str(exc)}), JSON
    return 200, answer, HTML if answer.startswith("<") else JSON


def _handler(platform: SimulatedPlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            status, text, ctype = route(platform, method, self.path, self.headers, body)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    return Handler


def auto_post_page(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        f'<form id="post" method="post" action="{html.escape(action)}">{inputs}'
        '<button type="submit">Continue</button></form>'
        "<script>document.getElementById('post').submit()</script>"
    )


class _FormParser(HTMLParser):
    def __init__(self, form_id: str | None) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and not self.action and self.form_id in (None, a.get("id")):
            self.action, self.inside = a.get("action") or "", True
        if tag == "input" and self.inside and a.get("name"):
            self.fields[a["name"] or ""] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def form_of(page: str, form_id: str | None = None) -> tuple[str, dict[str, str]]:
    """A form of an HTML page (the one with ``form_id``, or the first): action and fields."""
    parser = _FormParser(form_id)
    parser.feed(page)
    return parser.action, parser.fields
