/**
 * Loaded into every test file's process (`--import` in `npm test`): once the file's tests are done,
 * it has a minute to end on its own — a server, socket or timer a test left behind must not keep
 * it, and CI, waiting for ever. Not `--test-force-exit`: that exits before the results are
 * flushed to the runner, which then silently counts fewer tests, failures included
 * (nodejs/node#64833; seen here: the last three tests of a file went missing from a green run).
 */
import { after } from "node:test";

const GRACE_MS = 60_000;

after(() => {
  setTimeout(() => {
    process.stderr.write(
      `${process.argv[1]}: still running ${GRACE_MS / 1000} s after its tests ended (something was left open); exiting\n`,
    );
    process.exit();
  }, GRACE_MS).unref();
});
