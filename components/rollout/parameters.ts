// The change to a group's dynamic configuration (Patroni's DCS `config` key) that makes its
// PostgreSQL parameters equal to the wanted ones. Pure.

export type ParameterValue = string | number | boolean;
export type Parameters = Record<string, ParameterValue>;

/** Patroni's JSON merge patch for PATCH /config: a value sets, null removes (patroni/utils.py patch_config). */
export interface ConfigPatch {
  postgresql: { parameters: Record<string, ParameterValue | null> };
}

/** A value as PostgreSQL and Patroni compare it: text, booleans as on/off. */
export function parameterText(value: ParameterValue): string {
  if (value === true) return "on";
  if (value === false) return "off";
  return String(value);
}

/**
 * The patch that turns `current` (the parameters in the DCS now) into `wanted`, or undefined when
 * they already agree. Parameters in the DCS but not wanted are removed (set to null): the stack
 * declares the whole set, so a parameter dropped from `postgresParameters` goes back to its sized
 * default or PostgreSQL's own.
 */
export function parameterPatch(current: Parameters, wanted: Parameters): ConfigPatch | undefined {
  const parameters: Record<string, ParameterValue | null> = {};
  for (const [name, value] of Object.entries(wanted)) {
    if (current[name] === undefined || parameterText(current[name]) !== parameterText(value)) parameters[name] = value;
  }
  for (const name of Object.keys(current)) {
    if (!(name in wanted)) parameters[name] = null;
  }
  return Object.keys(parameters).length > 0 ? { postgresql: { parameters } } : undefined;
}
