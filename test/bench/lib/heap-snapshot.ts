/**
 * Reads V8 `.heapsnapshot` files and compares them: objects grouped by kind (constructor
 * name for objects and closures, node type for strings, numbers and code), and the
 * "three snapshot" leak test: objects allocated between snapshots A and B that are still
 * alive in C. V8 keeps object ids stable for the life of a process, and gives each object
 * its id the first time a snapshot sees it, so the survivors are the nodes of C whose id
 * lies in (max id of A, max id of B]. Node's embedder nodes (`native`, `synthetic`: its
 * C++ objects) are named by address, not numbered, so they take no part in the ids.
 */
import { readFileSync } from 'node:fs';

export interface HeapGroup {
  count: number;
  bytes: number;
}

export interface HeapSummary {
  readonly file: string;
  readonly totalBytes: number;
  readonly nodes: number;
  readonly maxId: number;
  readonly groups: ReadonlyMap<string, HeapGroup>;
}

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

const BY_TYPE = new Set(['string', 'concatenated string', 'sliced string', 'number', 'heap number', 'bigint', 'symbol', 'code']);
/** Embedder nodes: ids derived from addresses, not allocation order. */
const UNNUMBERED = new Set(['native', 'synthetic']);

function groupKey(type: string, name: string): string {
  if (BY_TYPE.has(type)) return `(${type})`;
  return `${type}: ${name.length > 80 ? `${name.slice(0, 77)}...` : name}`;
}

/** Walks the nodes of a snapshot, calling `visit(key, id, selfSize, numbered)` for each. */
function walk(file: string, visit: (key: string, id: number, size: number, numbered: boolean) => void): { nodes: number } {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const idAt = fields.indexOf('id');
  const sizeAt = fields.indexOf('self_size');
  const { nodes, strings } = raw;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    visit(groupKey(type, strings[nodes[i + nameAt]!]!), nodes[i + idAt]!, nodes[i + sizeAt]!, !UNNUMBERED.has(type));
  }
  return { nodes: nodes.length / width };
}

export function summarizeSnapshot(file: string): HeapSummary {
  const groups = new Map<string, HeapGroup>();
  let totalBytes = 0;
  let maxId = 0;
  const { nodes } = walk(file, (key, id, size, numbered) => {
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { count: 0, bytes: 0 }));
    group.count++;
    group.bytes += size;
    totalBytes += size;
    if (numbered && id > maxId) maxId = id;
  });
  return { file, totalBytes, nodes, maxId, groups };
}

/** Groups of the nodes of `file` whose id lies in (`afterId`, `upToId`]: allocated in that window and still alive. */
export function survivors(file: string, afterId: number, upToId: number): { totalBytes: number; count: number; groups: Map<string, HeapGroup> } {
  const groups = new Map<string, HeapGroup>();
  let totalBytes = 0;
  let count = 0;
  walk(file, (key, id, size, numbered) => {
    if (!numbered || id <= afterId || id > upToId) return;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { count: 0, bytes: 0 }));
    group.count++;
    group.bytes += size;
    totalBytes += size;
    count++;
  });
  return { totalBytes, count, groups };
}

export interface GroupDelta {
  readonly key: string;
  readonly countA: number;
  readonly countB: number;
  readonly bytesA: number;
  readonly bytesB: number;
}

/** Groups whose self size changed most between two summaries (largest growth first). */
export function diffSummaries(a: HeapSummary, b: HeapSummary, top = 15): GroupDelta[] {
  const keys = new Set([...a.groups.keys(), ...b.groups.keys()]);
  const deltas: GroupDelta[] = [];
  for (const key of keys) {
    const ga = a.groups.get(key) ?? { count: 0, bytes: 0 };
    const gb = b.groups.get(key) ?? { count: 0, bytes: 0 };
    if (ga.bytes === gb.bytes && ga.count === gb.count) continue;
    deltas.push({ key, countA: ga.count, countB: gb.count, bytesA: ga.bytes, bytesB: gb.bytes });
  }
  return deltas.sort((x, y) => Math.abs(y.bytesB - y.bytesA) - Math.abs(x.bytesB - x.bytesA)).slice(0, top);
}

/** The largest groups of a summary. */
export function largestGroups(summary: HeapSummary, top = 15): [string, HeapGroup][] {
  return [...summary.groups.entries()].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, top);
}
