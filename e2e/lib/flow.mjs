// The steps of a sign-in as a person takes them, shared by the scenarios.
import assert from 'node:assert/strict';

export const DIALOG = /\/dev\/facebook\/dialog\/oauth/;
export const PRELOADER = /\/preloader(#.*)?$/;

/** Waits until `page` is on `pathname` (query and fragment ignored). */
export async function onPath(page, pathname) {
  await page.waitForURL((url) => url.pathname === pathname);
}

export function continueButton(page) {
  return page.getByRole('link', { name: 'Continue with Facebook' });
}

export function greeting(page, name) {
  return page.getByRole('heading', { level: 1, name: `Hi, ${name}!` });
}

/** The signed-out home page, with its button. */
export async function expectSignedOut(page) {
  await continueButton(page).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Log out' }).count(), 0, 'no Log out button when signed out');
}

/** The signed-in home page for `name`. */
export async function expectSignedIn(page, name) {
  await onPath(page, '/');
  await greeting(page, name).waitFor();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  assert.equal(await continueButton(page).count(), 0, 'no sign-in button when signed in');
}

/** Home, then "Continue with Facebook", up to the consent page (at `dialog`). */
export async function openConsent(page, dialog = DIALOG) {
  await continueButton(page).click();
  await page.waitForURL(dialog);
  await page.getByRole('button', { name: 'Allow' }).waitFor();
}

/**
 * The first steps of most scenarios: a new tab on the home page, signed out, then the
 * consent dialog through "Continue with Facebook"; both pages photographed (`home`,
 * `consent`). Returns the tab.
 */
export async function homeThenConsent(ctx) {
  const page = await ctx.context.newPage();
  await page.goto(ctx.url('/'));
  await expectSignedOut(page);
  await ctx.shot(page, 'home');
  await openConsent(page);
  await ctx.shot(page, 'consent');
  return page;
}

/** The error page, whose messages must match `message`. */
export async function expectErrorPage(page, message) {
  await onPath(page, '/error');
  await page.getByRole('heading', { level: 1, name: 'Sign-in did not complete' }).waitFor();
  const text = await page.locator('main').innerText();
  assert.match(text, message);
  await page.getByRole('link', { name: 'Try again' }).waitFor();
}

/** Waits on the preloader until its status line is shown. */
export async function expectPreloader(page) {
  await page.waitForURL(PRELOADER);
  const status = page.locator('#status');
  await status.waitFor();
  assert.match(await status.innerText(), /Talking to Facebook/);
  return status;
}
