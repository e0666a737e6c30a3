// The npm emulators ship no type declarations; these are the parts the tests use.
declare module 'dynalite' {
  const dynalite: (options?: Record<string, unknown>) => unknown;
  export default dynalite;
}
declare module 'kinesalite' {
  const kinesalite: (options?: Record<string, unknown>) => unknown;
  export default kinesalite;
}
declare module 's3rver' {
  export default class S3rver {
    constructor(options: Record<string, unknown>);
    run(): Promise<unknown>;
    close(): Promise<void>;
  }
}
