import { describe, expect, it } from 'vitest';
import { RpcError } from '../../../data-plane/mcp/json-rpc.js';
import { ListPager } from '../../../data-plane/mcp/list-cursor.js';

const SECRET = 'list-cursor-secret-0123456789abcdef0123';
const items = Array.from({ length: 7 }, (_, i) => ({ name: `tool_${i + 1}` }));
const name = (item: { name: string }) => item.name;
const where = { featureType: 'tools' as const, gatewayId: 'gw-1', snapshotVersion: 3 };

function refusal(run: () => unknown): RpcError {
  try {
    run();
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
  throw new Error('expected an RpcError');
}

describe('ListPager', () => {
  it('serves a short list whole, without a cursor', () => {
    const pager = new ListPager(SECRET, 10);
    expect(pager.page(items, name, where, undefined)).toEqual({ items, nextCursor: undefined });
  });

  it('pages a long list, each cursor leading to the next page; any pager with the secret reads them', () => {
    const pager = new ListPager(SECRET, 3);
    const first = pager.page(items, name, where, undefined);
    expect(first.items.map(name)).toEqual(['tool_1', 'tool_2', 'tool_3']);
    const second = new ListPager(SECRET, 3).page(items, name, where, first.nextCursor);
    expect(second.items.map(name)).toEqual(['tool_4', 'tool_5', 'tool_6']);
    const last = pager.page(items, name, where, second.nextCursor);
    expect(last).toEqual({ items: [{ name: 'tool_7' }], nextCursor: undefined });
  });

  it('refuses cursors of another secret, gateway, type or snapshot, of a changed list, and garbage, with -32602', () => {
    const pager = new ListPager(SECRET, 3);
    const cursor = pager.page(items, name, where, undefined).nextCursor;
    const cases: [string, () => unknown][] = [
      ['other secret', () => new ListPager(`${SECRET}x`, 3).page(items, name, where, cursor)],
      ['other gateway', () => pager.page(items, name, { ...where, gatewayId: 'gw-2' }, cursor)],
      ['other type', () => pager.page(items, name, { ...where, featureType: 'prompts' }, cursor)],
      ['new snapshot', () => pager.page(items, name, { ...where, snapshotVersion: 4 }, cursor)],
      ['changed list', () => pager.page([...items.slice(1), { name: 'tool_8' }], name, where, cursor)],
      ['garbage', () => pager.page(items, name, where, 'c1.e30.AAAA')],
      ['not a string', () => pager.page(items, name, where, 12)],
    ];
    for (const [label, run] of cases) {
      const error = refusal(run);
      expect(error.code, label).toBe(-32602);
    }
  });

  it('refuses an invalid page size', () => {
    expect(() => new ListPager(SECRET, 0)).toThrow(/positive integer/);
  });

  describe('lists kept for the next pages', () => {
    it('serves the next pages of a list it built from that list, and what was kept with it', () => {
      const pager = new ListPager(SECRET, 3);
      const first = pager.page(items, name, where, undefined, ['left out']);
      expect(pager.keptCount).toBe(1);
      const second = pager.resume<{ name: string }>(first.nextCursor, where)!;
      expect(second.page.items.map(name)).toEqual(['tool_4', 'tool_5', 'tool_6']);
      expect(second.extra).toEqual(['left out']);
      const last = pager.resume<{ name: string }>(second.page.nextCursor, where)!;
      expect(last.page).toEqual({ items: [{ name: 'tool_7' }], nextCursor: undefined });
      // The pages from the kept list are the pages listing again would give.
      expect(new ListPager(SECRET, 3).page(items, name, where, first.nextCursor)).toEqual(second.page);
    });

    it('keeps nothing for a list of one page, and has nothing for a first page or for a cursor it did not issue', () => {
      const pager = new ListPager(SECRET, 10);
      pager.page(items, name, where, undefined);
      expect(pager.keptCount).toBe(0);
      expect(pager.resume(undefined, where)).toBeUndefined();
      const elsewhere = new ListPager(SECRET, 3).page(items, name, where, undefined).nextCursor;
      expect(new ListPager(SECRET, 3).resume(elsewhere, where)).toBeUndefined();
    });

    it('forgets a kept list after its time, and the oldest list beyond the limit', () => {
      let now = 1_000;
      const pager = new ListPager(SECRET, 3, { ttlMs: 100, maxLists: 2, maxItems: 100 }, () => now);
      const cursor = pager.page(items, name, where, undefined).nextCursor;
      now += 99;
      expect(pager.resume(cursor, where)).toBeDefined();
      now += 1;
      expect(pager.resume(cursor, where)).toBeUndefined();
      expect(pager.keptCount).toBe(0);

      const lists = [1, 2, 3].map((n) => items.map((item) => ({ name: `${item.name}_${n}` })));
      const cursors = lists.map((list) => pager.page(list, name, where, undefined).nextCursor);
      expect(pager.keptCount).toBe(2);
      expect(pager.resume(cursors[0], where)).toBeUndefined();
      expect(pager.resume(cursors[1], where)).toBeDefined();
      expect(pager.resume(cursors[2], where)).toBeDefined();
    });

    it('bounds the items of all kept lists together, and keeps no list longer than that', () => {
      const pager = new ListPager(SECRET, 3, { ttlMs: 1_000, maxLists: 10, maxItems: 15 }, () => 0);
      const cursors = [1, 2, 3].map((n) => pager.page(items.map((item) => ({ name: `${item.name}_${n}` })), name, where, undefined).nextCursor);
      // 7 + 7 fit; the third list pushes the first out.
      expect(pager.keptCount).toBe(2);
      expect(pager.resume(cursors[0], where)).toBeUndefined();
      expect(pager.resume(cursors[2], where)).toBeDefined();
      const long = Array.from({ length: 16 }, (_, i) => ({ name: `long_${i}` }));
      pager.page(long, name, where, undefined);
      expect(pager.keptCount).toBe(2);
    });

    it('refuses cursors that are not valid for the list asked, as paging by listing again does', () => {
      const pager = new ListPager(SECRET, 3);
      const cursor = pager.page(items, name, where, undefined).nextCursor;
      for (const [label, run] of [
        ['other gateway', () => pager.resume(cursor, { ...where, gatewayId: 'gw-2' })],
        ['other type', () => pager.resume(cursor, { ...where, featureType: 'prompts' })],
        ['new snapshot', () => pager.resume(cursor, { ...where, snapshotVersion: 4 })],
        ['forged', () => pager.resume('c1.e30.AAAA', where)],
        ['not a string', () => pager.resume(7, where)],
      ] as const) {
        expect(refusal(run).code, label).toBe(-32602);
      }
    });
  });
});
