#!/usr/bin/env bash
# make packaging: the collection as the ecosystem takes it, offline.
#  - the changelog fragments lint (antsibull-changelog lint);
#  - galaxy.yml carries the keys Galaxy and Automation Hub show, and no upper
#    bound caps requires_ansible;
#  - ansible-builder create makes a build context from meta/execution-environment.yml,
#    and its introspection of the installed collection finds the controller's
#    Python requirements.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "packaging: $*" >&2; exit 1; }

antsibull-changelog lint || fail "antsibull-changelog lint found problems in changelogs/"
echo "packaging: changelogs/ lints clean ($(find changelogs/fragments -name '*.yml' | wc -l) fragments)"

python3 - <<'PY' || fail "galaxy.yml or meta/runtime.yml is incomplete"
import yaml
galaxy = yaml.safe_load(open('galaxy.yml'))
missing = [key for key in ('repository', 'issues', 'documentation', 'license', 'readme') if not galaxy.get(key)]
runtime = yaml.safe_load(open('meta/runtime.yml'))
capped = '<' in runtime.get('requires_ansible', '')
print('packaging: galaxy.yml keys missing: %s; requires_ansible %r%s' % (
    missing or 'none', runtime.get('requires_ansible'), ' is capped' if capped else ''))
raise SystemExit(1 if missing or capped else 0)
PY

ansible-builder create -f meta/execution-environment.yml -c "$work/context" --output-filename Containerfile >/dev/null \
  || fail "ansible-builder create failed on meta/execution-environment.yml"
grep -qx 'jmespath' "$work/context/_build/requirements.txt" \
  || fail "the build context lacks the collection's requirements.txt"
echo "packaging: ansible-builder create made a build context from meta/execution-environment.yml"

introspected="$(ansible-builder introspect --sanitize "$ANSIBLE_COLLECTIONS_PATH")"
grep -q 'jmespath.*from collection qwf.collision_guard' <<<"$introspected" \
  || fail "ansible-builder introspect did not find the collection's Python requirements: $introspected"
echo "packaging: ansible-builder introspect finds jmespath for qwf.collision_guard"
