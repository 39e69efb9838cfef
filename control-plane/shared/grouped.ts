/**
 * Loads the children of many parents in one statement and groups them by parent: the
 * shape every dataloader batch function of a one-to-many relation needs. Every requested
 * id gets a list (empty when it has no children); no statement runs for no ids.
 */
export async function loadGrouped<Row, Out = Row>(
  ids: readonly string[],
  load: (ids: readonly string[]) => Promise<Row[]>,
  parentOf: (row: Row) => string,
  map: (row: Row) => Out = (row) => row as unknown as Out,
): Promise<Map<string, Out[]>> {
  const out = new Map<string, Out[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  for (const row of await load(ids)) out.get(parentOf(row))?.push(map(row));
  return out;
}
