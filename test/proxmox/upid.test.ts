import { getEventListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatUpid, parseUpid, taskOutcome } from '../../src/proxmox/upid.js';
import { waitForTask, TaskTimeoutError } from '../../src/proxmox/tasks.js';
import type { TaskStatus } from '../../src/proxmox/types.js';

const recorded = JSON.parse(
  readFileSync(new URL('../fixtures/pve/recorded/node-tasks.vzdump.home-assistant-core.json', import.meta.url), 'utf8'),
) as { data: Array<{ upid: string; pid: number; pstart: number; starttime: number }> };

describe('UPID', () => {
  it('parses a recorded UPID consistently with its task entry (empty id, hex fields)', () => {
    const entry = recorded.data[0]!;
    expect(parseUpid(entry.upid)).toEqual({
      node: 'pve1',
      pid: entry.pid,
      pstart: entry.pstart,
      starttime: entry.starttime,
      type: 'vzdump',
      id: '',
      user: 'root@pam',
    });
    expect(formatUpid(parseUpid(entry.upid))).toBe(entry.upid);
  });

  it('keeps an API token user and formats uppercase hex with a trailing colon', () => {
    const upid = formatUpid({
      node: 'pve-2',
      pid: 0x3a220,
      pstart: 0x1b2c420,
      starttime: 0x6650a1e0,
      type: 'qmstop',
      id: '101',
      user: 'sync@pve!daemon',
    });
    expect(upid).toBe('UPID:pve-2:0003A220:01B2C420:6650A1E0:qmstop:101:sync@pve!daemon:');
    expect(parseUpid(upid).user).toBe('sync@pve!daemon');
  });

  it('rejects what is not a UPID, naming it', () => {
    for (const bad of [
      '',
      'UPID:pve1:1:2:3:qmstart:100:root@pam:',
      'UPID:pve1:0003A220:01B2C420:6650A1E0:qmstop:101:root@pam',
      'UPID:-bad:0003A220:01B2C420:6650A1E0:x::u:',
    ]) {
      expect(() => parseUpid(bad)).toThrow(/not a Proxmox task id/);
    }
  });

  it('round-trips any valid task id', () => {
    const name = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.record({
          node: name,
          pid: fc.integer({ min: 0, max: 0xffffffff }),
          pstart: fc.integer({ min: 0, max: 0xffffffff }),
          starttime: fc.integer({ min: 0, max: 0xffffffff }),
          type: fc.constantFrom('qmstart', 'vzdump', 'qmigrate'),
          id: fc.oneof(fc.constant(''), fc.integer({ min: 100, max: 999999999 }).map(String)),
          user: fc.constantFrom('root@pam', 'a@pve!tok'),
        }),
        (u) => {
          expect(parseUpid(formatUpid(u))).toEqual(u);
        },
      ),
    );
  });

  it('classifies exit statuses as UPID.pm does', () => {
    expect(taskOutcome('OK')).toBe('ok');
    expect(taskOutcome('WARNINGS: 3')).toBe('warning');
    expect(taskOutcome('VM 100 already running')).toBe('error');
    expect(taskOutcome('unexpected status')).toBe('error');
    expect(taskOutcome('WARNINGS: x')).toBe('error');
  });
});

describe('waitForTask', () => {
  const upid = 'UPID:pve1:0003A200:01B2C400:6650A1C0:vzdump:100:root@pam:';
  const status = (s: Partial<TaskStatus>): TaskStatus => ({
    upid,
    node: 'pve1',
    starttime: 1,
    type: 'vzdump',
    id: '100',
    user: 'root@pam',
    status: 'running',
    ...s,
  });

  it('polls with backoff until the task stops, and reports warnings as success', async () => {
    const answers = [status({}), status({}), status({ status: 'stopped', exitstatus: 'WARNINGS: 2' })];
    let calls = 0;
    const result = await waitForTask(async () => answers[calls++]!, upid, { intervalMs: 1 });
    expect(calls).toBe(3);
    expect(result).toEqual({ upid, outcome: 'warning', exitstatus: 'WARNINGS: 2', ok: true });
  });

  it('gives up after the timeout, saying the task continues', async () => {
    await expect(waitForTask(async () => status({}), upid, { intervalMs: 5, timeoutMs: 30 })).rejects.toBeInstanceOf(
      TaskTimeoutError,
    );
    await expect(waitForTask(async () => status({}), upid, { intervalMs: 5, timeoutMs: 30 })).rejects.toThrow(
      /continues on Proxmox/,
    );
  });

  it('stops on abort and leaves no listener behind on the signal', async () => {
    const controller = new AbortController();
    let calls = 0;
    const waiting = waitForTask(
      async () => {
        if (++calls === 20) controller.abort(new Error('shutting down'));
        return status({});
      },
      upid,
      { intervalMs: 1, maxIntervalMs: 1, signal: controller.signal },
    );
    await expect(waiting).rejects.toThrow('shutting down');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('refuses a malformed UPID before polling', async () => {
    let calls = 0;
    await expect(waitForTask(async () => (calls++, status({})), 'nope')).rejects.toThrow(/not a Proxmox task id/);
    expect(calls).toBe(0);
  });
});
