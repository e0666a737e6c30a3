// The Lambda Invoke endpoint lives in lib/ since `sluice dev-aws` runs the handlers behind it too.
export { type Handler, type LambdaEndpoint, startLambdaEndpoint } from '../../lib/aws/dev/lambdaEndpoint.ts';
