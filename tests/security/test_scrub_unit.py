"""The scrubber on its own (scrub.py, commandline.py): each secret shape is replaced and counted, ordinary values
are left exactly as they were, numbers are never touched, caps cut without cutting a secret in two, and the
start-up gate never calls a secret "plainly clean". The end-to-end proof (real processes, the disk searched) is
test_secrets.py."""

from __future__ import annotations

import dataclasses
import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from obsdash_instrumenters import commandline, safety, scrub

from tests.apps.secrets_catalog import SHAPES

FALSE_POSITIVES = [
    "GET",
    "/items/42?page=2&sort=price",
    "http://127.0.0.1:5000/items/42?page=2",
    "https://shop.example.com/checkout/confirm?order=1234567890123456&step=3",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "4bf92f3577b34da6a3ce929d0e0e4736",  # trace id
    "00f067aa0ba902b7",  # span id
    "123e4567-e89b-12d3-a456-426614174000",  # UUID
    "order 4111111111111112 shipped",  # 16 digits, fails Luhn
    "order id 5555-5555-5555-4445",  # grouped, fails Luhn
    "ts=1732492800123456789 took 12.5 ms",  # ns timestamp
    "SELECT id, name, price FROM items WHERE category = ? ORDER BY price LIMIT 20",
    "INSERT INTO orders (customer_id, total_cents) VALUES (?, ?)",
    "UPDATE users SET password_hash = ? WHERE id = ?",
    "input_tokens=1234 output_tokens=56 max_tokens: 4096 token_count=9",
    "status code: 200, exit code=1",
    "author: bob; the task-scheduler-worker-pool-1234 is up",
    "Basic authentication is disabled; bearer of bad news",
    "the session expired, please sign in again",
    "ValueError: invalid literal for int() with base 10: 'abc'",
    '{"role": "user", "content": "which mug goes with the kettle?"}',
    "postgresql-16 listening on 127.0.0.1:5432",
    "v1.2.3-rc.4+build.5",
    "",
]


@pytest.mark.parametrize(("text", "needle", "kind"), SHAPES, ids=[needle[:24] for _, needle, _ in SHAPES])
def test_each_shape_is_replaced_and_counted(text: str, needle: str, kind: str) -> None:
    before = scrub.redactions.get(kind, 0)
    scrubbed = scrub.text(f"before {text}\nafter")
    assert needle not in scrubbed
    assert f"[REDACTED:{kind}]" in scrubbed, scrubbed
    assert scrubbed.startswith("before ") and scrubbed.endswith("\nafter")
    assert scrub.redactions[kind] >= before + 1


def test_shapes_inside_json_text_are_found_after_escapes() -> None:
    """LLM messages are stored as JSON: `\\n` before a key must count as a boundary, not as the letter n."""
    content = json.dumps([{"role": "user", "content": "\n".join(text for text, _, _ in SHAPES) + "\tend"}])
    scrubbed = scrub.text(content)
    assert [needle for _, needle, _ in SHAPES if needle in scrubbed] == []
    assert json.loads(scrubbed)[0]["content"].endswith("\tend")


@pytest.mark.parametrize("value", FALSE_POSITIVES)
def test_ordinary_values_are_untouched(value: str) -> None:
    assert scrub.text(value) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://bob:hunter2@api.example.com/v1/items?api_key=abc123&X-Amz-Signature=deadbeef&page=3",
            "https://[REDACTED:url_credentials]@api.example.com/v1/items?api_key=[REDACTED:api_key]"
            "&X-Amz-Signature=[REDACTED:signature]&page=3",
        ),
        (
            "GET /oauth/callback?code=xyz789&state=ok",
            "GET /oauth/callback?code=[REDACTED:url_param]&state=ok",
        ),
        ("connect db_password=hunter2 host=db", "connect db_password=[REDACTED:password] host=db"),
        ('{"password": "hunter2", "user": "bob"}', '{"password": "[REDACTED:password]", "user": "bob"}'),
        ('{\\"apiKey\\":\\"xyz\\"}', '{\\"apiKey\\":\\"[REDACTED:api_key]\\"}'),
        ("SET password = 'x' WHERE token = ?", "SET password = '[REDACTED:password]' WHERE token = ?"),
        ("Authorization: Bearer abc.def-123", "Authorization: [REDACTED:authorization]"),
        ("Cookie: sid=1; theme=dark\nnext", "Cookie: [REDACTED:cookie]\nnext"),
        ("deploy --password hunter2 --verbose", "deploy --password [REDACTED:password] --verbose"),
    ],
)
def test_the_secret_goes_and_its_context_stays(text: str, expected: str) -> None:
    assert scrub.text(text) == expected


def test_scrubbing_twice_changes_nothing_more() -> None:
    once = scrub.text("\n".join(text for text, _, _ in SHAPES))
    counts = dict(scrub.redactions)
    assert scrub.text(once) == once
    assert scrub.redactions == counts


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("password", "password"),
        ("db.passwd", "password"),
        ("app.secret_key", "secret"),
        ("http.request.header.authorization", "authorization"),
        ("http.request.header.x-api-key", "api_key"),
        ("http.response.header.set-cookie", "cookie"),
        ("user.session_id", "session"),
        ("jwt", "jwt"),
        ("aws.credentials", "credential"),
        ("X-Amz-Signature", "signature"),
        ("access_token", "token"),
        ("csrftoken", "token"),
        ("private_key", "private_key"),
        ("gen_ai.usage.input_tokens", None),
        ("llm.token_count.prompt", None),
        ("gen_ai.request.max_tokens", None),
        ("token_type", None),
        ("session.id", None),
        ("book.author", None),
        ("os.signal", None),
        ("http.route", None),
    ],
)
def test_key_kinds(key: str, kind: str | None) -> None:
    assert scrub.key_kind(key) == kind


def test_numbers_are_never_redacted_even_under_a_sensitive_name() -> None:
    attrs = {
        "gen_ai.usage.input_tokens": 1234,
        "llm.token_count.prompt": 56,
        "token": 42,
        "password": 3.5,
        "session": True,
        "secret": None,
    }
    assert scrub.attributes(dict(attrs)) == attrs


def test_values_under_sensitive_names_and_in_every_container() -> None:
    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    attrs = scrub.attributes(
        {
            "http.request.header.authorization": ("Bearer abc", "Basic xyz"),
            "db.password": "p",
            "payload": b"key sk-ant-api03-abcdefghijklmnopqrstuv",
            "extra": {"user": "bob", "password": "hunter2", "nested": [{"token": "t"}]},
            "login": Login("bob", "hunter2"),
            "empty_secret": "",
            "message": "hello",
        }
    )
    assert attrs["http.request.header.authorization"] == ["[REDACTED:authorization]"] * 2
    assert attrs["db.password"] == "[REDACTED:password]"
    assert attrs["payload"] == "key [REDACTED:anthropic_key]"
    assert attrs["extra"] == {
        "user": "bob",
        "password": "[REDACTED:password]",
        "nested": [{"token": "[REDACTED:token]"}],
    }
    assert (
        attrs["login"]
        == "test_values_under_sensitive_names_and_in_every_container.<locals>.Login(user='bob', password='[REDACTED:password]')"
    )
    assert attrs["empty_secret"] == ""
    assert attrs["message"] == "hello"


def test_llm_content_is_scrubbed_and_cut_to_its_cap_keeping_both_ends() -> None:
    system = "You are the shop assistant. " * 400
    content = f'[{{"role": "system", "content": "{system}"}}, {{"role": "user", "content": "sk-proj-{"a1" * 20} LAST"}}]'
    attrs = scrub.attributes({"gen_ai.input.messages": content, "gen_ai.usage.input_tokens": 10})
    cut = attrs["gen_ai.input.messages"]
    assert len(cut) < scrub.CONTENT_CAP + 50
    assert cut.startswith('[{"role": "system", "content": "You are the shop assistant.')
    assert cut.endswith('"content": "[REDACTED:openai_key] LAST"}]')
    assert f"…[truncated {len(content) - scrub.CONTENT_CAP} chars]…" in cut
    assert attrs["gen_ai.usage.input_tokens"] == 10


def test_llm_content_as_a_structured_log_event_is_scrubbed_and_cut_leaf_by_leaf() -> None:
    """util-genai's EVENT_ONLY mode: the same attribute names on a log event, as lists of dicts, not JSON text."""
    long_text = "tea " * 3000 + "sk-ant-api03-Zx8cV7bN6mQ5wE4rT3yU2iO1pA0sD9fG"
    record = {
        "body": None,
        "attributes": {
            "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": long_text}]}],
            "gen_ai.usage.output_tokens": 7,
        },
    }
    scrub.log(record)
    (message,) = record["attributes"]["gen_ai.input.messages"]
    content = message["parts"][0]["content"]
    assert message["role"] == "user"
    assert content.endswith("tea [REDACTED:anthropic_key]") and "…[truncated " in content
    assert len(content) < scrub.CONTENT_CAP + 50
    assert record["attributes"]["gen_ai.usage.output_tokens"] == 7


def test_any_string_is_cut_at_the_generic_cap() -> None:
    huge = "x" * (1024 * 1024)
    cut = scrub.text(huge)
    assert len(cut) < scrub.STRING_CAP + 50
    assert "…[truncated" in cut


@pytest.mark.parametrize("offset", [-30, -10, 0, 10, 4000, 4090, 4100])
def test_a_secret_crossing_a_cut_is_not_left_in_part(offset: int) -> None:
    """A key placed across the cut point or the edge of the scrubbed piece leaves no 12-character fragment."""
    key = "sk-proj-" + "Zq7" * 20
    half = scrub.CONTENT_CAP // 2
    for position in (half + offset, 3 * half + offset):
        value = ("lorem " * 4000)[:position] + " " + key + " lorem" * 4000
        cut = scrub.text(value, scrub.CONTENT_CAP)
        assert not any(key[i : i + 12] in cut for i in range(len(key) - 12)), (position, cut)


def test_argv_redacts_the_value_after_a_sensitive_flag() -> None:
    args = ["app.py", "--token", "abc", "--password=xyz", "--name", "shop", "-v"]
    assert scrub.argv(args) == [
        "app.py",
        "--token",
        "[REDACTED:token]",
        "--password=[REDACTED:password]",
        "--name",
        "shop",
        "-v",
    ]


def test_resource_command_args_are_scrubbed_like_argv() -> None:
    attrs = {"process.command_args": ("python", "app.py", "--api-key", "k1"), "service.name": "shop"}
    assert scrub.resource(attrs)["process.command_args"] == [
        "python",
        "app.py",
        "--api-key",
        "[REDACTED:api_key]",
    ]


# -- the start-up gate (commandline.py) ---------------------------------------------------------------------
@pytest.mark.parametrize("secret", [text for text, _, _ in SHAPES])
def test_the_start_up_gate_never_calls_a_secret_plainly_clean(secret: str) -> None:
    assert not commandline.plainly_clean(secret)
    assert not commandline.plainly_clean(f"python app.py {secret}")


@pytest.mark.parametrize(
    "command",
    ["python -c pass", "python app.py", "python -m pkg.mod", "/srv/venv/bin/python /srv/app/main.py"],
)
def test_ordinary_commands_start_without_the_scrubber(command: str) -> None:
    assert commandline.plainly_clean(command)


ALPHABET = string.ascii_letters + string.digits + "._/:,+- =@?&'\"-_"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["sk-", "AKIA", "eyJ", "ghp_", "xoxb-", "Bearer ", "Basic ", "token", "4111", "://", "@"]
        )
        | st.text(ALPHABET, max_size=12),
        max_size=8,
    )
)
def test_what_the_gate_passes_the_scrubber_would_not_change(parts: list[str]) -> None:
    value = "".join(parts)
    if commandline.plainly_clean(value):
        assert scrub.text(value) == value


def test_the_gate_scrubs_and_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert commandline.scrubbed("python app.py --token abc", ["app.py", "--token", "abc"]) == (
        "python app.py --token '[REDACTED:token]'",
        ["app.py", "--token", "[REDACTED:token]"],
    )
    monkeypatch.setattr(safety, "_FAULTS", frozenset({"scrubber"}))
    errors = safety.internal_errors.get("scrub", 0)
    assert commandline.scrubbed("python app.py --token abc", ["app.py", "--token", "abc"]) == (
        commandline.FAILED,
        [commandline.FAILED],
    )
    assert commandline.scrubbed("python app.py", ["app.py"]) == (
        "python app.py",
        ["app.py"],
    )  # nothing to scrub
    assert safety.internal_errors["scrub"] == errors + 1
