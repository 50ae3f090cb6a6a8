use crate::testing::test;

use super::gp;
use super::openscdp::{Command, CommandScript, InitiationTemplate, ResponseItem, ResponseScript};
use super::*;
use crate::proto::hex::h;

/// The SmartCard-HSM ATR (seed.md; ramoverhttp.md [S25]).
const HSM_ATR: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

/// Hex followed by ASCII text followed by hex, for vectors with strings in them.
fn hta(before: &str, text: &str, after: &str) -> Vec<u8> {
    let mut v = h(before);
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(&h(after));
    v
}

#[test]
fn integers() {
    assert_eq!(encode_u32(0), h("00"));
    assert_eq!(encode_u32(0x80), h("80"));
    assert_eq!(encode_u32(0x0100), h("01 00"));
    assert_eq!(encode_u32(u32::MAX), h("FF FF FF FF"));
    assert_eq!(decode_u32(&h("00 80"), "x"), Ok(0x80));
    assert_eq!(decode_u32(&h("00 FF FF FF FF"), "x"), Ok(u32::MAX));
    assert_eq!(
        decode_u32(&h("01 00 00 00 00"), "x"),
        Err(RamError::BadInteger("x"))
    );
    assert_eq!(decode_u32(&[], "x"), Err(RamError::BadInteger("x")));
    let signed: &[(i32, &str)] = &[
        (0, "00"),
        (1, "01"),
        (127, "7F"),
        (128, "00 80"),
        (-1, "FF"),
        (-128, "80"),
        (-129, "FF 7F"),
        (i32::MIN, "80 00 00 00"),
        (i32::MAX, "7F FF FF FF"),
    ];
    for (value, bytes) in signed {
        assert_eq!(encode_i32(*value), h(bytes), "{value}");
        assert_eq!(decode_i32(&h(bytes), "x"), Ok(*value), "{bytes}");
    }
    assert_eq!(
        decode_i32(&h("00 00 00 00 01"), "x"),
        Err(RamError::BadInteger("x"))
    );
    assert_eq!(decode_i32(&[], "x"), Err(RamError::BadInteger("x")));
}

#[test]
fn initiation_template() {
    // ramoverhttp.md §2.2, first POST body.
    let bytes = hta("E8 1A C0 18", "", HSM_ATR);
    let t = InitiationTemplate {
        atr: h(HSM_ATR),
        max_capdu: None,
        max_rapdu: None,
    };
    assert_eq!(t.encode(), bytes);
    assert_eq!(bytes.len(), 2 + 2 + 24);
    assert_eq!(InitiationTemplate::decode(&bytes), Ok(t));

    let t = InitiationTemplate {
        atr: h("3B 80 00 00"),
        max_capdu: Some(65544),
        max_rapdu: Some(255),
    };
    let bytes = h("E8 0E C0 04 3B 80 00 00 C1 03 01 00 08 C2 01 FF");
    assert_eq!(t.encode(), bytes);
    assert_eq!(InitiationTemplate::decode(&bytes), Ok(t));

    assert_eq!(
        InitiationTemplate::decode(&h("E8 03 C1 01 10")),
        Err(RamError::Missing("atr"))
    );
    assert_eq!(
        InitiationTemplate::decode(&h("E8 06 C0 01 3B C0 01 3B")),
        Err(RamError::Duplicate("atr"))
    );
    assert!(matches!(
        InitiationTemplate::decode(&h("E8 03 C5 01 00")),
        Err(RamError::UnknownTag { .. })
    ));
    assert!(matches!(
        InitiationTemplate::decode(&h("AA 00")),
        Err(RamError::UnexpectedTemplate(_))
    ));
}

#[test]
fn openscdp_command_select() {
    // ramoverhttp.md §2.2, server 200 body: SELECT SC-HSM.
    let bytes = h("AA 12 22 10 00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01");
    let script = CommandScript {
        commands: vec![Command::Apdu(h(
            "00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01",
        ))],
    };
    assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);
    assert_eq!(bytes.len(), 0x14);
}

#[test]
fn openscdp_notify() {
    // ramoverhttp.md §2.2: notify and notify(-1, ...).
    let bytes = hta("AA 16 E0 14 02 01 01 0C 0F", "Update complete", "");
    let script = CommandScript {
        commands: vec![Command::Notify {
            id: 1,
            message: "Update complete".into(),
            time_to_completion: None,
        }],
    };
    assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);

    let bytes = hta("AA 0E E0 0C 02 01 FF 0C 07", "Failure", "");
    let script = CommandScript {
        commands: vec![Command::Notify {
            id: -1,
            message: "Failure".into(),
            time_to_completion: None,
        }],
    };
    assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);

    // With a time to completion (2016+ Java server, C3).
    let bytes = hta("AA 0D E0 0B 02 01 00 0C 03", "Abc", "C3 01 1E");
    let script = CommandScript::decode(&bytes).unwrap();
    assert_eq!(
        script.commands,
        vec![Command::Notify {
            id: 0,
            message: "Abc".into(),
            time_to_completion: Some(30)
        }]
    );
    assert_eq!(script.encode(), bytes);
}

#[test]
fn openscdp_reset_and_close() {
    // ramoverhttp.md §2.2: reset.
    let bytes = h("AA 02 C0 00");
    let script = CommandScript {
        commands: vec![Command::Reset],
    };
    assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);
    // A reset with a value (a reset kind) is still a reset.
    assert_eq!(CommandScript::decode(&h("AA 03 C0 01 01")), Ok(script));

    let bytes = hta("AA 07 E1 05 0C 03", "Bye", "");
    let script = CommandScript {
        commands: vec![Command::Close {
            message: "Bye".into(),
        }],
    };
    assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);
    assert_eq!(
        CommandScript::decode(&h("AA 00")),
        Ok(CommandScript::default())
    );
}

#[test]
fn openscdp_command_errors() {
    assert!(matches!(
        CommandScript::decode(&h("AA 03 99 01 00")),
        Err(RamError::UnknownTag {
            template: "command script",
            ..
        })
    ));
    assert_eq!(
        CommandScript::decode(&h("AE 80 22 01 00 00 00")),
        Err(RamError::UnexpectedTemplate(Tag::from_u8(0xAE).unwrap()))
    );
    assert_eq!(
        CommandScript::decode(&h("AA 80 22 01 00 00 00")),
        Err(RamError::Indefinite("command script"))
    );
    assert!(matches!(
        CommandScript::decode(&h("AA 07 E0 05 02 01 01 0C 00 00")),
        Err(RamError::Tlv(TlvError::TrailingBytes))
    ));
    assert!(matches!(
        CommandScript::decode(&h("AA 06 E0 04 02 00 0C 00")),
        Err(RamError::BadInteger("notify id"))
    ));
    assert!(matches!(
        CommandScript::decode(&h("AA 05 E0 03 0C 01 41")),
        Err(RamError::Missing("notify id"))
    ));
    // An empty text is allowed.
    assert_eq!(
        CommandScript::decode(&h("AA 07 E0 05 02 01 01 0C 00")),
        Ok(CommandScript {
            commands: vec![Command::Notify {
                id: 1,
                message: String::new(),
                time_to_completion: None,
            }],
        })
    );
    assert!(matches!(
        CommandScript::decode(&h("AA 08 E0 06 02 01 01 0C 01 FF")),
        Err(RamError::Utf8(_))
    ));
    assert!(matches!(
        CommandScript::decode(&h("AA 05 22 05 00")),
        Err(RamError::Tlv(TlvError::LengthBeyondInput { .. }))
    ));
    assert!(matches!(
        CommandScript::decode(&[]),
        Err(RamError::Tlv(TlvError::TruncatedTag))
    ));
}

#[test]
fn openscdp_responses() {
    // ramoverhttp.md §2.2, client reply.
    let bytes = h("AB 07 23 02 90 00 80 01 01");
    let script = ResponseScript {
        items: vec![ResponseItem::RApdu(h("90 00"))],
        count: 1,
    };
    assert_eq!(ResponseScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);

    // ramoverhttp.md §2.2, the reply to a notification.
    let bytes = h("AB 03 80 01 00");
    assert_eq!(ResponseScript::default().encode(), bytes);
    assert_eq!(
        ResponseScript::decode(&bytes),
        Ok(ResponseScript::default())
    );

    // ramoverhttp.md §2.2, the reply to a reset.
    let bytes = hta("AB 1D C0 18", "", &format!("{HSM_ATR} 80 01 00"));
    let script = ResponseScript {
        items: vec![ResponseItem::Atr(h(HSM_ATR))],
        count: 0,
    };
    assert_eq!(ResponseScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);
    assert_eq!(bytes.len(), 0x1F);

    // ramoverhttp.md §2.2, cancel.
    let bytes = hta("AB 17 E1 12 0C 10", "Session canceled", "80 01 00");
    assert_eq!(ResponseScript::abort("Session canceled").encode(), bytes);
    assert_eq!(
        ResponseScript::decode(&bytes),
        Ok(ResponseScript::abort("Session canceled"))
    );

    // A 258-byte R-APDU (256 data bytes and the SW) takes the 82 length form, and the
    // template around it too.
    let mut rapdu = vec![0xA5; 256];
    rapdu.extend_from_slice(&h("90 00"));
    let script = ResponseScript {
        items: vec![ResponseItem::RApdu(rapdu)],
        count: 1,
    };
    let bytes = script.encode();
    assert_eq!(&bytes[..8], &h("AB 82 01 09 23 82 01 02")[..]);
    assert_eq!(&bytes[bytes.len() - 5..], &h("90 00 80 01 01")[..]);
    assert_eq!(bytes.len(), 4 + 4 + 258 + 3);
    assert_eq!(ResponseScript::decode(&bytes), Ok(script));

    // The C client's two's-complement count (00 80 for 128) decodes; ours writes 80.
    let script = ResponseScript::decode(&h("AB 04 80 02 00 80")).unwrap();
    assert_eq!(script.count, 128);
    assert_eq!(script.encode(), h("AB 03 80 01 80"));

    assert_eq!(
        ResponseScript::decode(&h("AB 04 23 02 90 00")),
        Err(RamError::Missing("count"))
    );
    assert_eq!(
        ResponseScript::decode(&h("AB 06 80 01 00 80 01 00")),
        Err(RamError::Duplicate("count"))
    );
}

#[test]
fn gp_command_scripts() {
    // ramoverhttp.md §2.1 examples.
    let definite = h("AA 07 22 05 80 CA FF 21 00");
    let script = gp::CommandScript {
        form: gp::Form::Definite,
        items: vec![gp::CommandItem::Apdu(h("80 CA FF 21 00"))],
    };
    assert_eq!(gp::CommandScript::decode(&definite), Ok(script.clone()));
    assert_eq!(script.encode(), definite);

    let indefinite = h("AE 80 22 05 80 CA FF 21 00 00 00");
    let script = gp::CommandScript {
        form: gp::Form::Indefinite,
        items: vec![gp::CommandItem::Apdu(h("80 CA FF 21 00"))],
    };
    assert_eq!(gp::CommandScript::decode(&indefinite), Ok(script.clone()));
    assert_eq!(script.encode(), indefinite);

    // ramoverhttp.md §1.1, the 2019 trace: GET DATA 0085 and GET STATUS.
    for (bytes, apdu) in [
        ("AE 80 22 05 80 CA 00 85 00 00 00", "80 CA 00 85 00"),
        (
            "AE 80 22 08 80 F2 80 02 02 4F 00 00 00 00",
            "80 F2 80 02 02 4F 00 00",
        ),
    ] {
        let script = gp::CommandScript::decode(&h(bytes)).unwrap();
        assert_eq!(script.form, gp::Form::Indefinite);
        assert_eq!(script.items, vec![gp::CommandItem::Apdu(h(apdu))]);
        assert_eq!(script.encode(), h(bytes));
    }

    // Opaque UICC actions, and the A2 (comprehension-required) C-APDU tag.
    let bytes = h("AA 0C 81 01 01 82 01 02 83 01 03 A2 01 00");
    let script = gp::CommandScript::decode(&bytes).unwrap();
    assert_eq!(
        script.items,
        vec![
            gp::CommandItem::ImmediateAction(h("01")),
            gp::CommandItem::ErrorAction(h("02")),
            gp::CommandItem::ScriptChaining(h("03")),
            gp::CommandItem::Apdu(h("00")),
        ]
    );
    assert_eq!(
        script.encode(),
        h("AA 0C 81 01 01 82 01 02 83 01 03 22 01 00")
    );

    // A 128-byte C-APDU needs the 81 length form (the LOAD bug in §2.1).
    let script = gp::CommandScript {
        form: gp::Form::Definite,
        items: vec![gp::CommandItem::Apdu(vec![0x80; 0xF5])],
    };
    assert_eq!(&script.encode()[..5], &h("AA 81 F8 22 81")[..]);
}

#[test]
fn gp_command_errors() {
    assert!(matches!(
        gp::CommandScript::decode(&h("AA 03 C0 01 00")),
        Err(RamError::UnknownTag { .. })
    ));
    assert!(matches!(
        gp::CommandScript::decode(&h("AB 03 80 01 00")),
        Err(RamError::UnexpectedTemplate(_))
    ));
    assert_eq!(
        gp::CommandScript::decode(&h("AE 80 22 80 00 00 00 00")),
        Err(RamError::Indefinite("c-apdu"))
    );
    assert_eq!(
        gp::CommandScript::decode(&h("AE 80 22 01 00")),
        Err(RamError::Tlv(TlvError::UnterminatedIndefinite))
    );
}

#[test]
fn gp_response_scripts() {
    // ramoverhttp.md §1.1, the 2019 trace: AF without a count.
    let bytes = h("AF 80 23 02 6A 88 00 00");
    let script = gp::ResponseScript {
        form: gp::Form::Indefinite,
        count: None,
        items: vec![gp::ResponseItem::RApdu(h("6A 88"))],
    };
    assert_eq!(gp::ResponseScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);

    // ramoverhttp.md §2.1: AF with a count, as synthetic tests write it.
    let bytes = h("AF 80 80 01 01 23 04 93 05 90 00 00 00");
    let script = gp::ResponseScript::decode(&bytes).unwrap();
    assert_eq!(script.count, Some(1));
    assert_eq!(
        script.items,
        vec![gp::ResponseItem::RApdu(h("93 05 90 00"))]
    );
    assert_eq!(script.encode(), bytes);

    // ramoverhttp.md §2.1: the definite response.
    let bytes = h("AB 08 80 01 01 23 03 01 90 00");
    let script = gp::ResponseScript {
        form: gp::Form::Definite,
        count: Some(1),
        items: vec![gp::ResponseItem::RApdu(h("01 90 00"))],
    };
    assert_eq!(gp::ResponseScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);
    assert_eq!(bytes.len(), 10);

    // ramoverhttp.md §2.1: zero executed, bad format "wrong length".
    let bytes = h("AB 06 80 01 00 90 01 02");
    let script = gp::ResponseScript {
        form: gp::Form::Definite,
        count: Some(0),
        items: vec![gp::ResponseItem::BadFormat(gp::BadFormat::WrongLength)],
    };
    assert_eq!(gp::ResponseScript::decode(&bytes), Ok(script.clone()));
    assert_eq!(script.encode(), bytes);

    // The count after the R-APDUs (the OpenSCDP order) still decodes.
    let script = gp::ResponseScript::decode(&h("AB 07 23 02 90 00 80 01 01")).unwrap();
    assert_eq!(script.count, Some(1));

    assert_eq!(
        gp::ResponseScript::decode(&h("AB 04 90 02 01 02")),
        Err(RamError::BadLength("bad format"))
    );
    for b in 0..=255u8 {
        assert_eq!(gp::BadFormat::from_u8(b).to_u8(), b);
    }
}
