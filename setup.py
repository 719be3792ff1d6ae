"""Build hook: compile the message catalogs (``.po`` → ``.mo``) so an installed torchmagic speaks its languages.

Everything else about the package is in ``pyproject.toml``.  Editable installs
(``pip install -e .``, what ``make`` does) get the ``.mo`` files next to their
``.po`` sources; wheels get them in the build.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path("torchmagic/locale").glob("*/LC_MESSAGES/*.po")):
            target = po.with_suffix(".mo") if self.editable_mode else Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as source:
                catalog = read_po(source)
            with target.open("wb") as out:
                write_mo(out, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
