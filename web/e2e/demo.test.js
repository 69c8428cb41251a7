// The demo in headless Chromium against the real local stack: users in
// separate browser contexts (separate cookies, storage and sockets).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStack, launchBrowser, screenshotDir, restAs } from './harness.js';

// Live events arrive in tens of milliseconds on the local stack; 15 s
// absorbs a busy 2-core CI machine without hiding a lost event for long.
const LIVE_MS = 15_000;

let stack;
let browser;
const run = Date.now().toString(36);

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Signs a user in through the picker in a fresh context. */
async function openAs(sub, name, opened) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[${sub}] page error:`, err));
  opened.push({ sub, page, context });
  await page.goto(stack.endpoints.demo);
  await page.selectOption('#user-select', '');
  await page.fill('#user-id', sub);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector(`body[data-ready="${sub}"]`, { timeout: LIVE_MS });
  await page.waitForSelector('#state[data-state="open"]', { timeout: LIVE_MS });
  return page;
}

/** Runs a scenario; on failure keeps a screenshot of every page. */
async function scenario(t, fn) {
  const opened = [];
  try {
    await fn(opened);
  } catch (err) {
    const dir = screenshotDir();
    for (const { sub, page } of opened) {
      const file = join(dir, `${t.name.replace(/\W+/g, '_')}-${sub}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    }
    console.error(`screenshots of the failure: ${dir}`);
    console.error(stack.logs.join('').slice(-3000));
    throw err;
  } finally {
    for (const { context } of opened) await context.close().catch(() => {});
  }
}

async function openGroup(page, groupId) {
  await page.click(`#my-groups li[data-group-id="${groupId}"] a`);
  await page.waitForSelector(`#group[data-group-id="${groupId}"]`, { timeout: LIVE_MS });
}

test('a post raises a toast for the other members, not for the author', async (t) => {
  await scenario(t, async (opened) => {
    const [alice, bob, carol] = [`alice-${run}`, `bob-${run}`, `carol-${run}`];
    const pa = await openAs(alice, alice, opened);
    const pb = await openAs(bob, bob, opened);
    const pc = await openAs(carol, carol, opened);

    // Alice creates a public group in the UI; the others see it arrive live
    // (group.created on "public") and join it from the list.
    await pa.fill('#create-group input[name=name]', `Hikers ${run}`);
    await pa.click('#create-group button[type=submit]');
    const groupId = await pa.waitForSelector('#group[data-group-id]').then((el) => el.getAttribute('data-group-id'));
    for (const p of [pb, pc]) {
      await p.click(`#public-groups li[data-group-id="${groupId}"] button.join`, { timeout: LIVE_MS });
      await p.waitForSelector(`#group[data-group-id="${groupId}"]`, { timeout: LIVE_MS });
    }
    // The member count followed both joins live on Alice's page.
    await pa.waitForFunction(() => document.querySelector('#member-count').textContent === '3', null, { timeout: LIVE_MS });

    await pa.fill('#post-form textarea', 'Summit at dawn');
    await pa.click('#post-form button[type=submit]');
    for (const p of [pb, pc]) {
      await p.waitForSelector('.toast[data-kind=post]:has-text("Summit at dawn")', { timeout: LIVE_MS });
      await p.waitForSelector('#posts li:has-text("Summit at dawn")', { timeout: LIVE_MS });
    }
    await pa.waitForSelector('#posts li:has-text("Summit at dawn")');
    // The others had their toast: had one been sent to Alice, it would be
    // there by now too (same push, same stack).
    assert.equal(await pa.locator('.toast[data-kind=post]').count(), 0, 'the author got a toast for her own post');
    // Bob's inbox counts the post as unread.
    await pb.waitForFunction(() => Number(document.querySelector('#inbox-count').textContent) >= 1, null, { timeout: LIVE_MS });
  });
});

test('ten users all see one post', async (t) => {
  await scenario(t, async (opened) => {
    const users = Array.from({ length: 10 }, (_, i) => `u${i}-${run}`);
    const owner = restAs(stack.endpoints, users[0]);
    const g = await owner('POST', '/groups', { name: `Ten ${run}`, description: '', visibility: 'public' });
    for (const u of users.slice(1)) await restAs(stack.endpoints, u)('POST', `/groups/${g.groupId}/members`);
    const pages = [];
    for (const u of users) {
      const p = await openAs(u, u, opened);
      await openGroup(p, g.groupId);
      pages.push(p);
    }
    await pages[0].fill('#post-form textarea', 'Hello, all ten');
    await pages[0].click('#post-form button[type=submit]');
    await Promise.all(pages.map((p) => p.waitForSelector('#posts li:has-text("Hello, all ten")', { timeout: LIVE_MS })));
    for (const p of pages.slice(1)) await p.waitForSelector('.toast[data-kind=post]', { timeout: LIVE_MS });
    // Exactly once on every page.
    for (const p of pages) assert.equal(await p.locator('#posts li:has-text("Hello, all ten")').count(), 1);
  });
});

test('an invitation arrives live, is accepted, and the member count updates live', async (t) => {
  await scenario(t, async (opened) => {
    const [alice, dave] = [`alice2-${run}`, `dave-${run}`];
    const pa = await openAs(alice, alice, opened);
    const pd = await openAs(dave, dave, opened);

    await pa.fill('#create-group input[name=name]', `Secret ${run}`);
    await pa.selectOption('#create-group select[name=visibility]', 'private');
    await pa.click('#create-group button[type=submit]');
    const groupId = await pa.waitForSelector('#group[data-group-id]').then((el) => el.getAttribute('data-group-id'));
    assert.equal(await pa.textContent('#member-count'), '1');

    await pa.click('#invite-button');
    await pa.fill('#invite-form input[name=userIds]', dave);
    await pa.click('#invite-send');
    await pa.waitForSelector(`#invite-result:has-text("Invited ${dave}")`, { timeout: LIVE_MS });
    await pa.click('#invite-form button[value=cancel]');

    // Dave's page: the invitation appears without a reload, with a toast
    // and an unread inbox entry.
    await pd.waitForSelector(`#invitations li[data-group-id="${groupId}"]`, { timeout: LIVE_MS });
    await pd.waitForSelector('.toast[data-kind=invitation]', { timeout: LIVE_MS });
    await pd.waitForFunction(() => document.querySelector('#inbox-count').textContent === '1', null, { timeout: LIVE_MS });

    await pd.click(`#invitations li[data-group-id="${groupId}"] button.accept`);
    await pd.waitForSelector(`#group[data-group-id="${groupId}"]`, { timeout: LIVE_MS });
    assert.equal(await pd.locator(`#invitations li[data-group-id="${groupId}"]`).count(), 0);

    // Alice sees the answer and the new member count live.
    await pa.waitForSelector(`#answers li[data-answer=accepted]:has-text("${dave}")`, { timeout: LIVE_MS });
    await pa.waitForFunction(() => document.querySelector('#member-count').textContent === '2', null, { timeout: LIVE_MS });
    await pa.waitForSelector(`#members li[data-user-id="${dave}"]`, { state: "attached", timeout: LIVE_MS });

    // Dave's inbox: mark read brings the unread count to 0.
    await pd.click('#inbox-button');
    await pd.waitForSelector('#inbox li.unread', { timeout: LIVE_MS });
    await pd.click('#inbox-mark-all');
    await pd.waitForFunction(() => document.querySelector('#inbox-count').textContent === '0', null, { timeout: LIVE_MS });
    assert.equal(await pd.locator('#inbox li.unread').count(), 0);
  });
});

test('offline catch-up: missed posts, a leave and a new group show once after the reconnect', async (t) => {
  await scenario(t, async (opened) => {
    const [amy, ben, cat] = [`amy-${run}`, `ben-${run}`, `cat-${run}`];
    const asBen = restAs(stack.endpoints, ben);
    const asCat = restAs(stack.endpoints, cat);
    const g = await asBen('POST', '/groups', { name: `Catch-up ${run}`, description: '', visibility: 'public' });
    await restAs(stack.endpoints, amy)('POST', `/groups/${g.groupId}/members`);
    await asCat('POST', `/groups/${g.groupId}/members`);
    const pa = await openAs(amy, amy, opened);
    await openGroup(pa, g.groupId);
    await pa.waitForFunction(() => document.querySelector('#member-count').textContent === '3', null, { timeout: LIVE_MS });

    // The page's socket drops: the browser goes offline.
    await opened[0].context.setOffline(true);
    await pa.waitForSelector('#state[data-state="offline"]', { timeout: LIVE_MS });
    await asBen('POST', `/groups/${g.groupId}/posts`, { content: 'missed one' });
    await asBen('POST', `/groups/${g.groupId}/posts`, { content: 'missed two' });
    await asCat('DELETE', `/groups/${g.groupId}/members/me`);
    const fresh = await asBen('POST', '/groups', { name: `Fresh ${run}`, description: '', visibility: 'public' });

    await opened[0].context.setOffline(false);
    await pa.waitForSelector('#state[data-state="open"]', { timeout: LIVE_MS });
    // Replayed on the new socket, each once.
    for (const text of ['missed one', 'missed two']) {
      await pa.waitForSelector(`#activity li[data-type="group.post_created"]:has-text("${text}")`, { timeout: LIVE_MS });
      await pa.waitForSelector(`#posts li:has-text("${text}")`, { timeout: LIVE_MS });
    }
    await pa.waitForSelector(`#activity li[data-type="group.member_left"]:has-text("${cat}")`, { timeout: LIVE_MS });
    await pa.waitForSelector(`#activity li[data-type="group.created"]:has-text("Fresh ${run}")`, { timeout: LIVE_MS });
    await pa.waitForSelector(`#public-groups li[data-group-id="${fresh.groupId}"]`, { timeout: LIVE_MS });
    await pa.waitForFunction(() => document.querySelector('#member-count').textContent === '2', null, { timeout: LIVE_MS });
    // Let any late duplicate arrive before counting.
    await pa.waitForTimeout(1_000);
    for (const text of ['missed one', 'missed two']) {
      assert.equal(await pa.locator(`#activity li[data-type="group.post_created"]:has-text("${text}")`).count(), 1, `${text} shown twice`);
      assert.equal(await pa.locator(`#posts li:has-text("${text}")`).count(), 1);
    }
    assert.equal(await pa.locator(`#activity li[data-type="group.member_left"]:has-text("${cat}")`).count(), 1);
    assert.equal(await pa.locator(`#activity li[data-type="group.created"]:has-text("Fresh ${run}")`).count(), 1);
    assert.equal(await pa.locator(`#public-groups li[data-group-id="${fresh.groupId}"]`).count(), 1);
    // Recovered by replay, not by reloading everything.
    assert.equal(await pa.evaluate(() => document.body.dataset.resyncs ?? '0'), '0');
    // Live events go on.
    await asBen('POST', `/groups/${g.groupId}/posts`, { content: 'back live' });
    await pa.waitForSelector('.toast[data-kind=post]:has-text("back live")', { timeout: LIVE_MS });
  });
});
