/** Redis cannot be used as configured, or the embedded one cannot start; the message is one sentence with the fix. */
export class RedisError extends Error {
  override readonly name = 'RedisError';
}
