"""Every way a token can be wrong is a 401 with the error envelope; roles decide 403."""

from __future__ import annotations

import base64
import json

import httpx2
import jwt
import pytest

from tests.support import TEST_SECRET, auth_headers, make_token

MENUS = "/api/v1/menus"


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({}, "unauthenticated", id="missing"),
        pytest.param({"Authorization": "Bearer"}, "unauthenticated", id="empty-bearer"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "unauthenticated", id="basic-scheme"),
        pytest.param({"Authorization": "Bearer not.a.jwt"}, "invalid_token", id="malformed"),
        pytest.param(
            {
                "Authorization": f"Bearer {make_token(secret='another-secret-of-sufficient-length-for-every-hmac-0123456789abcdef')}"
            },
            "invalid_token",
            id="wrong-signature",
        ),
        pytest.param(
            {"Authorization": f"Bearer {make_token(ttl=-10)}"}, "token_expired", id="expired"
        ),
        pytest.param(
            {"Authorization": f"Bearer {make_token(company=None)}"},
            "invalid_token",
            id="no-company",
        ),  # type: ignore[arg-type]
        pytest.param(
            {"Authorization": f"Bearer {make_token(role=None)}"}, "invalid_token", id="no-role"
        ),  # type: ignore[arg-type]
        pytest.param(
            {"Authorization": f"Bearer {make_token(role='waiter')}"},
            "invalid_token",
            id="unknown-role",
        ),
    ],
)
async def test_bad_tokens_are_refused(
    client: httpx2.AsyncClient, headers: dict[str, str], code: str
) -> None:
    response = await client.get(MENUS, headers=headers)

    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"


async def test_alg_none_is_refused(client: httpx2.AsyncClient) -> None:
    token = _unsigned({"sub": "u", "companyId": "acme", "role": "super_admin", "exp": 4102444800})

    response = await client.get(MENUS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_token_without_exp_is_refused(client: httpx2.AsyncClient) -> None:
    token = jwt.encode(
        {"sub": "u", "companyId": "acme", "role": "company_owner"}, TEST_SECRET, "HS256"
    )

    response = await client.get(MENUS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


async def test_hs512_token_with_the_right_secret_is_still_refused(
    client: httpx2.AsyncClient,
) -> None:
    token = jwt.encode(
        {"sub": "u", "companyId": "acme", "role": "company_owner", "exp": 4102444800},
        TEST_SECRET,
        "HS512",
    )

    response = await client.get(MENUS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


@pytest.mark.parametrize("role", ["super_admin", "company_owner", "branch_manager", "call_center"])
async def test_read_roles_may_list(client: httpx2.AsyncClient, role: str) -> None:
    response = await client.get(MENUS, headers=auth_headers(role=role))

    assert response.status_code == 200


async def test_cashier_may_not_read(client: httpx2.AsyncClient) -> None:
    response = await client.get(MENUS, headers=auth_headers(role="cashier"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", ["cashier", "call_center"])
async def test_non_writers_may_not_create(client: httpx2.AsyncClient, role: str) -> None:
    response = await client.post(MENUS, json={}, headers=auth_headers(role=role))

    assert response.status_code == 403


async def test_issuer_and_audience_are_checked_when_configured() -> None:
    from menusync.core.errors import Unauthenticated
    from menusync.core.security import TokenVerifier

    verifier = TokenVerifier(
        algorithm="HS256", key=TEST_SECRET, issuer="https://idp", audience="menusync"
    )
    good = make_token(iss="https://idp", aud="menusync")
    assert verifier.decode(good)["companyId"] == "acme"
    for bad in (
        make_token(iss="https://other", aud="menusync"),
        make_token(iss="https://idp", aud="x"),
        make_token(),
    ):
        with pytest.raises(Unauthenticated):
            verifier.decode(bad)


async def test_rs256_tokens_verify_with_the_public_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from menusync.core.errors import Unauthenticated
    from menusync.core.security import TokenVerifier

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(algorithm="RS256", key=public_pem)
    claims = {"sub": "u", "companyId": "acme", "role": "company_owner", "exp": 4102444800}

    assert verifier.decode(jwt.encode(claims, private, "RS256"))["sub"] == "u"
    # A token HMAC-signed with the public key as secret (algorithm confusion) is refused.
    with pytest.raises(Unauthenticated):
        verifier.decode(jwt.encode(claims, TEST_SECRET, "HS256"))
