# make test: every test. make demo: the incident and its cure on a local
# container fleet. Both install what they need on first use.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := $(CURDIR)/.venv
COLLECTIONS := $(CURDIR)/.cache/collections
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

.PHONY: test demo demo-down units sanity lint packaging molecule bench collection venv clean

test: venv
	scripts/test.sh

demo: venv collection
	scripts/demo.sh

demo-down: venv
	ansible-playbook -i tests/fleet/demo_hosts.yml demo/fleet.yml -e demo_state=absent

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Build the collection artifact and install it into a private collections
# path, so every playbook run below uses the collection as users get it.
collection: venv
	rm -rf $(COLLECTIONS) .cache/build
	mkdir -p .cache/build
	ansible-galaxy collection build --force --output-path .cache/build >/dev/null
	ansible-galaxy collection install --force -p $(COLLECTIONS) .cache/build/qwf-collision_guard-*.tar.gz >/dev/null
	@echo "collection: installed $$(ls .cache/build) into $(COLLECTIONS)"

units: venv collection
	PYTHONPATH=$(COLLECTIONS) python -m pytest -p no:cacheprovider -q tests/unit

sanity: venv
	scripts/sanity.sh

# The changelog fragments, galaxy.yml and the execution environment, offline.
packaging: venv collection
	scripts/packaging.sh

# ansible-lint installs this collection into ~/.ansible/collections once
# and then keeps that copy; drop it so each run sees the current code.
lint: venv collection
	rm -rf $(HOME)/.ansible/collections/ansible_collections/qwf/collision_guard
	ansible-lint --offline

molecule: venv collection
	export COLLISION_GUARD_IMAGE_DEBIAN12="$$(scripts/image-for.sh bookworm)"; \
	export COLLISION_GUARD_IMAGE_DEBIAN13="$$(scripts/image-for.sh trixie)"; \
	molecule test --all

# Speed against ss and listen_ports_facts on this host, the time to recover
# with evict against fuser in a systemd container, and prevention against
# eviction (Debian 13), and whether a reload or set-property applies a deny
# to a running slice; prints tables.
bench: venv collection
	PYTHONPATH=$(COLLECTIONS) python bench/port_discovery.py
	bench/fleet.sh
	bench/recovery.sh
	bench/prevention.sh
	bench/prevention_apply.sh

clean:
	rm -rf .venv .cache tests/output
