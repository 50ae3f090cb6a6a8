// The JavaScript layer and its published types, checked against each other by tsc
// (tsconfig.layer.json): js/card-relay.js is type-checked (`// @ts-check`, its JSDoc naming
// the published types), and here each export of the implementation is assigned to its
// published type, and each published function back to the implementation's, so an export
// missing on either side, or a parameter or result that differs, fails the build.
// `./impl/card-relay.js` is a link to js/card-relay.js: imported by its own path, TypeScript
// would read the sibling card-relay.d.ts instead of the code.
import * as impl from "./impl/card-relay.js";
import type * as published from "card-relay";
import type * as simulator from "../../js/simulator";
import { createSimulatedReader as wasmSimulatedReader } from "../../pkg-sim/card_relay.js";
import type * as glue from "../../pkg/card_relay.js";

declare const pub: typeof published;

/** True when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<T extends true>(): T | undefined {
  return undefined;
}

// The functions taking a CardReader: classes with private fields are nominal, so these are
// compared by their other parameters and results (the classes' members are compared below).
// CardReaderEvent's `type` is Event's (below), so its constructor is compared alone; the
// published CardReader and CardAgent have private constructors: their static members and
// instances are compared below.
type Apart = "cardUpdate" | "cardUpdateFromLegacyUrl" | "CardReaderEvent" | "CardReader" | "CardAgent";
type Rest<F> = F extends (reader: never, ...rest: infer R) => infer Out ? [R, Out] : never;
same<Equal<Rest<typeof impl.cardUpdate>, Rest<typeof published.cardUpdate>>>();
same<Equal<Rest<typeof impl.cardUpdateFromLegacyUrl>, Rest<typeof published.cardUpdateFromLegacyUrl>>>();
same<Equal<ConstructorParameters<typeof impl.CardReaderEvent>, ConstructorParameters<typeof published.CardReaderEvent>>>();

// Implementation → published: every declared export exists, with a compatible type.
export const implementation: Omit<typeof published, Apart> = impl;

// Published → implementation, where the types are structural (classes with private fields
// are nominal, and checked one way above; connectAgent resolves to one; the numbers and
// strings are their values in the implementation, published as `number` and `string`).
export const functions: Pick<
  typeof impl,
  | "checkServerUrl"
  | "approvedServers"
  | "revokeServer"
  | "parseLegacyUrl"
  | "version"
  | "ERROR_CODES"
  | "CCID_FILTERS"
  | "VENDOR_CLASS_CCID_READERS"
> = pub;

// The static members (a mapped type keeps no construct signature).
export const readerStatics: Omit<typeof published.CardReader, "prototype"> = impl.CardReader;
export const agentStatics: Omit<typeof published.CardAgent, "prototype"> = impl.CardAgent;

// A CardAgent's and a CardReader's instance members, both ways.
declare const implAgent: impl.CardAgent;
declare const pubAgent: published.CardAgent;
export const agentMembers: Pick<impl.CardAgent, keyof impl.CardAgent> = pubAgent;
export const agentPublished: published.CardAgent = implAgent;
declare const implReader: impl.CardReader;
declare const pubReader: published.CardReader;
// (Members named by a symbol are internal: the published type leaves them out.)
export const readerMembers: Pick<impl.CardReader, Extract<keyof impl.CardReader, string>> = pubReader;
export const readerPublished: published.CardReader = implReader;

// The events, both ways (the published constructor is the implementation's).
declare const implEvent: impl.CardReaderEvent;
export const eventPublished: Omit<published.CardReaderEvent, "type"> = implEvent;
// (`type` is Event's: a string in the implementation, the event names in the published type.)
export const eventMembers: impl.CardReaderEvent = {} as published.CardReaderEvent;

// The simulator build's extra export: the WebAssembly function is what the published
// declaration promises.
export const simulated: typeof simulator.createSimulatedReader = wasmSimulatedReader;

// Method parameters are compared both ways (methods are bivariant in TypeScript, so the
// assignments above would let a narrower published parameter through): every member both
// sides have is the same type, but the listener methods the published type overloads.
type Mismatched<A, B> = {
  [K in keyof A & keyof B]: Equal<A[K], B[K]> extends true ? never : K;
}[keyof A & keyof B];
type Listening = "addEventListener" | "removeEventListener";
same<Equal<Exclude<Mismatched<impl.CardReader, published.CardReader>, Listening>, never>>();
same<Equal<Mismatched<impl.CardAgent, published.CardAgent>, never>>();
same<Equal<Mismatched<impl.CardRelayError, published.CardRelayError>, never>>();
same<Equal<Exclude<Mismatched<impl.CardReaderEvent, published.CardReaderEvent>, "type">, never>>();

// wasm-bindgen's own types (pkg/card_relay.d.ts, generated from the `#[wasm_bindgen]`
// exports in src/web/) are exact: no export the layer calls takes or gives `any`, nor a
// Promise of `any`, so the calls above are checked too (the exports take typed parameters;
// a JsValue would be `any`). `InitOutput`, the raw wasm ABI, is left out.
type IsAny<T> = 0 extends 1 & T ? true : false;
type Loose<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R
    ? true extends IsAny<R> | IsAny<Awaited<R>> | { [I in keyof A]: IsAny<A[I]> }[number]
      ? K
      : never
    : IsAny<T[K]> extends true
      ? K
      : never;
}[keyof T];
same<Equal<Loose<glue.ReaderCore>, never>>();
same<Equal<Loose<typeof glue.ReaderCore>, never>>();
same<Equal<Loose<glue.SmartCardCore>, never>>();
same<Equal<Loose<typeof glue.SmartCardCore>, never>>();
same<Equal<Loose<glue.PinOptions>, never>>();
same<Equal<Loose<Pick<typeof glue, "runCardUpdate" | "version">>, never>>();
