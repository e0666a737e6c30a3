/*
 * The per-batch dataset, `Batch<T>` (Spark's RDD), with every operator: the one module to import
 * datasets from. The core class is in batch/base.ts; each family of operators is a file of its
 * own that adds its methods to `Batch` (module augmentation) and holds its datasets:
 *   stateless.ts  map, flatMap, filter, mapPartitions, glom, union
 *   pair.ts       mapValues, flatMapValues, reduceByKey, combineByKey, groupByKey, countByValue,
 *                 repartition, and ShuffledBatch, the reduce side of every shuffle
 *   joins.ts      cogroup, join, leftOuterJoin, rightOuterJoin, fullOuterJoin
 *   sort.ts       sortBy
 *   actions.ts    collect, take, count, foreachPartition (coordinator only)
 *   sources.ts    SourceBatch, StaticBatch: where records come from
 * The stateful dataset is with the state operators (state/stateful.ts). Every family is
 * re-exported here, not only imported for its side effects: the declarations then tie each
 * family, and so its methods on `Batch`, to this module for the package's users whatever a
 * compiler does with a bare import (test/plan/batchDeclarations.test.ts checks it).
 */
export * from './batch/base.ts';
export * from './batch/stateless.ts';
export * from './batch/pair.ts';
export * from './batch/joins.ts';
export * from './batch/sort.ts';
export * from './batch/actions.ts';
export * from './batch/sources.ts';
export { DEFAULT_STATE_PARTITIONS, StatefulBatch } from './state/stateful.ts';
