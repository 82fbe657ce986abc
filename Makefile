# The two commands: `make run` serves the demo on http://127.0.0.1:8000; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
THREADS ?= 8
# The address the demo's links and the set-up's banner name (receipts' QR codes, emails): where `make run` serves.
FUNDLEDGER_PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: install run test lint bench bench-api bench-webhook bench-receipts bench-transparency bench-reconciliation mutation openapi translations \
	clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'  # -qq: setuptools' notes on editable installs are not for newcomers
	rm -f $(VENV)/.installed-* && touch $@

# The pages' translations, compiled from the catalogues in the repository (the .mo files are not committed).
MO := $(patsubst %.po,%.mo,$(wildcard api/pages/translations/*/LC_MESSAGES/messages.po))

%.mo: %.po $(STAMP)
	$(BIN)/pybabel -q compile -i $< -o $@

install: $(STAMP) $(MO)

translations: install  # after changing a page's text: extract the messages and update each catalogue
	$(BIN)/pybabel -q extract -F babel.cfg -o api/pages/translations/messages.pot .
	$(BIN)/pybabel -q update -i api/pages/translations/messages.pot -d api/pages/translations --no-fuzzy-matching \
		--ignore-pot-creation-date

# Threaded workers (gthread): a client that sends its request slowly holds one of THREADS threads, not a whole
# worker, and one that sends nothing is set aside after 5 s; in production a buffering proxy stands in front
# (README, "In production"). --no-control-socket: gunicorn's runtime control socket would be one path
# ($HOME/.gunicorn) shared by every instance on the machine; the demo needs none.
run: install
	FUNDLEDGER_PUBLIC_URL=$(FUNDLEDGER_PUBLIC_URL) $(BIN)/flask --app wsgi ledger setup
	FUNDLEDGER_PUBLIC_URL=$(FUNDLEDGER_PUBLIC_URL) FUNDLEDGER_SEALER_INTERVAL_SECONDS=5 $(BIN)/gunicorn --workers $(WORKERS) --worker-class gthread \
		--threads $(THREADS) --bind $(HOST):$(PORT) --no-control-socket --access-logfile - wsgi:app

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

mutation: install  # mutation testing of the pure core (mutmut; a few minutes); the score and survivors follow
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > /dev/null || true
	$(BIN)/python bench/mutation_report.py

openapi: install  # rewrite the committed OpenAPI document after changing the API
	$(BIN)/flask --app wsgi openapi write api/openapi.json

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/ledger_bench.py

bench-webhook: install  # verified Stripe events through gunicorn on PostgreSQL, beside POST /donations
	$(BIN)/python bench/webhook_bench.py $(BENCH_WEBHOOK_ARGS)

bench-receipts: install  # PDFs per second beside reportlab's QR widget; annual receipts for 100,000 donors
	$(BIN)/python bench/receipts_bench.py $(BENCH_RECEIPTS_ARGS)

bench-transparency: install  # public pages under 16 readers and a year's report over a fund of 1,000,000 gifts
	$(BIN)/python bench/transparency_bench.py $(BENCH_TRANSPARENCY_ARGS)

bench-reconciliation: install  # import and auto-match a 100,000-line statement against 100,000 entries
	$(BIN)/python bench/reconciliation_bench.py $(BENCH_RECONCILIATION_ARGS)

bench-api: install  # POST /donations through gunicorn on PostgreSQL and Redis; e.g. BENCH_API_ARGS=--quick
	$(BIN)/python bench/api_bench.py $(BENCH_API_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis mutants
