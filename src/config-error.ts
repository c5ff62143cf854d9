/**
 * ConfigError on its own, so that the command line's error report can recognise it without loading
 * the configuration's parser (and the webhook and TLS modules that parser checks values with).
 *
 * The message is one line per problem and nothing else: each line names its setting, quotes the
 * value (unless secret) and says what to write, so a header counting them would add a line and no
 * information, and a single mistake stays a single line.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}
