/**
 * How many values each list_guests filter can take (tags, pools, bridges, VLANs, storages,
 * ostypes), for the overview: three small reads of guest_facet_counts, pools and storage, where
 * listing the values with their counts (counts.ts listValues) costs several times more.
 */
import type { Store } from '../db.js';
import { guestFacetCounts, pools, storage } from '../schema.js';
import { statement } from './facts.js';
import { oneRead } from './shared.js';

/** A type, not an interface, so it fits an answer's open object. */
export type ValueCounts = {
  tags: number;
  pools: number;
  bridges: number;
  vlans: number;
  storages: number;
  ostypes: number;
};

const c = (key: keyof typeof guestFacetCounts._.columns & string): string => `"${guestFacetCounts[key].name}"`;

/** Distinct values with live guests (every pool and every storage the clusters report), of one cluster or all. */
export function countValues(store: Store, scope: { cluster?: string } = {}): ValueCounts {
  const one = scope.cluster !== undefined;
  const params = one ? { cluster: scope.cluster } : {};
  const inCluster = (column: string): string => (one ? ` AND ${column} = @cluster` : '');
  return oneRead(store, () => {
    const facets = statement(
      store,
      `value-counts:${one}`,
      () =>
        `SELECT ${c('facet')} AS facet, count(DISTINCT ${c('value')}) AS n FROM "guest_facet_counts"
        WHERE ${c('facet')} IN ('tag', 'bridge', 'vlan', 'ostype') AND ${c('value')} <> '' AND ${c('guests')} > 0${inCluster(c('cluster'))}
        GROUP BY 1`,
    ).all(params) as Array<{ facet: string; n: number }>;
    const n = (facet: string): number => facets.find((f) => f.facet === facet)?.n ?? 0;
    const poolCount = statement(
      store,
      `value-counts-pools:${one}`,
      () => `SELECT count(*) FROM "pools" WHERE 1${inCluster(`"${pools.cluster.name}"`)}`,
    )
      .pluck()
      .get(params) as number;
    const storageCount = statement(
      store,
      `value-counts-storage:${one}`,
      () =>
        `SELECT count(*) FROM (SELECT "${storage.storage.name}" FROM "storage" WHERE 1${inCluster(`"${storage.cluster.name}"`)}
        UNION SELECT ${c('value')} FROM "guest_facet_counts" WHERE ${c('facet')} = 'storage' AND ${c('value')} <> '' AND ${c('guests')} > 0${inCluster(c('cluster'))})`,
    )
      .pluck()
      .get(params) as number;
    return {
      tags: n('tag'),
      pools: poolCount,
      bridges: n('bridge'),
      vlans: n('vlan'),
      storages: storageCount,
      ostypes: n('ostype'),
    };
  });
}
