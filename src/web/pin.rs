//! The local PIN check of `cardUpdate` ([`crate::pin`]) for the browser: [`PinOptions`]
//! carries what to verify, the page's `pin()` and `onPinPad()` are its [`PinEntry`], and
//! both reader exports (`ReaderCore.verifyPin`, `SmartCardCore.verifyPin`) run it on their
//! [`WebChannel`], so the check is compiled once.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use crate::pin::{self, Pin, PinCheck, PinEntry, PinError};
use crate::reader::PinVerify;
use crate::web::bindings::{driver_error, future_to_promise, hinted_error, invalid, SignalLink};
use crate::web::promise::Settled;
use crate::web::smartcard::WebChannel;

/// What `verifyPin` checks: the PIN reference (P2 of VERIFY), the application to SELECT
/// first, and whether the reader's PIN pad takes the PIN (with its parameters, CCID Rev 1.1
/// §6.1.11.4). The JavaScript layer checks that each number is a byte first.
#[wasm_bindgen]
#[derive(Debug)]
pub struct PinOptions(PinCheck);

#[wasm_bindgen]
impl PinOptions {
    /// VERIFY of `reference`, after SELECT of the AID `select` when given.
    #[wasm_bindgen(constructor)]
    pub fn new(reference: u8, select: Option<Vec<u8>>) -> PinOptions {
        PinOptions(PinCheck {
            select,
            ..PinCheck::new(reference)
        })
    }

    /// The PIN is typed on the reader's PIN pad: fewest and most digits (default 4 and 16),
    /// seconds the reader waits (30), and the byte that pads the PIN to a block of
    /// `maxDigits` bytes (default none: Lc is the PIN's length).
    #[wasm_bindgen(js_name = usePad)]
    pub fn use_pad(
        &mut self,
        #[wasm_bindgen(js_name = minDigits)] min_digits: Option<u8>,
        #[wasm_bindgen(js_name = maxDigits)] max_digits: Option<u8>,
        timeout: Option<u8>,
        padding: Option<u8>,
    ) -> Result<(), JsValue> {
        let default = PinVerify::default();
        let pad = PinVerify {
            reference: self.0.reference,
            min_digits: min_digits.unwrap_or(default.min_digits),
            max_digits: max_digits.unwrap_or(default.max_digits),
            timeout_s: timeout.unwrap_or(default.timeout_s),
            padding,
        };
        if pad.min_digits == 0 || pad.max_digits == 0 || pad.timeout_s == 0 {
            return Err(invalid(
                "minDigits, maxDigits and timeout must be at least 1",
            ));
        }
        if pad.min_digits > pad.max_digits {
            return Err(invalid("minDigits must not exceed maxDigits"));
        }
        // bmPINBlockString gives the block size four bits (CCID §6.1.11.4).
        if pad.padding.is_some() && pad.max_digits > 15 {
            return Err(invalid("with padding, maxDigits is at most 15"));
        }
        self.0.pad = Some(pad);
        Ok(())
    }
}

/// The page's side: `onPinPad(triesLeft)` and `pin(triesLeft)`, which resolves to the PIN
/// as a string (null: cancelled). Their exceptions reject the check as they are.
struct PageEntry {
    on_pad: Option<Function>,
    pin: Option<Function>,
}

fn tries(tries_left: Option<u8>) -> JsValue {
    tries_left.map_or(JsValue::NULL, JsValue::from)
}

impl PinEntry for PageEntry {
    type Error = JsValue;

    fn on_pad(&mut self, tries_left: Option<u8>) -> Result<(), JsValue> {
        match &self.on_pad {
            Some(f) => f.call1(&JsValue::UNDEFINED, &tries(tries_left)).map(drop),
            None => Ok(()),
        }
    }

    fn can_ask(&self) -> bool {
        self.pin.is_some()
    }

    async fn ask(&mut self, tries_left: Option<u8>) -> Result<Option<Pin>, JsValue> {
        let Some(f) = &self.pin else {
            return Ok(None);
        };
        let answer = f.call1(&JsValue::UNDEFINED, &tries(tries_left))?;
        let pin = Settled::new(&Promise::resolve(&answer)).await?;
        Ok(pin.as_string().map(Pin::from))
    }
}

/// The error JavaScript receives: the page's own exception as it is, the others as
/// `CardRelayError`s.
fn pin_error(e: PinError<JsValue>) -> JsValue {
    match e {
        PinError::Entry(page) => page,
        PinError::Driver(d) => driver_error(&d),
        other => hinted_error(other.code(), &other.to_string(), None, other.hint()),
    }
}

/// Runs the check of `options` on `slot` of `channel`; resolves to undefined once the card
/// accepted the PIN.
pub(crate) fn verify_promise(
    channel: WebChannel,
    slot: u8,
    options: PinOptions,
    on_pad: Option<Function>,
    pin: Option<Function>,
    signal: Option<AbortSignal>,
) -> Promise {
    future_to_promise(async move {
        let link = SignalLink::new(signal);
        let mut entry = PageEntry { on_pad, pin };
        pin::verify(&channel, slot, &options.0, &mut entry, Some(&link.abort))
            .await
            .map_err(pin_error)?;
        Ok(JsValue::UNDEFINED)
    })
}
