/**
 * `npm run screenshots -- [PAGE.html] [--out DIR]`: one PNG per section of a leaderboard page, drawn
 * by headless Chromium (CHROMIUM_PATH, default /usr/bin/chromium) once its charts are drawn. Default
 * page: the leaderboard of the committed current reports (npm run leaderboard); default folder:
 * docs/leaderboard, where the README links them.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { args, main, UsageError } from './cli.js';

main(async () => {
  const { values: o, positionals } = args({ out: { type: 'string', default: join('docs', 'leaderboard') } }, true);
  let page = positionals[0];
  if (!page) {
    page = join(mkdtempSync(join(tmpdir(), 'tr-shots-')), 'leaderboard.html');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join('scripts', 'leaderboard.ts'), '--out', page], { stdio: 'inherit' });
    if (r.status !== 0) return r.status ?? 1;
  }
  if (!existsSync(page)) throw new UsageError(`screenshots: no page at ${page}`);
  const exe = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(exe)) throw new UsageError(`screenshots: Chromium not found at ${exe} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  try {
    const tab = await browser.newPage({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
    await tab.goto(`file://${resolve(page)}`);
    await tab.waitForFunction(() => document.body.dataset.charts === 'ready' || document.body.dataset.charts === 'error', null, { timeout: 60_000 });
    const state = await tab.evaluate('[document.body.dataset.charts, document.body.dataset.chartError]') as string[];
    if (state[0] !== 'ready') throw new Error(`charts failed to draw: ${state[1]}`);
    mkdirSync(o.out!, { recursive: true });
    const ids = await tab.evaluate('[...document.querySelectorAll("body > section[id]")].map((s) => s.id)') as string[];
    // Collapsed tables stay collapsed: a screenshot shows what a reader sees first.
    for (const id of ids) {
      const file = join(o.out!, `${id}.png`);
      await tab.locator(`body > section#${id}`).screenshot({ path: `${file}.tmp.png` });
      renameSync(`${file}.tmp.png`, file);
      console.log(`screenshots: ${file}`);
    }
  } finally {
    await browser.close();
  }
  return 0;
});
