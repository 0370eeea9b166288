"""The secrets the S1 tests seed, shared by the app that seeds them (secrets_app.py) and the tests that search for
them (tests/security/). Every value is made up and distinctive, so a hit on disk can only be a leak.

- SHAPES: (text as it appears in the wild, the secret part that must never reach disk, the redaction kind) for
  every shape the scrubber recognises inside any string.
- KEYED: (attribute name, value) — a value that is a secret only because of the name it sits under.
- SOURCE: literals written on the lines of secrets_app.py that raise, so they appear in tracebacks.
"""

from __future__ import annotations

SHAPES: list[tuple[str, str, str]] = [
    ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "openai_key"),
    ("sk-Qw7eR4tY1uI8oP5aS2dF9gH6jK3lZ0xC", "sk-Qw7eR4tY1uI8oP5aS2dF9gH6jK3lZ0xC", "openai_key"),
    (
        "sk-ant-api03-Zx8cV7bN6mQ5wE4rT3yU2iO1pA0sD9fG",
        "sk-ant-api03-Zx8cV7bN6mQ5wE4rT3yU2iO1pA0sD9fG",
        "anthropic_key",
    ),
    ("AKIAZ7Q3XK9PLM2RT4VB", "AKIAZ7Q3XK9PLM2RT4VB", "aws_access_key"),
    ("ASIAY4N8QW2ER6TY1UIO", "ASIAY4N8QW2ER6TY1UIO", "aws_access_key"),
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzZWVkLXVzZXItNzcifQ.c2lnbmF0dXJlLXNlZWQtODg",
        "eyJzdWIiOiJzZWVkLXVzZXItNzcifQ",
        "jwt",
    ),
    ("Bearer b3ArEr-T0ken.Seed_77", "b3ArEr-T0ken.Seed_77", "bearer_token"),
    ("Basic dXNlcjpzM2NyM3RQYXNzU2VlZA==", "dXNlcjpzM2NyM3RQYXNzU2VlZA", "basic_auth"),
    ("ghp_R8sT5uV2wX9yZ6aB3cD0eF7gH4iJ1kL8mN5o", "ghp_R8sT5uV2wX9yZ6aB3cD0eF7gH4iJ1kL8mN5o", "github_token"),
    (
        "github_pat_11SEED0123456789_abcDEFghiJKLmnoPQRstu",
        "github_pat_11SEED0123456789_abcDEFghiJKLmnoPQRstu",
        "github_token",
    ),
    ("xoxb-2048-4096-SlackSeedT0ken", "xoxb-2048-4096-SlackSeedT0ken", "slack_token"),
    ("4111 1111 1111 1111", "4111 1111 1111 1111", "card_number"),
    ("5500-0000-0000-0004", "5500-0000-0000-0004", "card_number"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAseedPrivKeyBody\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEAseedPrivKeyBody",
        "private_key",
    ),
    ("password=Hunt3r2Seed", "Hunt3r2Seed", "password"),
    ("passwd: PasswdSeed41", "PasswdSeed41", "password"),
    ("pwd=PwdSeed42", "PwdSeed42", "password"),
    ('"client_secret": "CliSecr3tSeed"', "CliSecr3tSeed", "secret"),
    ("api_key=KvApiKeySeed", "KvApiKeySeed", "api_key"),
    ("x-api-key: XApiKeySeed43", "XApiKeySeed43", "api_key"),
    ("access_token=AccTokSeed44", "AccTokSeed44", "token"),
    ("auth=AuthKvSeed45", "AuthKvSeed45", "authorization"),
    ("Authorization: Bearer AuthzHdrSeed46", "AuthzHdrSeed46", "authorization"),
    ("Cookie: sid=CookieHdrSeed47; theme=dark", "CookieHdrSeed47", "cookie"),
    ("session_id=SessKvSeed48", "SessKvSeed48", "session"),
    ("jwt=JwtKvSeed49", "JwtKvSeed49", "jwt"),
    ("private_key=PrivKvSeed50", "PrivKvSeed50", "private_key"),
    ("credentials=CredKvSeed51", "CredKvSeed51", "credential"),
    ("signature=SigKvSeed52", "SigKvSeed52", "signature"),
    ("UPDATE users SET password = 'SqlPwdSeed53' WHERE id = 7", "SqlPwdSeed53", "password"),
    ("--password FlagPwdSeed54", "FlagPwdSeed54", "password"),
    ("postgresql://app:UrlPassSeed55@db.internal:5432/shop", "UrlPassSeed55", "url_credentials"),
    (
        "https://s3.example.com/b/o?X-Amz-Credential=AmzCredSeed56&X-Amz-Signature=AmzSigSeed57"
        "&X-Amz-Security-Token=AmzTokSeed58&page=2",
        "AmzSigSeed57",
        "signature",
    ),
    ("https://maps.example.com/api?key=QueryKeySeed59&code=OauthCodeSeed60", "QueryKeySeed59", "url_param"),
]

# Secrets hidden in a SHAPES text besides its main one (the other query parameters above).
EXTRA_NEEDLES = ["AmzCredSeed56", "AmzTokSeed58", "OauthCodeSeed60"]

KEYED: list[tuple[str, str]] = [
    ("db.password", "KeyedPwdSeed61"),
    ("app.secret", "KeyedSecretSeed62"),
    ("user.api_key", "KeyedApiKeySeed63"),
    ("http.request.header.x-api-key", "KeyedHdrSeed64"),
    ("auth.token", "KeyedTokenSeed65"),
    ("authorization", "KeyedAuthzSeed66"),
    ("request.cookie", "KeyedCookieSeed67"),
    ("set-cookie", "KeyedSetCookieSeed68"),
    ("web.session", "KeyedSessionSeed69"),
    ("jwt", "KeyedJwtSeed70"),
    ("tls.private_key", "KeyedPrivSeed71"),
    ("aws.credential", "KeyedCredSeed72"),
    ("webhook.signature", "KeyedSigSeed73"),
]

SOURCE = ["SrcPwdSeed80", "sk-proj-SrcLineSeed81aBcDeFgHiJkLmNoP"]

URL_NEEDLES = ["UrlUserPassSeed90", "UrlApiKeySeed91", "UrlAmzSigSeed92", "UrlTokenSeed93"]
HEADER_NEEDLES = ["HdrBearerSeed94", "HdrApiKeySeed95", "HdrCookieSeed96"]


def needles() -> list[str]:
    """Every secret part seeded by secrets_app.py: none of them may be found on disk."""
    return [
        *(needle for _, needle, _ in SHAPES),
        *EXTRA_NEEDLES,
        *(value for _, value in KEYED),
        *SOURCE,
        *URL_NEEDLES,
        *HEADER_NEEDLES,
    ]
