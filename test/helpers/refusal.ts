import { expect } from 'vitest';
import { HttpError } from '../../src/errors.js';

/** The HttpError a call or promise is refused with; fails the test when it is not refused. */
export async function refusal(promise: Promise<unknown> | (() => unknown)): Promise<HttpError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return err as HttpError;
  }
  throw new Error('expected a refusal (an HttpError)');
}
