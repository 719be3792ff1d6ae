# Two commands: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv on first use; nothing needs installing by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The oldest IPython we support, for the in-process tests: same constraints, only IPython differs.
VENV8 := .venv-ipy8
STAMP8 := $(VENV8)/.installed
INPROCESS := --ignore=tests/kernel --ignore=tests/browser -m "not slow and not kernel and not browser"

.PHONY: demo test test-ipython8 typecheck clean messages
# Message catalogs: .po sources in the repo, compiled .mo next to them (git ignores them).
PO := $(wildcard torchmagic/locale/*/LC_MESSAGES/torchmagic.po)
MO := $(PO:.po=.mo)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

# Everything but IPython comes from .venv (one .pth line adds its site-packages after
# .venv-ipy8's own), so this takes seconds, not another torch install.
$(STAMP8): $(STAMP)
	test -x $(VENV8)/bin/python || $(PY) -m venv $(VENV8)
	$(VENV8)/bin/python -c "import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], '_torchmagic_main_venv.pth').write_text('import site; site.addsitedir(%r)\\n' % '$(abspath $(shell $(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"))')"
	$(VENV8)/bin/python -m pip install -q -c constraints.txt "ipython<9"
	$(VENV8)/bin/python -c "import IPython, torch, torchmagic; assert IPython.version_info[0] == 8, IPython.__version__"
	touch $(STAMP8)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel -q compile -i $< -o $@

# After adding or changing a sentence: extract every tr()/trn()/N_() message and merge it into
# each catalog; translate the new entries (docs/glossary-zh.md keeps the terms consistent).
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k tr -k trn:1,2 -k N_ --no-default-keywords \
		--sort-by-file --project torchmagic -o torchmagic/locale/torchmagic.pot .
	$(BIN)/pybabel -q update -i torchmagic/locale/torchmagic.pot -d torchmagic/locale -D torchmagic --no-fuzzy-matching

demo: $(STAMP) $(MO)
	$(BIN)/python scripts/demo.py

test: $(STAMP) $(MO)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest
	$(MAKE) test-ipython8

# In-process tests on IPython 8 (kernel, browser and slow tests run once, above).
test-ipython8: $(STAMP8)
	$(VENV8)/bin/python -m pytest -q $(INPROCESS)

clean:
	rm -rf $(VENV) $(VENV8) out
