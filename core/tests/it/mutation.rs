//! Flipping any single byte of a valid presentation makes verification fail:
//! never panic, never pass. Every position, with several flips each.

use vouch_core::vc;

use crate::common::*;

#[test]
fn every_single_byte_change_fails() {
    let text = presentation();
    assert!(vc::verify_presentation(&text, &request(), NOW)
        .unwrap()
        .is_valid());
    let bytes = text.as_bytes();
    let mut checked = 0usize;
    for pos in 0..bytes.len() {
        // Low bit (a neighbour in the alphabet), case bit, and a swap to a
        // character that is always in the base64url alphabet.
        for flip in [0x01u8, 0x20, 0x02] {
            let mut mutated = bytes.to_vec();
            mutated[pos] ^= flip;
            if mutated[pos] == bytes[pos] {
                continue;
            }
            let Ok(mutated) = String::from_utf8(mutated) else {
                continue;
            };
            let outcome =
                std::panic::catch_unwind(|| vc::verify_presentation(&mutated, &request(), NOW));
            match outcome {
                Err(_) => panic!("panic at byte {pos} flip {flip:#x}"),
                Ok(Ok(verdict)) => assert!(
                    !verdict.is_valid(),
                    "byte {pos} ({:?} -> {:?}) still verifies",
                    char::from(bytes[pos]),
                    char::from(bytes[pos] ^ flip)
                ),
                Ok(Err(_)) => {}
            }
            checked += 1;
        }
    }
    assert!(
        checked >= bytes.len() * 2,
        "checked {checked} mutations of {} bytes",
        bytes.len()
    );
}
