import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate` writes a migration for every change to src/store/schema.ts.
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './migrations',
});
