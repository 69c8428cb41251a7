#!/usr/bin/env bash
# Runs every subtest of the given packages alone (-run '^TestX$/^sub$'), to
# prove no subtest depends on state an earlier one left behind.
# Usage: .ci/subtests-alone.sh PKG...   (import paths or patterns, e.g. ./pkg/groupcast)
# Exits non-zero and lists the failures if any subtest fails alone. Build
# flags come from GOFLAGS as for go test (e.g. GOFLAGS=-race).
set -uo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 PKG..." >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pkgs=$(go list "$@") || exit 2
passed=0
failed=0
failures=()
for pkg in $pkgs; do
	bin="$tmp/pkg.test"
	rm -f "$bin"
	if ! go test -c -o "$bin" "$pkg"; then
		failures+=("$pkg: does not build")
		failed=$((failed + 1))
		continue
	fi
	[ -x "$bin" ] || continue # no test files
	dir=$(go list -f '{{.Dir}}' "$pkg")
	# A test binary runs in its package's directory, as under go test.
	if ! (cd "$dir" && "$bin" -test.v -test.run . >"$tmp/full.log" 2>&1); then
		failures+=("$pkg: fails when run as a whole")
		failed=$((failed + 1))
	fi
	# Subtest results are the indented "--- PASS: TestX/sub (..)" lines;
	# go test has already rewritten spaces in names to underscores.
	names=$(grep -E '^ +--- (PASS|FAIL|SKIP): ' "$tmp/full.log" | awk '{print $3}')
	for name in $names; do
		# Anchor every level and quote regexp metacharacters, so the
		# pattern selects exactly this subtest and its parents.
		re=$(printf '%s' "$name" | sed -e 's/[][\.*+?(){}|^$]/\\&/g' -e 's#/#$/^#g')
		# Passing means it ran and passed: a pattern that matched nothing
		# would also exit 0.
		if (cd "$dir" && "$bin" -test.v -test.run "^$re\$" >"$tmp/one.log" 2>&1) &&
			name="$name" awk '$1 == "---" && ($2 == "PASS:" || $2 == "SKIP:") && $3 == ENVIRON["name"] { ok = 1 } END { exit !ok }' "$tmp/one.log"; then
			passed=$((passed + 1))
		else
			failures+=("$pkg $name")
			failed=$((failed + 1))
		fi
	done
done

for f in ${failures[@]+"${failures[@]}"}; do
	echo "FAIL $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
