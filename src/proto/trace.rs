//! The APDU trace text of the OpenCard Framework's `StreamingAPDUTracer`, as printed by the
//! OCF card-update client (the seed's trace; ramoverhttp.md §3.3).
//!
//! ```text
//! 78 C: 00 A4 04 04 - SELECT Lc=11
//!       0005  E8 2B 06 01 04 01 81 C3 1F 02 01                 .+.........
//!    R: SW1/SW2=9000 (Normal processing: No error) Lr=9
//!       0000  62 07 82 01 78 85 02 01 02                       b...x....
//! 78 C: 00 84 00 00 - GET CHALLENGE      Le=69
//!  ATR: 3B FE 18 00 ...
//! ```
//!
//! Command line: slot id, `C:`, the header, `-`, the instruction name, then ` Lc=<Nc>` when
//! the command has data or `      Le=<Ne>` (six spaces) when it has none but expects data; an
//! extended APDU adds ` Extended`. The command data follow as a dump whose offsets count from
//! the data's position in the encoded APDU (0005 short, 0007 extended). Response line: `R:`
//! under the `C:`, the status word with its text and `Lr=<Nr>`, then the data dumped from
//! offset 0000. Dump lines: six spaces, a 4-digit hex offset, two spaces, 16 bytes as `XX `
//! (padded to 48 columns), one space, and the bytes as ASCII with `.` for anything outside
//! 20..7E.
//!
//! Secrets: the data of VERIFY (20), CHANGE REFERENCE DATA (24) and RESET RETRY COUNTER (2C)
//! are PINs; unless `show_secrets` is set the command line ends ` ******` and no dump follows.

use std::fmt::Write as _;

use crate::proto::apdu::{command_name, CommandApdu, ResponseApdu};
use crate::proto::hex;

/// Bytes per dump line.
const DUMP_WIDTH: usize = 16;

/// Formats trace lines for one reader slot.
///
/// Every method returns one or more lines joined by `\n`, without a trailing newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFormatter {
    /// The two-hex-digit id at the start of command lines (see [`slot_id`]).
    pub slot_id: u8,
    /// Print PIN data of VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER.
    pub show_secrets: bool,
}

impl TraceFormatter {
    /// A formatter that masks secrets.
    pub fn new(slot_id: u8) -> Self {
        TraceFormatter {
            slot_id,
            show_secrets: false,
        }
    }

    /// The command line and, unless masked, the dump of the command data.
    pub fn command(&self, apdu: &CommandApdu) -> String {
        let mut out = format!(
            "{:02X} C: {} - {}",
            self.slot_id,
            hex::spaced(&apdu.header()),
            command_name(apdu.cla, apdu.ins)
        );
        let extended = if apdu.is_extended() { " Extended" } else { "" };
        if !apdu.data.is_empty() {
            let _ = write!(out, " Lc={}{extended}", apdu.data.len());
            if is_secret(apdu.ins) && !self.show_secrets {
                out.push_str(" ******");
            } else {
                dump(&mut out, &apdu.data, apdu.data_offset());
            }
        } else if let Some(ne) = apdu.ne {
            let _ = write!(out, "      Le={ne}{extended}");
        }
        out
    }

    /// The response line and the dump of the response data.
    pub fn response(&self, rsp: &ResponseApdu) -> String {
        let mut out = format!(
            "   R: SW1/SW2={} ({}) Lr={}",
            rsp.sw,
            rsp.sw.description(),
            rsp.data.len()
        );
        dump(&mut out, &rsp.data, 0);
        out
    }

    /// The ATR line: ` ATR: ` and the bytes in spaced hex.
    pub fn atr(&self, atr: &[u8]) -> String {
        format!(" ATR: {}", hex::spaced(atr))
    }
}

/// Whether the data of this instruction is a PIN (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
/// COUNTER, 7816-4 §11.5).
pub fn is_secret(ins: u8) -> bool {
    matches!(ins, 0x20 | 0x21 | 0x24 | 0x2C)
}

/// Appends `\n`-led dump lines of `data`, the first offset being `start`.
fn dump(out: &mut String, data: &[u8], start: usize) {
    for (i, chunk) in data.chunks(DUMP_WIDTH).enumerate() {
        let offset = start + i * DUMP_WIDTH;
        let _ = write!(out, "\n      {offset:04X}  ");
        for b in chunk {
            let _ = write!(out, "{b:02X} ");
        }
        for _ in chunk.len()..DUMP_WIDTH {
            out.push_str("   ");
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| {
            if (0x20..=0x7E).contains(&b) {
                char::from(b)
            } else {
                '.'
            }
        }));
    }
}

/// A stable id for a reader slot, as OCF computes it: the low byte of Java's
/// `String.hashCode()` of the reader name (`s[0]·31^(n−1) + … + s[n−1]` over UTF-16 code units,
/// in wrapping 32-bit arithmetic) plus the slot number.
pub fn slot_id(reader_name: &str, slot: u8) -> u8 {
    let hash = reader_name.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let [low, ..] = hash.wrapping_add(i32::from(slot)).to_le_bytes();
    low
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    /// The seed trace (seed.md), from "Connecting to" to "Update complete", without the
    /// elided `[...]` line.
    const SEED_TRACE: &str = "\
78 C: 00 20 00 81 - VERIFY
   R: SW1/SW2=6E00 (Checking error: Class not supported) Lr=0
78 C: 00 A4 04 04 - SELECT Lc=11
      0005  E8 2B 06 01 04 01 81 C3 1F 02 01                 .+.........
   R: SW1/SW2=9000 (Normal processing: No error) Lr=9
      0000  62 07 82 01 78 85 02 01 02                       b...x....
78 C: 00 20 00 81 - VERIFY Lc=6
      0005  36 34 38 32 31 39                                648219
   R: SW1/SW2=6700 (Checking error: Wrong length) Lr=0
78 C: 00 84 00 00 - GET CHALLENGE      Le=69
   R: SW1/SW2=9000 (Normal processing: No error) Lr=69
      0000  6A 52 35 70 52 FA 0D 2F C0 59 64 CC 69 7A 73 0D  jR5pR../.Yd.izs.
      0010  11 56 F3 E3 3C E1 1A 0C B7 61 60 1E E8 89 B2 52  .V..<....a`....R
      0020  75 68 18 67 84 4A 37 41 4E 54 E8 8E CF CB E3 3E  uh.g.J7ANT.....>
      0030  86 1B B9 C6 A1 88 8F 3B FC C8 30 22 5D 77 A8 0E  .......;..0\"]w..
      0040  D4 AD 2E 79 44                                   ...yD
78 C: 00 84 00 00 - GET CHALLENGE      Le=69
   R: SW1/SW2=9000 (Normal processing: No error) Lr=69
      0000  78 E2 A7 4E 65 0F BD 70 20 16 86 60 B0 F2 5F 33  x..Ne..p ..`.._3";

    /// The seed session's exchanges: encoded command APDU, encoded response APDU.
    fn seed_exchanges() -> Vec<(Vec<u8>, Vec<u8>)> {
        let challenge1 = "6A 52 35 70 52 FA 0D 2F C0 59 64 CC 69 7A 73 0D \
                          11 56 F3 E3 3C E1 1A 0C B7 61 60 1E E8 89 B2 52 \
                          75 68 18 67 84 4A 37 41 4E 54 E8 8E CF CB E3 3E \
                          86 1B B9 C6 A1 88 8F 3B FC C8 30 22 5D 77 A8 0E \
                          D4 AD 2E 79 44 90 00";
        // Only the first 16 bytes of the second challenge are shown; the rest is filler that
        // the comparison cuts off.
        let mut challenge2 = h("78 E2 A7 4E 65 0F BD 70 20 16 86 60 B0 F2 5F 33");
        challenge2.extend_from_slice(&[0x5A; 53]);
        challenge2.extend_from_slice(&[0x90, 0x00]);
        vec![
            (h("00 20 00 81"), h("6E 00")),
            (
                h("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00"),
                h("62 07 82 01 78 85 02 01 02 90 00"),
            ),
            (h("00 20 00 81 06 36 34 38 32 31 39"), h("67 00")),
            (h("00 84 00 00 45"), h(challenge1)),
            (h("00 84 00 00 45"), challenge2),
        ]
    }

    fn render(formatter: &TraceFormatter) -> String {
        let mut lines = Vec::new();
        for (cmd, rsp) in seed_exchanges() {
            let cmd = CommandApdu::parse(&cmd).unwrap();
            let rsp = ResponseApdu::parse(&rsp).unwrap();
            lines.push(formatter.command(&cmd));
            lines.push(formatter.response(&rsp));
        }
        lines.join("\n")
    }

    #[test]
    fn reproduces_the_seed_trace() {
        let formatter = TraceFormatter {
            slot_id: 0x78,
            show_secrets: true,
        };
        let text = render(&formatter);
        let shown = SEED_TRACE.lines().count();
        let head: Vec<&str> = text.lines().take(shown).collect();
        assert_eq!(head.join("\n"), SEED_TRACE);
        // The cut-off part is the rest of the second challenge: 4 more dump lines.
        assert_eq!(text.lines().count(), shown + 4);
    }

    #[test]
    fn masks_secrets_by_default() {
        let text = render(&TraceFormatter::new(0x78));
        let expected = SEED_TRACE.replace(
            "78 C: 00 20 00 81 - VERIFY Lc=6\n      0005  36 34 38 32 31 39                                648219\n",
            "78 C: 00 20 00 81 - VERIFY Lc=6 ******\n",
        );
        assert_ne!(expected, SEED_TRACE);
        assert!(text.starts_with(&expected));
        assert!(!text.contains("648219"));
        // CHANGE REFERENCE DATA and RESET RETRY COUNTER too.
        let f = TraceFormatter::new(0x01);
        assert_eq!(
            f.command(&CommandApdu::case3(
                0,
                0x24,
                0,
                0x81,
                h("31 32 33 34 35 36")
            )),
            "01 C: 00 24 00 81 - CHANGE REFERENCE DATA Lc=6 ******"
        );
        assert_eq!(
            f.command(&CommandApdu::case3(0, 0x2C, 0, 0x81, h("31 32"))),
            "01 C: 00 2C 00 81 - RESET RETRY COUNTER Lc=2 ******"
        );
    }

    #[test]
    fn extended_and_atr_lines() {
        let f = TraceFormatter::new(0xA0);
        let data: Vec<u8> = (0u8..20).collect();
        let text = f.command(&CommandApdu::case4(0, 0xD6, 0, 0, data, 300));
        assert_eq!(
            text,
            "A0 C: 00 D6 00 00 - UPDATE BINARY Lc=20 Extended\n\
             \x20     0007  00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F  ................\n\
             \x20     0017  10 11 12 13                                      ...."
        );
        assert_eq!(
            f.command(&CommandApdu::case2(0, 0xB0, 0, 0, 1000)),
            "A0 C: 00 B0 00 00 - READ BINARY      Le=1000 Extended"
        );
        assert_eq!(f.atr(&h("3B 02 14 50")), " ATR: 3B 02 14 50");
        // A GET RESPONSE with no data at all.
        assert_eq!(
            f.response(&ResponseApdu::new(vec![], 0x6110)),
            "   R: SW1/SW2=6110 (Normal processing: 16 response bytes still available) Lr=0"
        );
    }

    #[test]
    fn slot_ids_are_stable() {
        // Java: "".hashCode() == 0, "a".hashCode() == 97, "ab".hashCode() == 3105 (0x0C21).
        assert_eq!(slot_id("", 0), 0);
        assert_eq!(slot_id("a", 0), 97);
        assert_eq!(slot_id("ab", 1), 0x22);
        // Wrapping arithmetic on a long name does not panic and is deterministic.
        let name = "SCM Microsystems Inc. SPR 532 [Vendor Interface] (21120844306107) 00 00";
        assert_eq!(slot_id(name, 0), slot_id(name, 0));
        assert_eq!(slot_id(name, 1), slot_id(name, 0).wrapping_add(1));
    }
}
