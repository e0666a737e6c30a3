/**
 * Sluice: Spark Streaming's DStream model on serverless AWS, and locally in one process.
 * Everything a job file needs is exported here.
 */
export { defineJob, type JobDefinition, type JobOptions, type OnRecordError } from './api/job.ts';
export { StreamingContext } from './api/context.ts';
export type { GeneratorStreamOptions, KinesisInitialPosition, KinesisStreamOptions, QueueStreamOptions, TextFileStreamOptions } from './core/sourceOptions.ts';
export { DStream, MapWithStateDStream, StateSpec, type BatchLike } from './api/dstream.ts';
export type { State } from './plan/state.ts';
export { type Duration, milliseconds, minutes, seconds, toMillis } from './api/duration.ts';
export { CheckpointError, FencedError, FetchFailedError, JobDefinitionError, LeaseHeldError, PlanChangedError, RecordError, SluiceError } from './core/errors.ts';
export type { BatchInfo, StreamingListener } from './core/listener.ts';
export type { Receiver } from './core/receiver.ts';
export { Batch, type PartitionInfo, type PartitionOptions } from './plan/batch.ts';
