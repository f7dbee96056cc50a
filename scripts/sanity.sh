#!/usr/bin/env bash
# Run ansible-test sanity on a copy of the collection under the path layout
# ansible-test requires (.../ansible_collections/qwf/collision_guard).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.cache/sanity/ansible_collections/qwf/collision_guard"

rm -rf "$work"
mkdir -p "$work"
# Tracked and new files, without what .gitignore excludes.
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' ) \
  | (cd "$root" && tar -c --null -T -) | tar -x -C "$work"

# ansible-test --venv downloads get-pip from a host that air-gapped networks
# cannot reach; it looks in this cache first.
pip_version="$(python - <<'PY'
import os, re, ansible_test
source = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
print(re.search(r"pip='([0-9.]+)'", open(source).read()).group(1))
PY
)"
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp "$root/scripts/get_pip_standin.py" "$cache/get_pip_${pip_version//./_}.py"

cd "$work"
# ansible-test lists files through git; a repository of its own keeps it
# from seeing the outer checkout, where this copy is ignored.
git init -q . && git add -A
ansible-test sanity --venv --python 3.11 --color no "$@"
