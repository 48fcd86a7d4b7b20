/** A configuration that cannot be used; the CLI exits with EX_CONFIG (78). */
export class ConfigError extends Error {
  readonly exitCode = 78;
}
