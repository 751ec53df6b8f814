/** D1 binds at most 100 parameters per query: `IN (...)` lists are split so each query stays under it. */
export const D1_MAX_BOUND_PARAMETERS = 100;

export async function selectInChunks<T, R>(values: T[], query: (chunk: T[]) => Promise<R[]>, reserved = 10): Promise<R[]> {
  const size = D1_MAX_BOUND_PARAMETERS - reserved;
  const out: R[] = [];
  for (let i = 0; i < values.length; i += size) out.push(...(await query(values.slice(i, i + size))));
  return out;
}
