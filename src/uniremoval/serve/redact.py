"""What ``GET /v1/models`` may tell anyone who can reach the server about the loaded model.

A model's provenance records where it was trained: absolute paths under the trainer's home
or cache folder, data folders, config files. Those name users and machines, so the public
view keeps every fact (steps, dates, metrics, checksums, options) but cuts every absolute
path down to its last component. The full record stays available locally (the model JSON).
No FastAPI here: the command line may use it too.
"""
from __future__ import annotations

import re
from typing import Any

#: Keys whose values name a person or a machine: dropped from the public view.
PRIVATE_KEYS = frozenset({"user", "username", "user_name", "login", "host", "hostname", "node", "home", "cwd"})

# An absolute path starts a token (start of text, or after a space, '=', ',', ';', ':',
# quotes or brackets): POSIX '/...', home '~' or '~user/...', Windows 'C:\...' or 'C:/...',
# UNC '\\server\...'. It runs to the next separator. URLs ("https://...") are spared by
# the http(s) check in _shorten, since a public URL names nobody.
_PATH = re.compile(r"""(?<![^\s=,;:'"(\[{])(?:[A-Za-z]:[\\/]|\\\\|~|/)[^\s=,;'")\]}]*""")
_URL_SCHEME = re.compile(r"https?:$", re.IGNORECASE)


def _shorten(match: re.Match[str]) -> str:
    token = match.group(0)
    if token.startswith("//") and _URL_SCHEME.search(match.string[: match.start()]):
        return token
    last = re.split(r"[\\/]+", token.rstrip("\\/"))[-1]
    # "~alice" or "C:" alone would still name a user or a drive: nothing of it is kept.
    if not last or last.startswith("~") or re.fullmatch(r"[A-Za-z]:", last):
        return "<redacted>"
    return last


def redact_text(text: str) -> str:
    """``text`` with every absolute path replaced by its last component (``/root/.cache/x/a.json``
    -> ``a.json``, ``model.init=/home/alice/m.json`` -> ``model.init=m.json``)."""
    return _PATH.sub(_shorten, text)


def redact_provenance(prov: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model's provenance that is safe to publish.

    Every string, at any depth (dict values and keys, list items), has its absolute paths cut
    down to their last component (see :func:`redact_text`); keys in :data:`PRIVATE_KEYS`
    (user and host names) are dropped. Numbers, dates, checksums and relative names are kept.
    The input is not changed.
    """
    return _redact(prov)  # type: ignore[no-any-return]


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {redact_text(str(k)): _redact(v) for k, v in value.items() if str(k).lower() not in PRIVATE_KEYS}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
