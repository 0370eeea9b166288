"""The run's command line for its start record, scrubbed, without loading `re` at start-up when it is plainly clean.

The start record is made while the app starts, before the encoder and scrub.py (which needs `re`, 3–7 ms to
import) are loaded. `plainly_clean` decides with string methods alone (a few µs) whether any scrub rule could
match; only if one could is scrub.py imported. It errs towards importing: a wrong "clean" would put a secret on
disk, a wrong "maybe" costs a few milliseconds. So `python app.py` starts without `re`, and
`python app.py --token x` pays for it.
"""

from __future__ import annotations

from obsdash_instrumenters.safety import internal_error

_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:,+- "
_UNSAFE_ONLY = str.maketrans("", "", _SAFE)
# Every scrub rule needs a character outside _SAFE (`=`, `@`, `?`, quotes...), one of these (lower-cased), 13
# digits (a card number) or a huge value. Keep in step with scrub.py; tests/security/test_scrub_unit.py checks.
_TRIGGERS = (
    "sk-", "akia", "asia", "eyj", "gh", "xox", "bearer", "basic", "private", "-----",
    "passw", "passphrase", "pwd", "secret", "token", "key", "auth", "cookie", "session", "jwt", "credential",
    "sig", "csrf", "xsrf",
)  # fmt: skip
FAILED = "[REDACTED:scrub_error]"


def plainly_clean(value: str) -> bool:
    """True when no scrub rule can match `value`; False means "maybe" (scrub it)."""
    if len(value) > 1000 or value.translate(_UNSAFE_ONLY):
        return False
    lowered = value.lower()
    if any(trigger in lowered for trigger in _TRIGGERS):
        return False
    return sum(c.isdigit() for c in value) < 13


def scrubbed(command: str, argv: list[str]) -> tuple[str, list[str]]:
    """The command string and argv as the start record may hold them. Never raises: if scrubbing fails, both are
    replaced by a placeholder (fail closed) and the failure is counted as internal error `scrub`."""
    try:
        if plainly_clean(command) and all(plainly_clean(arg) for arg in argv):
            return command, argv
        from obsdash_instrumenters import scrub

        return _scrubbed_command(command), scrub.argv(argv)
    except BaseException as exc:
        internal_error("scrub", exc)
        return FAILED, [FAILED]


def _scrubbed_command(command: str) -> str:
    """The shell-quoted command (`obsdash wrap` writes it with shlex.join) scrubbed word by word, so that quoting
    cannot hide a value from the scrubber (`'password = '"'"'x'"'"''`); as plain text if it does not parse."""
    import shlex  # `re` is loaded by now

    from obsdash_instrumenters import scrub

    try:
        words = shlex.split(command)
    except ValueError:
        return scrub.text(command)
    return shlex.join(scrub.argv(words))
