"""Messages in the learner's language: gettext catalogs behind two calls, ``tr`` and ``trn``.

Every sentence torchmagic writes for a person (explanations, hints, warnings,
table headers, legends) goes through :func:`tr` — a whole sentence with
named placeholders, so a translation may reorder it::

    tr("{name} was saved for backward by {node} (line {line})", name=label, node=op, line=n)

:func:`trn` chooses the plural form gettext's rules give for ``n``;
:func:`N_` only marks a string for extraction where a table is built at
import time and translated when it is used.  Code, op names, shapes, dtypes
and PyTorch's own error text are never passed through these.

The catalogs are standard gettext: ``.po`` sources in
``torchmagic/locale/<lang>/LC_MESSAGES/torchmagic.po``, compiled to ``.mo``
when the package is built or installed (Babel; ``make`` does it for a
checkout).  The language is the ``TorchMagics.language`` option: ``"auto"``
(the process's locale from ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``,
``LANG``), ``"en"``, or a catalog's name such as ``"zh_CN"``.  While the
language is English no catalog is read, so it costs nothing.
"""

from __future__ import annotations

import gettext
import os
from pathlib import Path
from typing import Any

__all__ = ["tr", "trn", "N_", "set_language", "language", "available", "resolve", "LOCALE_DIR", "DOMAIN"]

DOMAIN = "torchmagic"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_ENGLISH = gettext.NullTranslations()
_catalog: gettext.NullTranslations | None = None  # chosen on first use: the locale, until set_language
_language = "en"


def _current() -> gettext.NullTranslations:
    if _catalog is None:
        set_language("auto")
    assert _catalog is not None
    return _catalog


def tr(message: str, /, **fields: Any) -> str:
    """``message`` in the current language, its ``{placeholders}`` filled from ``fields``."""
    text = _current().gettext(message)
    return text.format(**fields) if fields else text


def trn(singular: str, plural: str, n: int, /, **fields: Any) -> str:
    """The form of a sentence that fits ``n`` (``{n}`` is filled too), in the current language."""
    return _current().ngettext(singular, plural, n).format(n=n, **fields)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs without translating it now (tables built at import time)."""
    return message


def available() -> list[str]:
    """The languages there is a catalog for, plus English."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES").is_dir()) if LOCALE_DIR.is_dir() else []
    return ["en", *found]


def resolve(setting: str, environ: dict[str, str] | None = None) -> str:
    """The language ``setting`` means: ``"auto"`` reads the locale like gettext does; unknown ones are English.

    ``zh``, ``zh_CN.UTF-8`` and ``zh-Hans-CN`` all mean ``zh_CN``.
    """
    env = os.environ if environ is None else environ
    if setting in ("", "auto"):
        for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
            value = env.get(var, "")
            if value:
                candidates = value.split(":")
                break
        else:
            candidates = []
    else:
        candidates = [setting]
    have = available()
    for candidate in candidates:
        code = candidate.split(".")[0].split("@")[0].replace("-", "_")
        if code in ("C", "POSIX", ""):
            continue
        parts = code.split("_")
        lang = parts[0].lower()
        for name in have:
            if name == code or name.lower() == code.lower():
                return name
        simplified = lang == "zh" and (len(parts) == 1 or any(p.lower() in ("hans", "cn", "sg") for p in parts[1:]))
        if simplified and "zh_CN" in have:
            return "zh_CN"
        if lang == "en":
            return "en"
    return "en"


def set_language(setting: str) -> str:
    """Switch every later message to ``setting`` (see :func:`resolve`); returns the language used."""
    global _catalog, _language
    lang = resolve(setting)
    if lang == "en":
        _catalog, _language = _ENGLISH, "en"
        return "en"
    try:
        catalog = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])
    except OSError:  # the catalog was not compiled (a checkout without `make`): English, said once
        import sys

        print(
            f"torchmagic: no compiled {lang} messages (run `make` or reinstall torchmagic); using English",
            file=sys.stderr,
        )
        _catalog, _language = _ENGLISH, "en"
        return "en"
    _catalog, _language = catalog, lang
    return lang


def language() -> str:
    """The language messages are written in now."""
    _current()
    return _language
