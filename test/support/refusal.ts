// The error a call refuses with, when it is of the expected class; a call that succeeds, or fails with
// another error, fails the test with what happened instead.
export function refusal<E extends Error>(type: abstract new (...args: never[]) => E, run: () => unknown, accepted = 'the call was accepted'): E {
  try {
    run();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(accepted);
}

/** The same for a call that answers a promise: the error it rejects with, when it is of the expected class. */
export async function asyncRefusal<E extends Error>(type: abstract new (...args: never[]) => E, run: () => Promise<unknown>, accepted = 'the call was accepted'): Promise<E> {
  try {
    await run();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(accepted);
}
