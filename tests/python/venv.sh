#!/bin/sh
# venv.sh DIR - make DIR a Python virtual environment holding the packages
# in requirements.txt (beside this script), for the tests that run real
# clients (pynvml, cuda-bindings) against the simulated GPU node.
#
# It installs once: DIR/.vgpool-requirements records what was installed,
# and while it matches requirements.txt and the interpreter, nothing is
# downloaded again. Tests running in parallel take turns through a lock.
# When PyPI cannot be reached it fails with a message that says so.
#
# The interpreter is $VGPOOL_PYTHON if set, else Debian's /usr/bin/python3,
# else python3 from PATH: the first that has the venv and ensurepip modules
# (on Debian: apt-get install python3-venv).
set -u

dir=${1:?usage: venv.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
req="$here/requirements.txt"

fail() {
  echo "venv.sh: $*" >&2
  exit 1
}

pick_python() {
  for py in "${VGPOOL_PYTHON:-}" /usr/bin/python3 python3; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' \
        >/dev/null 2>&1; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

py=$(pick_python) ||
  fail "no Python 3.9+ with the venv module (on Debian: apt-get install python3-venv)"
want="$("$py" -c 'import sys; print(sys.version.split()[0])') $(cksum < "$req")"

mkdir -p "$(dirname "$dir")" || fail "cannot create $(dirname "$dir")"
exec 9>"$dir.lock" || fail "cannot create $dir.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9 || fail "cannot lock $dir.lock"
fi

if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.vgpool-requirements" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

# A venv made by another interpreter (or half made) is started afresh.
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c '' >/dev/null 2>&1 ||
   [ "$("$dir/bin/python" -c 'import sys; print(sys.version.split()[0])')" != "${want%% *}" ]; then
  rm -rf "$dir"
  echo "venv.sh: creating $dir with $py" >&2
  "$py" -m venv "$dir" || fail "'$py -m venv $dir' failed (on Debian: apt-get install python3-venv)"
fi

log="$dir/pip-install.log"
echo "venv.sh: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $dir" >&2
if ! "$dir/bin/python" -m pip install --disable-pip-version-check --no-input \
    --timeout 20 --retries 2 -r "$req" >"$log" 2>&1; then
  tail -n 5 "$log" >&2
  if grep -qiE 'connection|network|resolve|timed out|proxy|Temporary failure' "$log"; then
    fail "cannot reach PyPI to install the packages in $req (no network?); the python tests need them once, then reuse $dir (full log: $log)"
  fi
  fail "pip could not install the packages in $req (full log: $log)"
fi
printf '%s\n' "$want" > "$dir/.vgpool-requirements"
