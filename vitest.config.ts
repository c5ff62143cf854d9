import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Both cores: vitest's default on a 2-core machine is one worker, and the suite (15 minutes is
    // CI's limit) spends much of its time waiting on the processes it starts (serve, the simulator,
    // redis-server), not computing.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
