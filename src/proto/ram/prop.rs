use proptest::collection::vec;
use proptest::prelude::*;

use super::gp;
use super::openscdp::{Command, CommandScript, InitiationTemplate, ResponseItem, ResponseScript};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..300)
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        bytes().prop_map(Command::Apdu),
        Just(Command::Reset),
        (any::<i32>(), ".{0,20}", proptest::option::of(any::<u32>())).prop_map(
            |(id, message, time_to_completion)| Command::Notify {
                id,
                message,
                time_to_completion
            }
        ),
        ".{0,20}".prop_map(|message| Command::Close { message }),
    ]
}

fn response_item() -> impl Strategy<Value = ResponseItem> {
    prop_oneof![
        bytes().prop_map(ResponseItem::RApdu),
        bytes().prop_map(ResponseItem::Atr),
        ".{0,20}".prop_map(|message| ResponseItem::Close { message }),
    ]
}

fn form() -> impl Strategy<Value = gp::Form> {
    prop_oneof![Just(gp::Form::Definite), Just(gp::Form::Indefinite)]
}

fn gp_command_item() -> impl Strategy<Value = gp::CommandItem> {
    prop_oneof![
        bytes().prop_map(gp::CommandItem::Apdu),
        bytes().prop_map(gp::CommandItem::ImmediateAction),
        bytes().prop_map(gp::CommandItem::ErrorAction),
        bytes().prop_map(gp::CommandItem::ScriptChaining),
    ]
}

fn gp_response_item() -> impl Strategy<Value = gp::ResponseItem> {
    prop_oneof![
        bytes().prop_map(gp::ResponseItem::RApdu),
        any::<u8>().prop_map(|b| gp::ResponseItem::BadFormat(gp::BadFormat::from_u8(b))),
        bytes().prop_map(gp::ResponseItem::ImmediateActionResponse),
        bytes().prop_map(gp::ResponseItem::ScriptChainingResponse),
    ]
}

proptest! {
    #[test]
    fn decode_no_panic(data in vec(any::<u8>(), 0..64)) {
        let _ = InitiationTemplate::decode(&data);
        let _ = CommandScript::decode(&data);
        let _ = ResponseScript::decode(&data);
        let _ = gp::CommandScript::decode(&data);
        let _ = gp::ResponseScript::decode(&data);
    }

    #[test]
    fn decode_no_panic_with_template_tags(tag in prop::sample::select(vec![0xAAu8, 0xAB, 0xAE, 0xAF, 0xE8]), len in any::<u8>(), data in vec(any::<u8>(), 0..64)) {
        let mut input = vec![tag, len];
        input.extend_from_slice(&data);
        let _ = InitiationTemplate::decode(&input);
        let _ = CommandScript::decode(&input);
        let _ = ResponseScript::decode(&input);
        let _ = gp::CommandScript::decode(&input);
        let _ = gp::ResponseScript::decode(&input);
    }

    #[test]
    fn initiation_round_trip(atr in bytes(), max_capdu in proptest::option::of(any::<u32>()), max_rapdu in proptest::option::of(any::<u32>())) {
        let t = InitiationTemplate { atr, max_capdu, max_rapdu };
        prop_assert_eq!(InitiationTemplate::decode(&t.encode()), Ok(t));
    }

    #[test]
    fn openscdp_round_trip(commands in vec(command(), 0..6), items in vec(response_item(), 0..6), count in any::<u32>()) {
        let script = CommandScript { commands };
        prop_assert_eq!(CommandScript::decode(&script.encode()), Ok(script));
        let script = ResponseScript { items, count };
        prop_assert_eq!(ResponseScript::decode(&script.encode()), Ok(script));
    }

    #[test]
    fn gp_round_trip(form in form(), items in vec(gp_command_item(), 0..6), rform in form(), count in proptest::option::of(any::<u32>()), ritems in vec(gp_response_item(), 0..6)) {
        let script = gp::CommandScript { form, items };
        prop_assert_eq!(gp::CommandScript::decode(&script.encode()), Ok(script));
        let script = gp::ResponseScript { form: rform, count, items: ritems };
        prop_assert_eq!(gp::ResponseScript::decode(&script.encode()), Ok(script));
    }
}
