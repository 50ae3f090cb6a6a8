// The one Node.js global js/card-relay.js uses (in its Node-only fetch, never in a
// browser), declared as far as it is used: @types/node is not installed.
declare const Buffer: {
  from(buffer: ArrayBufferLike, byteOffset?: number, length?: number): Uint8Array;
  concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer>;
};
