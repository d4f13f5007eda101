#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (see docs/FUZZING.md) one after the other,
# each for SECONDS, with no user interface, then prints what each did and
# fails if any of them found a crash (listing the inputs).
#
#   scripts/fuzz.sh SECONDS [TARGET...]     (default: every target)
#
# Installs cargo-afl (and with it AFL++, built from the sources in the crate)
# when it is missing. Seeds are every message under tests/data/eml, copied
# into OUT/seeds/TARGET; AFL's findings go to OUT/TARGET (both wiped at the
# start of a run). OUT is $FUZZ_OUT, by default fuzz/out. With $FUZZ_EXECS
# set, a target also stops after that many executions.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_AFL_VERSION=0.18.2
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(mime open receive)
cargo=${CARGO:-cargo}
bin="${CARGO_HOME:-$HOME/.cargo}/bin"

if ! command -v cargo-afl >/dev/null 2>&1 && [ ! -x "$bin/cargo-afl" ]; then
    echo "installing cargo-afl $CARGO_AFL_VERSION"
    "$cargo" install cargo-afl --locked --version "$CARGO_AFL_VERSION" --quiet
fi
# Installing cargo-afl builds AFL++ for the current rustc; build it here if
# it is not there (a newer toolchain, say). It refuses when it already is.
"$cargo" afl config --build >/dev/null 2>&1 || true

(cd fuzz && "$cargo" afl build --release --locked)

out=${FUZZ_OUT:-fuzz/out}
limit=()
[ -z "${FUZZ_EXECS:-}" ] || limit=(-E "$FUZZ_EXECS")
# A store per input, written and thrown away: on a memory file system when
# there is one.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    scratch=$(mktemp -d /dev/shm/conclave-fuzz.XXXXXX)
else
    scratch=$(mktemp -d)
fi
trap 'rm -rf "$scratch"' EXIT

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# Machines are shared: take whatever core is there rather than insist on a free one.
export AFL_NO_AFFINITY=1
export AFL_NO_CRASH_README=1

crashed=()
summary=()
failed=0
for t in "${targets[@]}"; do
    seeds="$out/seeds/$t"
    rm -rf "$seeds" "$out/$t"
    mkdir -p "$seeds" "$out/$t"
    # Every message of the corpus (not the LICENSE and SOURCE.md beside them).
    find tests/data/eml -type f ! -name LICENSE ! -name '*.md' -print0 |
        while IFS= read -r -d '' f; do
            rel=${f#tests/data/eml/}
            cp "$f" "$seeds/${rel//\//__}"
        done
    echo "fuzzing $t for ${seconds}s"
    TMPDIR="$scratch" "$cargo" afl fuzz -V "$seconds" "${limit[@]}" -t 2000 \
        -i "$seeds" -o "$out/$t" -- "fuzz/target/release/$t" \
        >"$out/$t/afl.log" 2>&1 || {
        echo "afl-fuzz failed for $t:"
        tail -30 "$out/$t/afl.log"
        exit 1
    }
    stats="$out/$t/default/fuzzer_stats"
    stat() { sed -n "s/^$1 *: *//p" "$stats"; }
    summary+=("$(printf '%-8s execs %-10s execs/s %-8s corpus %-6s edges %-6s crashes %-3s hangs %s' \
        "$t" "$(stat execs_done)" "$(stat execs_per_sec)" "$(stat corpus_count)" \
        "$(stat edges_found)" "$(stat saved_crashes)" "$(stat saved_hangs)")")
    before=${#crashed[@]}
    for c in "$out/$t"/default/crashes/id:*; do
        [ -e "$c" ] && crashed+=("$c")
    done
    [ "${#crashed[@]}" -eq "$before" ] || failed=$((failed + 1))
done

printf '%s\n' "${summary[@]}"
# Each target counts as one test: passed when it found no crash.
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
if [ "${#crashed[@]}" -gt 0 ]; then
    echo "crashes found (each must become a fixture under tests/data/eml/crashes):"
    printf '  %s\n' "${crashed[@]}"
    exit 1
fi
