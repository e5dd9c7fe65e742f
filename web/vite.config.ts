import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The build goes straight into the Go package that embeds it. DIST_DIR
// redirects it (check-dist.sh builds into a temporary directory).
const outDir = process.env.DIST_DIR ?? fileURLToPath(new URL('../internal/dashboard/dist', import.meta.url));

// The API paths the dashboard uses, proxied to a local `dynaprice serve` by `npm run dev`.
const api = 'http://127.0.0.1:8080';
const proxy = Object.fromEntries(
  ['/prices', '/price/', '/override', '/history/', '/products', '/healthz'].map((p) => [p, api]),
);

export default defineConfig({
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    // Keep every asset a file: the Content-Security-Policy allows no data: URLs.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    proxy: { ...proxy, '/ws/': { target: api, ws: true } },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
