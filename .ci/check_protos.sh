#!/usr/bin/env bash
# Lint the bridge contract with buf and check it for breaking changes against the previous commit.
#
# buf comes from the npm registry (@bufbuild/buf ships the binary), installed once into a cache
# directory outside the work tree. The breaking check compares protos/ with the previous commit
# (HEAD~1, or HEAD when protos/ has uncommitted changes); it is skipped, with a message, when that
# commit does not exist or has no protos yet, as for the commit that introduces them.
set -euo pipefail

BUF_VERSION="${BUF_VERSION:-1.75.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${BUF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/broker-plugins/buf-$BUF_VERSION}"
buf="$cache/node_modules/.bin/buf"

if [[ ! -x "$buf" ]]; then
    echo "check_protos: installing @bufbuild/buf@$BUF_VERSION into $cache"
    mkdir -p "$cache"
    npm install --silent --no-audit --no-fund --prefix "$cache" "@bufbuild/buf@$BUF_VERSION" >/dev/null
fi
echo "check_protos: buf $("$buf" --version | head -n1)"

cd "$root"
"$buf" lint protos
echo "check_protos: buf lint passed"

if ! git rev-parse --verify --quiet HEAD >/dev/null; then
    echo "check_protos: no commit yet; breaking check skipped"
    exit 0
fi
if [[ -n "$(git status --porcelain -- protos)" ]]; then
    against_ref="HEAD"     # uncommitted proto edits: compare them with the last commit
else
    against_ref="HEAD~1"   # the committed tree: compare it with the commit before it
fi
if ! git rev-parse --verify --quiet "$against_ref^{commit}" >/dev/null; then
    echo "check_protos: $against_ref does not exist; breaking check skipped"
    exit 0
fi
if ! git cat-file -e "$against_ref:protos/buf.yaml" 2>/dev/null; then
    echo "check_protos: $against_ref has no protos yet; breaking check skipped"
    exit 0
fi

previous="$(mktemp -d)"
trap 'rm -rf "$previous"' EXIT
# An exported tree instead of buf's own git input: no dependence on how buf resolves refs.
git archive "$against_ref" protos | tar -x -C "$previous"
"$buf" breaking protos --against "$previous/protos"
echo "check_protos: no breaking change against $against_ref ($(git rev-parse --short "$against_ref"))"
