import test from "ava";
import { isMetadataOutOfSync, waitForMetadataSync } from "../../components/citus-metadata.ts";

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

test("isMetadataOutOfSync: Citus' 55000 refusal while a metadata worker is out of sync, also as a cause; nothing else", (t) => {
  const refusal = pgError("55000", "dpc-worker1-0:5432 is a metadata node, but is out of sync");
  t.true(isMetadataOutOfSync(refusal));
  t.true(isMetadataOutOfSync(new Error("migration failed", { cause: new Error("statement failed", { cause: refusal }) })));
  t.false(isMetadataOutOfSync(pgError("55000", "cannot drop extension citus")));
  t.false(isMetadataOutOfSync(pgError("XX000", "dpc-worker1-0:5432 is a metadata node, but is out of sync")));
  t.false(isMetadataOutOfSync(undefined));
});

test("waitForMetadataSync: gives up after its timeout naming the last error (nothing answers at the URL)", async (t) => {
  const error = await t.throwsAsync(waitForMetadataSync("postgresql://u:secret-pw@127.0.0.1:1/db", { timeoutMs: 1200, intervalMs: 200 }));
  t.regex(error!.message, /^Citus metadata not synced to every worker within 1 s \(error: .*ECONNREFUSED/);
  t.false(error!.message.includes("secret-pw"));
});
