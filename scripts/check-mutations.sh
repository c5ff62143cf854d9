#!/usr/bin/env bash
# The nine one-line mutations of issue 15 (sync rules, body limit, transactions): each is applied to a
# copy of the tree and the tests that must notice it are run. Every line should say "killed".
# Run: bash scripts/check-mutations.sh (about 2 minutes).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
M=$(mktemp -d)

(cd $SRC && git ls-files -co --exclude-standard | grep -v '^node_modules' | tar -cf - -T -) | tar -C $M -xf -
ln -s $SRC/node_modules $M/node_modules
cd $M
run() { # name file perl-substitution tests...
  local name=$1 file=$2 expr=$3; shift 3
  cp $file $M.orig
  perl -0pi -e "$expr" $file
  if cmp -s $file $M.orig; then echo "MUTATION NOT APPLIED: $name"; return; fi
  if timeout 600 npx vitest run "$@" > $M.$name.log 2>&1; then echo "SURVIVED: $name"; else echo "killed: $name ($(grep -E '^tests:' $M.$name.log))"; fi
  cp $M.orig $file
}
run quorate src/sync/diff.ts "s/  if \(quorate === false\) return 'the cluster is not quorate';\n//" test/sync/partial-reads.test.ts test/sync/edge-cases.test.ts
run standalone src/sync/diff.ts 's/status\.nodes\.length <= 1 \? true : null/status.nodes.length < 1 ? true : null/' test/sync/partial-reads.test.ts
run vanished-node src/sync/diff.ts "s/ \|\| prev\.status === 'missing'\) continue;/) continue;/" test/sync/partial-reads.test.ts test/sync/edge-cases.test.ts
run budget src/sync/plan.ts 's/fetch\.length >= input\.budget/fetch.length > input.budget/' test/sync/plan.test.ts test/sync/edge-cases.test.ts
run task-finished src/sync/plan.ts "s/\(known === undefined \|\| known === 'running'\)/(known === undefined)/" test/sync/plan.test.ts
run log-gap src/sync/plan.ts 's/min > cursor \+ 1/min > cursor/' test/sync/plan.test.ts test/sync/edge-cases.test.ts
run task-pruning src/store/sync-state.ts 's/    pruneTasks\(store, w\.cluster\);\n//' test/sync/failures.test.ts
run body-limit src/mcp/http.ts 's/if \(size <= limit\) return/if (size <= limit * 1024) return/' test/mcp/http-fuzz.test.ts
run deferred src/store/db.ts 's/sqlite\.transaction\(fn\)\.immediate\(\)/sqlite.transaction(fn).deferred()/' test/store/write-lock.test.ts
