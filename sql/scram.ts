// A SCRAM-SHA-256 password verifier, computed here so that `ALTER ROLE ... PASSWORD` carries the
// verifier PostgreSQL stores, never the password itself (statement logs, pg_stat_activity, Citus'
// propagation of the statement to the workers).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/** PostgreSQL's default (scram_iterations, PostgreSQL 16; fixed at 4096 before). */
export const SCRAM_ITERATIONS = 4096;

/**
 * The verifier in PostgreSQL's format (RFC 5803, as `pg_authid.rolpassword` holds it):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64. The password is used as given
 * (no SASLprep): passwords here are generated ASCII.
 * @throws Error when the password is empty or not printable ASCII.
 */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error("password: empty or not printable ASCII; expected a generated password of characters 0x21-0x7e");
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
