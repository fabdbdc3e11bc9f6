// axe-core inside the page under test. The app's Content-Security-Policy allows only
// `script-src 'self'`, so a <script> tag with axe would be blocked. We evaluate axe's
// source through the DevTools protocol instead (page.evaluate), which CSP does not apply
// to: the pages keep their real CSP, exactly as people get them (no bypassCSP).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let source;

/** Runs axe on `page`; returns its violations with impact "serious" or "critical". */
export async function seriousViolations(page) {
  source ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(source);
  }
  const results = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  return {
    all: results.violations,
    serious: results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'),
  };
}

/** One readable block per violation: rule, impact, help, and the offending elements. */
export function describe(violations) {
  return violations.map((v) => [
    `  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`,
    ...v.nodes.slice(0, 5).map((n) => `      ${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ')}`),
  ].join('\n')).join('\n');
}
