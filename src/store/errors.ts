/** The database cannot be used as it is; the message is one sentence that names the file and says what to do. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}
