// Starts the real local stack (devstack, with the demo) and headless
// Chromium for the browser tests. Loopback only: every port is a free
// 127.0.0.1 port.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const repo = resolve(import.meta.dirname, '..', '..');

// devstack builds every function on start; on a cold build cache that
// takes minutes, so allow five.
const STACK_START_MS = 5 * 60_000;

export async function startStack() {
  const dir = mkdtempSync(join(tmpdir(), 'groupcast-e2e-'));
  const ready = join(dir, 'ready.json');
  const bin = process.env.DEVSTACK_BIN;
  const args = ['--host', '127.0.0.1', '--http-port', '0', '--ws-port', '0', '--tokens-port', '0', '--dynamodb-port', '0', '--web-port', '0', '--ready-file', ready];
  const [cmd, argv] = bin ? [bin, args] : ['go', ['run', './cmd/devstack', ...args]];
  const logs = [];
  const proc = spawn(cmd, argv, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  proc.stdout.on('data', (d) => logs.push(String(d)));
  proc.stderr.on('data', (d) => logs.push(String(d)));
  const deadline = Date.now() + STACK_START_MS;
  while (!existsSync(ready) || !readFileSync(ready, 'utf8').trim().endsWith('}')) {
    if (proc.exitCode !== null) throw new Error(`devstack exited ${proc.exitCode}:\n${logs.join('').slice(-4000)}`);
    if (Date.now() > deadline) {
      stop();
      throw new Error(`devstack not ready in ${STACK_START_MS / 1000} s:\n${logs.join('').slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const endpoints = JSON.parse(readFileSync(ready, 'utf8'));
  function stop() {
    if (proc.exitCode !== null) return Promise.resolve();
    return new Promise((res) => {
      // devstack closes its sockets and functions on SIGTERM; kill the
      // group if it does not within its 10 s shutdown budget.
      const timer = setTimeout(() => {
        try { process.kill(-proc.pid, 'SIGKILL'); } catch {}
      }, 15_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
        res();
      });
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { res(); }
    });
  }
  return { endpoints, stop, logs };
}

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Chromium with a fresh profile (playwright gives launch() a new temporary --user-data-dir). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 60_000,
  });
}

/** Where failure screenshots go; printed once. */
let shotDir;
export function screenshotDir() {
  if (!shotDir) {
    shotDir = process.env.SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'groupcast-screens-'));
    mkdirSync(shotDir, { recursive: true });
  }
  return shotDir;
}

/** Mints a development token and calls the REST API, for test set-up. */
export function restAs(endpoints, sub, name = sub) {
  let token;
  const call = async (method, path, body) => {
    if (!token) {
      const r = await fetch(endpoints.tokens, { method: 'POST', body: JSON.stringify({ sub, name }) });
      token = (await r.json()).token;
    }
    const res = await fetch(endpoints.httpApi + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return call;
}
