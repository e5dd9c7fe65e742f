import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The dynaprice binary under test. */
    bin: string;
    /** Debian's Chromium. */
    chromium: string;
  }
}

const repo = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Builds dynaprice from this repository (so it embeds the committed
 * dashboard), unless DYNAPRICE_BIN names a binary already built.
 */
export default function setup(project: TestProject): () => void {
  const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) throw new Error(`${chromium} is missing: apt-get install -y chromium (or set CHROMIUM)`);
  let bin = process.env.DYNAPRICE_BIN;
  let dir = '';
  if (!bin) {
    dir = mkdtempSync(join(tmpdir(), 'dynaprice-e2e-bin-'));
    bin = join(dir, 'dynaprice');
    execFileSync('go', ['build', '-o', bin, './cmd/dynaprice'], { cwd: repo, stdio: 'inherit' });
  }
  project.provide('bin', bin);
  project.provide('chromium', chromium);
  return () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
