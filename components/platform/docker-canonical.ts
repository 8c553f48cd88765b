// The forms in which the Docker provider (@pulumi/docker 5.2, bridging kreuzwerker's
// terraform-provider-docker) reads container fields back after creating them. A value registered in
// any other form differs from the state on every `pulumi up`: an update that does nothing, or, for a
// field that forces replacement (`cpus`), a replacement of the container. Pure: no Pulumi imports.
//
// Sources (terraform-provider-docker, internal/provider, unchanged from v4.5.0 to master of 2026-07):
// - resource_docker_container_funcs.go, the Read function: `cpus` from HostConfig.NanoCPUs through
//   helpers.go's nanoInt64ToDecimalString; healthcheck durations through Go's time.Duration.String();
//   `memory` and `shm_size` as bytes / 1024 / 1024; `stop_timeout` and `restart` as Docker holds them.
// - the same file's Create: `cpus` through docker's opts.ParseCPUs (a decimal, times 1e9, must be an
//   integer number of nano-CPUs); durations through time.ParseDuration.

const NANO = 1_000_000_000n;

/**
 * Nano-CPUs of a decimal number of CPUs, as Docker's opts.ParseCPUs computes it; undefined when the
 * value has more than 9 decimals (ParseCPUs refuses it: "value is too precise").
 */
export function nanoCpus(cpus: number): bigint | undefined {
  if (!Number.isFinite(cpus) || cpus < 0) return undefined;
  // The shortest decimal that round-trips the double, e.g. "1.5", "0.05", "1e-7".
  const text = cpus.toString();
  const [mantissa, exponentText] = text.split("e");
  const exponent = Number(exponentText ?? 0);
  const [whole, fraction = ""] = mantissa.split(".");
  const decimals = fraction.length - exponent;
  if (decimals > 9) return undefined;
  const digits = BigInt(whole + fraction);
  return digits * 10n ** BigInt(9 - decimals);
}

/**
 * The string the provider stores for `cpus` after reading the container back, from its nano-CPUs.
 * The provider prints the value with 9 decimals; when that text holds exactly nine "0" characters it
 * prints it again with one decimal (rounded), otherwise it strips the trailing zeros. So 1 -> "1.0",
 * 1.5 -> "1.5", 2.25 -> "2.25", 10 -> "10." (ten zeros: stripped, the dot stays), 0.05 -> "0.1"
 * (nine zeros: rounded to one decimal, a value other than the one set).
 */
export function readBackCpus(nano: bigint): string {
  if (nano === 0n) return "0";
  const whole = nano / NANO;
  const fraction = (nano % NANO).toString().padStart(9, "0");
  const nineDecimals = `${whole}.${fraction}`;
  if ([...nineDecimals].filter((c) => c === "0").length === 9) {
    // One decimal, rounded half away from zero (big.Rat.FloatString).
    const tenths = (nano * 10n + NANO / 2n) / NANO;
    return `${tenths / 10n}.${tenths % 10n}`;
  }
  return nineDecimals.replace(/0+$/, "");
}

/**
 * The `cpus` value to register for `cpus` CPUs: the provider's own read-back form, so that the next
 * `pulumi up` sees no difference. Undefined when no string both sets this value and reads back
 * unchanged (too many decimals, or values such as 0.05 that read back as another number).
 */
export function canonicalCpus(cpus: number): string | undefined {
  const nano = nanoCpus(cpus);
  if (nano === undefined || nano === 0n) return undefined;
  const text = readBackCpus(nano);
  // The read-back text must itself parse to the same nano-CPUs ("10." does: Go's big.Rat accepts a
  // trailing dot, as strconv.ParseFloat does).
  const reparsed = nanoCpus(Number(text.endsWith(".") ? text.slice(0, -1) : text));
  return reparsed === nano ? text : undefined;
}

/**
 * A whole number of seconds as Go's time.Duration.String() prints it: "0s", "5s", "1m0s", "2m0s",
 * "1m30s", "1h0m0s". The provider reads healthcheck durations back in this form.
 */
export function goDuration(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0) throw new Error(`goDuration: ${seconds} is not a whole number of seconds >= 0`);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
