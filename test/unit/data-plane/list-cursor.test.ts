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
});
