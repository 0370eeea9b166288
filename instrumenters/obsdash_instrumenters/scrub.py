"""Secret scrubbing: every record is scrubbed on its way to the spool, so no secret reaches the disk (S1, S2).

Replaced by `[REDACTED:<kind>]`, and counted by kind in `redactions` (the run records report it):
- a string under a sensitive key name (password, token, authorization, cookie...: `key_kind`), whole;
- secret shapes anywhere in a string (`_RULES`): OpenAI/Anthropic/AWS/GitHub/Slack keys, JWTs, Bearer and Basic
  credentials, Luhn-valid card numbers, private keys, `password=...` pairs and `--password ...` flags in free text,
  `user:pass@` and sensitive query parameters in URLs.
Numbers and booleans are never touched: `gen_ai.usage.input_tokens` stays a number. LLM message content is cut to
CONTENT_CAP and any other string to STRING_CAP (`…[truncated N chars]…` marks the cut).

Imported with the encoder. At start-up only when the command line may hold a secret: it needs `re` (3–7 ms to
import), which the start-up path avoids, and commandline.py decides without `re`. Callers must not let it raise
into the app: encode.py drops a record it failed on (fail closed). docs/security.md says what it cannot catch.

Cost (`python -m bench.scrub`: encode with and without the scrubber, interleaved, thread CPU time, on this 2-core
box under load): a Flask server span of 12 attributes 8.3 → 11.6 µs (+3.3 µs, 1.40×), which at the 3.5 µs
encode of an idle machine is about +1.4 µs; a log line 2.5 → 4.7 µs. Two things make it cheap: attribute names and
clean values repeat, so verdicts are cached, and every rule of the value regex starts with a literal character,
which lets `re` skip positions that cannot start a match (a case-insensitive keyword alternation was 5–8x
slower). Import: 5.5 ms (compiling the regexes), once, when the encoder loads.
"""

from __future__ import annotations

import re

from obsdash_instrumenters.safety import fault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

redactions: dict[str, int] = {}
"""Values replaced so far, by kind (plus `truncated`: values cut at a cap). Read by lifecycle.counters()."""

STRING_CAP = 64 * 1024
"""Any one string value: one huge attribute (a 1 MB request body logged by mistake) must not bloat every
segment; 64 KiB still holds a long SQL statement or a deep stack trace."""
CONTENT_CAP = 4 * 1024
"""LLM message content (S2). Each call repeats the whole conversation so far, so stored text grows with the square
of the conversation's length; 4 KiB per attribute keeps a call's content under 16 KiB. The cut keeps the first
and last 2 KiB: the system prompt's start and the latest turn, which is what a reader looks for."""
_MARGIN = 4096
"""Scrubbed around a cut and then thrown away, so a secret crossing the cut (up to 4 KiB long) is caught whole."""
_CACHE_SIZE = 4096
_CLEAN_MAX_LEN = 512  # a SQL statement; 4096 of them take 2 MB at most

CONTENT_KEYS = frozenset(
    (
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
    )
)
"""What opentelemetry-util-genai 1.3b0 writes with message capture on (span attributes with SPAN_ONLY; the same
names, as structured values, on `gen_ai.client.inference.operation.details` log events with EVENT_ONLY), plus
the older `gen_ai.prompt`/`completion` and OpenInference's `input.value`/`output.value`."""
CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages.")

# Attribute names, matched on the last dotted segment, lower-cased (`http.request.header.authorization`).
_KEY = re.compile(
    r"(?P<password>passw(?:or)?d|passphrase|(?<![a-z])pwd(?![a-z]))"
    r"|(?P<private_key>private[_-]?key)"
    r"|(?P<api_key>api[_-]?key|(?:signing|encryption|master|client|access)[_-]?key)"
    r"|(?P<secret>secret)"
    r"|(?P<authorization>(?<![a-z])auth(?![a-z])|authori[sz]ation|authentication)"
    r"|(?P<cookie>cookie)"
    r"|(?P<session>session)"
    r"|(?P<jwt>jwt)"
    r"|(?P<credential>credential)"
    r"|(?P<signature>signature|(?<![a-z])sig(?![a-z]))"
    r"|(?P<token>token(?!s|[_-]?(?:count|usage|type|limit|budget)|izer)|csrf|xsrf)"  # not token counts
)
_CONTENT = "\0content"  # verdict of a content key; "" = plain, anything else = the kind of secret
_key_verdicts: dict[Any, str] = {}
_clean: set[str] = set()

_VALUE = re.compile(  # the value after a key: quoted (also JSON-escaped quotes), or bare with its auth scheme
    r"""(?:"[^"\n]*+"?|'[^'\n]*+'?|\\"(?:[^"\\\n]|\\[^"\n])*+(?:\\")?"""
    r"""|(?:(?i:bearer|basic|token|digest)[ \t]++)?[^\s,;&"'<>(){}\[\]\\]++)"""
)
_KV_TAIL = r"[\w.-]{0,40}+(?:\\?[\"'])?[ \t]*[=:][ \t]*"  # the rest of the key, its quote, the separator
# Key words of `key=value` pairs in free text, by first letter. The rest of the key is read in the replacement
# (`db_password`, `X-Amz-Signature`); `key` and `code` count only as query parameters (`?key=`, `&code=`).
_KV_WORDS = {
    "p": "assw|wd|assphrase",
    "s": "ecret|ession|ig",
    "t": "oken",
    "k": "ey",
    "a": "uth",
    "c": "ookie|redential|srf|ode",
    "j": "wt",
    "x": "srf",
}
_LINE = r"""(?:[^\r\n"\\]++|\\(?![nrt"]))++"""  # to the end of the line, also in JSON text (`\n`, `"`)
_FLAG_WORDS = "passw|pwd|passphrase|secret|token|key|auth|cookie|session|jwt|credential|sig|csrf|xsrf"


def _alone(start: str, before: str = r"[\w-]") -> str:
    """A lookbehind, placed right after `start` (a rule's first characters, fixed width): no `before` character
    precedes them, or a JSON escape does (`\\n`), since prompts and messages are stored as JSON text."""
    return rf"(?:(?<!{before}{start})|(?<=\\[nrt]{start}))"


# (rule, first character, rest). Every rule starts with a literal character, so `re` skips positions by a
# character set (a case-insensitive or class-first rule makes it try every position: 5-8x slower), and the
# boundary test comes after the rule's distinctive letters (`sk-` then `_alone("sk-")`), where it rarely runs.
_RULES: list[tuple[str, str, str]] = [
    ("url_credentials", ":", r"//(?:[^\s/?#@]++@)++"),
    (
        "private_key",
        "-",
        r"----BEGIN[A-Z ]{0,40}PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z ]{0,40}PRIVATE KEY-----|\Z)",
    ),
    ("flag", "-", _alone("-") + r"-?[\w-]{0,30}?(?i:" + _FLAG_WORDS + r")[\w-]{0,30}+[ \t]++"),
    ("anthropic_key", "s", "k-ant-" + _alone("sk-ant-") + r"[\w-]{16,}+"),
    ("openai_key", "s", "k-" + _alone("sk-") + r"[\w-]{20,}+"),
    ("aws_access_key", "A", "[KS]IA" + _alone("A[KS]IA", "[A-Za-z0-9]") + r"[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("jwt", "e", "yJ" + _alone("eyJ") + r"[\w-]{4,}+\.eyJ[\w-]{4,}+\.[\w-]*+"),
    ("github_token", "g", "h[pousr]_" + _alone("gh[pousr]_") + "[A-Za-z0-9]{20,}+"),
    ("github_token", "g", "ithub_pat_" + _alone("github_pat_") + r"\w{20,}+"),
    ("slack_token", "x", "ox[abposr]-" + _alone("xox[abposr]-") + r"[\w-]{8,}+"),
    *[("bearer_token", c, r"(?i:earer)[ \t]++[\w.~+/=-]{8,}+") for c in "Bb"],
    *[("basic_auth", c, r"(?i:asic)[ \t]++[A-Za-z0-9+/]{6,}+={0,2}") for c in "Bb"],
    *[("card_number", c, r"\d{3}" + _alone(r"\d{4}") + r"(?:[ -]?\d{3,7}){2,4}(?![\w-])") for c in "23456"],
    *[("cookie_header", c, r"(?i:ookie)[\"']?[ \t]*:[ \t]*" + _LINE) for c in "Cc"],
    *[("cookie_header", c, r"(?i:et-cookie)[\"']?[ \t]*:[ \t]*" + _LINE) for c in "Ss"],
    *[
        ("kv", c, "(?i:" + words + ")" + _KV_TAIL)
        for first, words in _KV_WORDS.items()
        for c in (first, first.upper())
    ],
]


def _compile_rules(rules: list[tuple[str, str, str]]) -> re.Pattern[str]:
    """One regex; rules sharing a first character share one branch, each rule in a group named `<rule>__<n>`.

    `re` tries a branch's alternatives in order at each position whose character may start one, so the branches
    of frequent characters go first (English letter frequency, then digits and the rest): 8% less time on a mix
    of log text, paths and SQL than in rule order."""
    branches: dict[str, list[str]] = {}
    for n, (rule, first, rest) in enumerate(rules):
        branches.setdefault(first, []).append(f"(?P<{rule}__{n}>{rest})")
    order = "etascpkgbxj234561-:"
    ranked = sorted(branches, key=lambda c: order.find(c) if c in order else len(order))
    return re.compile(
        "|".join(re.escape(first) + "(?:" + "|".join(branches[first]) + ")" for first in ranked)
    )


_SHAPES = _compile_rules(_RULES)
# Without `=` or `:` no pair, cookie header or URL credentials can match: most log messages and exception texts
# take this regex, whose first characters are rarer (2.5x faster on a plain log message).
_SHAPES_WITHOUT_PAIRS = _compile_rules(
    [r for r in _RULES if r[0] not in ("kv", "cookie_header", "url_credentials")]
)
_KV_KEY = re.compile(r"[\w.-]*+")
_PLACEHOLDER = re.compile(r"(?:\?|%s|%\(\w+\)s|\$\d+|:\w+|\**|None|null|true|false|\[REDACTED.*)", re.I)


# -- records -------------------------------------------------------------------------------------------------
def span(record: dict[str, Any]) -> None:
    """Scrub an encoded span's name, status message, attributes and events, in place."""
    fault("scrubber")
    record["name"] = text(record["name"]) if isinstance(record["name"], str) else record["name"]
    if record.get("status_message"):
        record["status_message"] = text(str(record["status_message"]))
    attributes(record["attributes"])
    for event in record["events"]:
        event["name"] = text(str(event["name"]))
        attributes(event["attributes"])


def log(record: dict[str, Any]) -> None:
    """Scrub a log line's body and attributes (`extra=` fields, exception attributes, GenAI events), in place."""
    fault("scrubber")
    if record.get("body") is not None:
        record["body"] = text(str(record["body"]))
    attributes(record["attributes"])


def metric_point(record: dict[str, Any]) -> None:
    """Scrub a metric point's attributes, in place."""
    fault("scrubber")
    attributes(record["attributes"])


def resource(attrs: dict[str, Any]) -> dict[str, Any]:
    """Scrub resource attributes (OTEL_RESOURCE_ATTRIBUTES, detectors' process.command_args...), in place."""
    fault("scrubber")
    args = attrs.get("process.command_args")
    if isinstance(args, (list, tuple)):
        attrs["process.command_args"] = argv([str(arg) for arg in args])
    return attributes(attrs)


def argv(args: list[str]) -> list[str]:
    """A command's arguments: each scrubbed as text, and the value after a `--password`-like flag redacted."""
    fault("scrubber")
    out = [text(arg) for arg in args]
    for i in range(len(out) - 1):
        flag = out[i]
        if flag.startswith("-") and "=" not in flag and not out[i + 1].startswith("-"):
            kind = key_kind(flag.lstrip("-"))
            if kind and out[i + 1]:
                out[i + 1] = _redacted(kind)
    return out


# -- values --------------------------------------------------------------------------------------------------
def attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """Scrub attribute values in place (names are names, not data) and return the dict."""
    verdicts, clean = _key_verdicts, _clean
    for key, value in attrs.items():
        kind = type(value)
        if kind is str:  # the common case, kept inline: a known name and a value seen clean before
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = _verdict(key)
            if not verdict:
                if value not in clean:
                    attrs[key] = text(value)
                continue
        elif kind in _SCALARS:  # numbers are never secrets: token counts survive
            continue
        else:
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = _verdict(key)
        attrs[key] = _value(value, verdict)
    return attrs


_SCALARS = frozenset((int, float, bool, type(None)))


def _value(value: Any, verdict: str) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        string = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
        if verdict == _CONTENT:
            return text(string, CONTENT_CAP)
        if verdict:
            return _redacted(verdict) if string else string
        return text(string)
    if value is None or isinstance(value, (int, float)):  # numbers are never secrets: token counts survive
        return value
    if isinstance(value, (list, tuple)):
        return [_value(item, verdict) for item in value]
    if isinstance(value, dict):
        if verdict:  # everything under a sensitive or content key inherits its verdict
            return {k: _value(v, verdict) for k, v in value.items()}
        return attributes(dict(value))
    return _value(str(value), verdict)  # what the encoder would write for it anyway (dataclasses too)


def key_kind(key: str) -> str | None:
    """The kind of secret a value under this attribute name holds ("password", "token"...), or None."""
    match = _KEY.search(key.rpartition(".")[2].lower())
    return match.lastgroup if match else None


def _verdict(key: Any) -> str:
    name = str(key)
    if name in CONTENT_KEYS or name.startswith(CONTENT_PREFIXES):
        verdict = key_kind(name) or _CONTENT  # gen_ai.prompt.variable.api_key is still an API key
    else:
        verdict = key_kind(name) or ""
    if len(_key_verdicts) >= _CACHE_SIZE:
        _key_verdicts.clear()
    _key_verdicts[key] = verdict
    return verdict


def text(value: str, cap: int = STRING_CAP) -> str:
    """A string with every secret shape replaced and cut to `cap` characters; the same object when clean."""
    if len(value) > cap:
        return _cut(value, cap)
    if value in _clean:
        return value
    shapes = _SHAPES if "=" in value or ":" in value else _SHAPES_WITHOUT_PAIRS
    match = shapes.search(value)
    if match is not None:
        scrubbed = _replace_all(value, shapes, match)
        if scrubbed != value:
            return scrubbed
    if len(value) <= _CLEAN_MAX_LEN:
        if len(_clean) >= _CACHE_SIZE:
            _clean.clear()  # bounded; the values that repeat come back within a few records
        _clean.add(value)
    return value


def _replace_all(value: str, shapes: re.Pattern[str], match: re.Match[str] | None) -> str:
    """Each match replaced, left to right. A replacement may end past its match: a pair's value is read after
    its key matched, with its own regex (one copy of it, not one per key word: import 8 → 5.5 ms)."""
    out: list[str] = []
    done = 0
    while match is not None:
        rule = (match.lastgroup or "").partition("__")[0]
        replacement, end = _REPLACERS.get(rule, _whole)(match, rule)
        out += (value[done : match.start()], replacement)
        done = end
        match = shapes.search(value, end)
    out.append(value[done:])
    return "".join(out)


def _cut(value: str, cap: int) -> str:
    """Keep the first and last cap/2 characters, scrubbed with a margin either side so no secret is cut in two."""
    half = cap // 2
    piece = half + _MARGIN
    margin = _MARGIN if len(value) > piece else 0  # the pieces are the whole value: nothing crosses their end
    head = _replace_all(value[:piece], _SHAPES, _SHAPES.search(value[:piece]))
    tail = _replace_all(value[-piece:], _SHAPES, _SHAPES.search(value[-piece:]))
    # A secret crossing the end of a scrubbed piece may be unrecognised; it lies in the last _MARGIN characters
    # (redactions before it only shorten the piece), so those are never kept.
    head = head[: max(0, min(half, len(head) - margin))]
    tail = tail[len(tail) - max(0, min(half, len(tail) - margin)) :]
    _count("truncated")
    return f"{head}…[truncated {len(value) - 2 * half} chars]…{tail}"


# -- replacements: (text, where the scan goes on) ------------------------------------------------------------
def _count(kind: str) -> None:
    redactions[kind] = redactions.get(kind, 0) + 1


def _redacted(kind: str) -> str:
    _count(kind)
    return f"[REDACTED:{kind}]"


def _whole(match: re.Match[str], rule: str) -> tuple[str, int]:
    return _redacted(rule), match.end()


def _url_credentials(match: re.Match[str], rule: str) -> tuple[str, int]:
    if match.group().startswith("://[REDACTED:"):
        return match.group(), match.end()
    return "://" + _redacted(rule) + "@", match.end()


def _cookie_header(match: re.Match[str], rule: str) -> tuple[str, int]:
    """`Cookie: a=1; b=2` to the end of the line: every cookie in it."""
    head, colon, value = match.group().partition(":")
    stripped = value.lstrip(" \t")
    if _PLACEHOLDER.fullmatch(stripped):
        return match.group(), match.end()
    return head + colon + value[: len(value) - len(stripped)] + _redacted("cookie"), match.end()


def _scheme_token(match: re.Match[str], rule: str) -> tuple[str, int]:
    """`Bearer <token>` / `Basic <base64>`: only when the token looks random, not `Basic authentication`."""
    token = match.group().split(None, 1)[1]
    if any(c.isdigit() or c in "+/=_.~-" for c in token) or token[1:] != token[1:].lower():
        return match.group()[: len(match.group()) - len(token)] + _redacted(rule), match.end()
    return match.group(), match.end()


def _card_number(match: re.Match[str], rule: str) -> tuple[str, int]:
    digits = [int(c) for c in match.group() if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return match.group(), match.end()
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return (_redacted(rule) if total % 10 == 0 else match.group()), match.end()  # Luhn: most ids fail it


def _kv(match: re.Match[str], rule: str) -> tuple[str, int]:
    """`password=...`, `"token": "..."`, `?X-Amz-Signature=...`: the key is read leftwards from the key word."""
    string, start = match.string, match.start()
    left = start
    while left > 0 and start - left < 64 and (string[left - 1].isalnum() or string[left - 1] in "_.-"):
        if string[left - 2 : left - 1] == "\\" and string[left - 1] in "nrt":
            break  # `\npassword=` in JSON text: the key starts after the escape
        left -= 1
    key = _KV_KEY.match(match.group())
    name = string[left:start] + (key.group() if key else "")
    kind = key_kind(name)
    in_query = match.group().endswith("=") and string[left - 1 : left] in ("?", "&")
    if kind is None and in_query and name.lower() in ("key", "code"):
        kind = "url_param"  # `?key=` (Google APIs), `&code=` (OAuth): secrets in a query, words elsewhere
    return _with_value(match, kind)


def _flag(match: re.Match[str], rule: str) -> tuple[str, int]:
    """`--password hunter2` in a command line or a log of one."""
    return _with_value(match, key_kind(match.group().strip().lstrip("-")))


def _with_value(match: re.Match[str], kind: str | None) -> tuple[str, int]:
    """The matched key as it is, then the value after it: redacted (its quotes kept) when `kind` is set."""
    value = _VALUE.match(match.string, match.end()) if kind else None
    if value is None:
        return match.group(), match.end()  # not a secret's key: scanning goes on into the value
    found = value.group()
    quote = '\\"' if found.startswith('\\"') else found[:1] if found[:1] in "\"'" else ""
    if _PLACEHOLDER.fullmatch(found[len(quote) :].removesuffix(quote)):
        return match.group(), match.end()  # `password = ?` in SQL, `token: None`, `""`, already redacted
    return match.group() + quote + _redacted(kind or "") + quote, value.end()


_REPLACERS: dict[str, Callable[[re.Match[str], str], tuple[str, int]]] = {
    "url_credentials": _url_credentials,
    "cookie_header": _cookie_header,
    "bearer_token": _scheme_token,
    "basic_auth": _scheme_token,
    "card_number": _card_number,
    "kv": _kv,
    "flag": _flag,
}
