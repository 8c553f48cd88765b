// SCRAM-SHA-256 password verifiers as PostgreSQL stores them (RFC 5802/7677; PostgreSQL's
// scram_build_secret), computed on the client: `ALTER ROLE ... PASSWORD '<verifier>'` then carries
// no plain password in its text, so none reaches a server log, pg_stat_activity or Citus' commands.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/** PostgreSQL's default scram_iterations. */
export const SCRAM_ITERATIONS = 4096;

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64) for `password`. PostgreSQL
 * SASLprep-normalises passwords first; for printable ASCII (all validatePassword admits) that is the
 * identity, so the verifier matches what the server would compute. `salt` (16 random bytes by
 * default) is a parameter for the tests.
 */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
