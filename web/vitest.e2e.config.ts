import { defineConfig } from 'vitest/config';

// End-to-end tests: a real `dynaprice serve` and Debian's Chromium. SCREENSHOTS=1
// runs the script that refreshes docs/screenshots instead.
export default defineConfig({
  test: {
    include: process.env.SCREENSHOTS ? ['e2e/screenshots.ts'] : ['e2e/**/*.e2e.ts'],
    globalSetup: ['e2e/global-setup.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
