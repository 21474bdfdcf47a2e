"""`--echo-config`: the effective configuration as a shell env file, as travis-ci/worker
prints it, with secrets redacted so the output can be pasted into a support ticket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from travis_worker.compat.durations import format_go_duration
from travis_worker.config import ENV_PREFIX, Settings
from travis_worker.util.redact import redact


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`: double quotes, C-style escapes, printable Unicode kept."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
               "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}  # fmt: skip
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_go_duration(value)
    return str(value)


def go_time_string(moment: datetime) -> str:
    """Go's `time.Time.String()` for a UTC time: `2024-05-01 12:00:00.123456 +0000 UTC`."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return f"{text} +0000 UTC"


def echo_config(
    settings: Settings, provider_keys: Mapping[str, str], now: datetime | None = None
) -> str:
    moment = now or datetime.now(UTC)
    lines = [f"# travis-worker env config generated {go_time_string(moment)}"]
    for name in sorted(Settings.model_fields, key=lambda field: field.replace("_", "-")):
        if Settings.is_special(name):
            continue
        upper = name.upper()
        value = redact(upper, _render(getattr(settings, name)))
        lines.append(f"export {ENV_PREFIX}{upper}={go_quote(value)}")
    lines += ["", "# travis-worker provider config:"]
    prefix = f"{ENV_PREFIX}{settings.provider_name.upper()}_"
    for key in sorted(provider_keys):
        lines.append(f"export {prefix}{key}={go_quote(redact(key, provider_keys[key]))}")
    lines.append("# end travis-worker env config")
    return "\n".join(lines) + "\n"
