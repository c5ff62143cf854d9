/**
 * ConfigError on its own, so that the command line's error report can recognise it without loading
 * the configuration's parser (and the webhook and TLS modules that parser checks values with).
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}
