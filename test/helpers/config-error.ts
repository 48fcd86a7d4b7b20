import { expect } from 'vitest';
import { ConfigError } from '../../src/config/load.js';

/** The ConfigError `fn` throws (an invalid configuration exits 78); fails the test when it throws nothing or something else. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(78);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
