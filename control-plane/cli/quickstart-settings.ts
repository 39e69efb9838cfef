// The quickstart's settings, apart from its SDK calls, so `--help` and the launcher can
// read them without loading the SDK.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The quickstart's own settings, as `--help` lists them. */
export const QUICKSTART_VARIABLES = [
  { env: 'GATEHOUSE_URL', flag: '--url', description: 'control-plane base URL the quickstart talks to', default: 'http://127.0.0.1:4000' },
  { env: 'GATEHOUSE_API_KEY', flag: '--api-key', description: 'admin API key for the quickstart', default: '<data dir>/bootstrap-admin-key' },
] as const;

/** Defaults of the CLI: `GATEHOUSE_URL`, `GATEHOUSE_API_KEY` or the bootstrap key file. */
export function quickstartDefaults(env: Readonly<Record<string, string | undefined>>): { url: string; apiKey: string | undefined; dataDir: string } {
  const dataDir = path.resolve(env.GATEHOUSE_DATA_DIR || '.gatehouse');
  let apiKey = env.GATEHOUSE_API_KEY || undefined;
  if (!apiKey) {
    try {
      apiKey = readFileSync(path.join(dataDir, 'bootstrap-admin-key'), 'utf8').trim() || undefined;
    } catch {
      apiKey = undefined;
    }
  }
  return { url: env.GATEHOUSE_URL || 'http://127.0.0.1:4000', apiKey, dataDir };
}

