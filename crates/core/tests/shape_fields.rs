//! Every typed field `shape.rs` declares for an object is one of that
//! object's keys: a field left out of its object's list would compile, and
//! the reader would refuse its key in every document as unknown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use canary_router_core::config::shape::OBJECTS;

#[test]
fn every_declared_field_is_listed_in_its_object_s_keys() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/shape.rs")).unwrap();
    let mut fields = 0;
    for module in source.split("\npub mod ").skip(1) {
        let name = module.split_whitespace().next().unwrap();
        let body = module.split("\n}\n").next().unwrap();
        // `ramp` declares the fields of `RAMP`, whose JSON name is `ramp`.
        let object_const = name.to_uppercase();
        let listed = source
            .split(&format!("pub const {object_const}: Object = Object {{"))
            .nth(1)
            .unwrap_or_else(|| panic!("no object {object_const} for the fields of `{name}`"))
            .split("rules:")
            .next()
            .unwrap()
            .to_string();
        for declared in body.split("pub const ").skip(1) {
            let field = declared.split(':').next().unwrap();
            assert!(
                listed.contains(&format!("{name}::{field}.key")),
                "{name}::{field} is declared but not one of {object_const}'s keys"
            );
            fields += 1;
        }
    }
    // The same count the objects list, so no object lists a key that is
    // not a field either.
    let keys: usize = OBJECTS.iter().map(|o| o.keys.len()).sum();
    assert_eq!(fields, keys, "fields declared and keys listed differ");
}
