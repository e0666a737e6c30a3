import { describe, expect, it } from 'vitest';
import { defineJob } from '../../lib/api/job.ts';
import { configFromEnv, withEnvOptions } from '../../lib/aws/runtime.ts';

const base = { SLUICE_STATE_BUCKET: 'state', SLUICE_TABLE: 'meta', SLUICE_WORKER_FUNCTION: 'worker' };

describe('the handlers’ configuration from the environment', () => {
  it('reads the resources, the concurrency and one endpoint for every service', () => {
    const config = configFromEnv({ ...base, SLUICE_CONCURRENCY: '8', SLUICE_AWS_ENDPOINT: 'http://localhost:4566', AWS_REGION: 'eu-west-1' }, 'coordinator');
    expect(config).toMatchObject({ stateBucket: 'state', table: 'meta', workerFunction: 'worker', concurrency: 8 });
    expect(config.aws).toEqual({
      region: 'eu-west-1',
      endpoint: { s3: 'http://localhost:4566', dynamodb: 'http://localhost:4566', kinesis: 'http://localhost:4566', lambda: 'http://localhost:4566' },
    });
  });

  it('reads the deployment (the metrics’ Stack dimension) and high-resolution metrics, neither set by default', () => {
    expect(configFromEnv({ ...base, SLUICE_DEPLOYMENT: 'clicks-prod', SLUICE_HIGH_RESOLUTION_METRICS: 'true' })).toMatchObject({ deployment: 'clicks-prod', highResolutionMetrics: true });
    expect(configFromEnv(base)).toMatchObject({ deployment: undefined, highResolutionMetrics: undefined });
    expect(() => configFromEnv({ ...base, SLUICE_HIGH_RESOLUTION_METRICS: 'yes' })).toThrow(/SLUICE_HIGH_RESOLUTION_METRICS must be true or false, got "yes"/);
  });

  it('takes per-service endpoints over the common one, and LocalStack’s AWS_ENDPOINT_URL when no Sluice endpoint is set', () => {
    const per = configFromEnv({ ...base, SLUICE_AWS_ENDPOINT: 'http://a', SLUICE_S3_ENDPOINT: 'http://s3' });
    expect(per.aws?.endpoint).toMatchObject({ s3: 'http://s3', dynamodb: 'http://a' });
    const localstack = configFromEnv({ ...base, AWS_ENDPOINT_URL: 'http://localhost.localstack.cloud:4566' });
    expect(localstack.aws?.endpoint).toMatchObject({ kinesis: 'http://localhost.localstack.cloud:4566' });
    expect(configFromEnv(base).aws?.endpoint).toEqual({ s3: undefined, dynamodb: undefined, kinesis: undefined, lambda: undefined });
  });

  it('names the variable that is missing or wrong', () => {
    expect(() => configFromEnv({ SLUICE_TABLE: 'meta' })).toThrow(/SLUICE_STATE_BUCKET is not set/);
    expect(() => configFromEnv({ SLUICE_STATE_BUCKET: 'state', SLUICE_TABLE: 'meta' }, 'coordinator')).toThrow(/SLUICE_WORKER_FUNCTION is not set/);
    expect(() => configFromEnv({ ...base, SLUICE_CONCURRENCY: 'many' })).toThrow(/SLUICE_CONCURRENCY must be a whole number >= 1, got many/);
  });

  it('sets the batch interval and onRecordError a deployment chooses; the checkpoint interval follows the batch interval', () => {
    const job = defineJob({ name: 'j', batchInterval: '400ms' }, () => undefined);
    expect(withEnvOptions(job, {})).toBe(job);
    const deployed = withEnvOptions(job, { SLUICE_BATCH_INTERVAL: '5000', SLUICE_ON_RECORD_ERROR: 'dead-letter' });
    expect(deployed.options).toMatchObject({ name: 'j', batchInterval: 5000, checkpointInterval: 50_000, onRecordError: 'dead-letter' });
    expect(withEnvOptions(job, { SLUICE_BATCH_INTERVAL: '2s' }).options.batchInterval).toBe(2000);
    // A checkpoint interval the job sets must stay a multiple of the new batch interval.
    const fixed = defineJob({ name: 'k', batchInterval: '1s', checkpointInterval: '10s' }, () => undefined);
    expect(() => withEnvOptions(fixed, { SLUICE_BATCH_INTERVAL: '3s' })).toThrow(/checkpointInterval \(10000 ms\) must be a multiple of the batch interval \(3000 ms\)/);
    expect(() => withEnvOptions(job, { SLUICE_ON_RECORD_ERROR: 'skip' })).toThrow(/onRecordError must be 'fail' or 'dead-letter', got the string "skip"/);
    expect(() => withEnvOptions(job, { SLUICE_BATCH_INTERVAL: 'soon' })).toThrow(/batchInterval/);
  });

  it('sets writeEmptyBatches from SLUICE_WRITE_EMPTY_BATCHES (true or false), over the job’s own', () => {
    const job = defineJob({ name: 'j', batchInterval: '1s' }, () => undefined);
    const spark = defineJob({ name: 's', batchInterval: '1s', writeEmptyBatches: true }, () => undefined);
    expect(withEnvOptions(job, { SLUICE_WRITE_EMPTY_BATCHES: 'true' }).options.writeEmptyBatches).toBe(true);
    expect(withEnvOptions(spark, { SLUICE_WRITE_EMPTY_BATCHES: 'false' }).options.writeEmptyBatches).toBe(false);
    expect(withEnvOptions(spark, { SLUICE_WRITE_EMPTY_BATCHES: '' })).toBe(spark);
    expect(() => withEnvOptions(job, { SLUICE_WRITE_EMPTY_BATCHES: 'yes' })).toThrow(/^SLUICE_WRITE_EMPTY_BATCHES must be true or false, got "yes"$/);
    expect(() => withEnvOptions(job, { SLUICE_WRITE_EMPTY_BATCHES: 'TRUE' })).toThrow(/SLUICE_WRITE_EMPTY_BATCHES must be true or false, got "TRUE"/);
  });
});
