//! The harness itself behaves like a proxy: these tests pin the behaviour
//! the scenario tests rely on, so a harness bug cannot hide a filter bug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod wasm_fixtures;

use harness::{HeaderMap, LogLevel, Proxy, CONTINUE};

const ONE_ROUTE: &str = r#"{"routes": [{"name": "r", "default": "stable"}]}"#;

#[test]
fn header_maps_round_trip_the_proxy_wasm_format() {
    let map = HeaderMap::from_pairs([(":path", "/"), ("X-Bin", "\u{7f}"), ("empty", "")]);
    let bytes = map.serialize();
    assert_eq!(&bytes[..4], &3u32.to_le_bytes());
    assert_eq!(HeaderMap::deserialize(&bytes).unwrap(), map);
    assert_eq!(map.get("x-bin").as_deref(), Some("\u{7f}"), "names are lower-cased");
}

#[test]
fn replace_keeps_position_and_drops_duplicates_like_envoy() {
    let mut map = HeaderMap::from_pairs([("a", "1"), ("x", "client-1"), ("b", "2"), ("x", "client-2")]);
    map.replace(b"x", b"filter");
    assert_eq!(map.get_all("x"), vec!["filter"]);
    assert_eq!(map.pairs()[1].0, b"x");
    map.replace(b"new", b"v");
    assert_eq!(map.pairs().last().unwrap().0, b"new");
}

#[test]
fn a_stream_runs_its_whole_lifecycle_and_continues() {
    let mut proxy = Proxy::configured(ONE_ROUTE);
    let first = proxy.send(&[(":path", "/")]);
    let second = proxy.send(&[(":path", "/")]);
    assert_eq!(first.request_action, CONTINUE);
    assert_eq!(first.response_action, CONTINUE);
    assert_eq!(first.response.get(":status").as_deref(), Some("200"));
    assert_ne!(first.context_id, second.context_id);
}

#[test]
fn logs_below_the_host_level_are_dropped_as_envoy_does() {
    let mut quiet = Proxy::configured(ONE_ROUTE);
    quiet.send(&[(":path", "/")]);
    assert!(quiet.logs_at(LogLevel::Debug).is_empty());

    let mut verbose = Proxy::start_with(LogLevel::Debug, 1);
    assert!(verbose.configure(ONE_ROUTE));
    verbose.send(&[(":path", "/")]);
    assert_eq!(verbose.logs_at(LogLevel::Debug).len(), 1, "{}", verbose.log_text());
}

#[test]
#[should_panic(expected = "the filter's export `proxy_on_no_such_callback` is missing")]
fn calling_a_missing_export_fails_loudly() {
    let mut proxy = Proxy::start();
    proxy.call_for_test("proxy_on_no_such_callback");
}

#[test]
#[should_panic(expected = "unimplemented host call env::proxy_does_not_exist")]
fn a_host_call_the_harness_lacks_traps_naming_the_call() {
    Proxy::start_module(&wasm_fixtures::calling_unknown_host_call("proxy_does_not_exist"));
}

#[test]
#[should_panic(expected = "the guest trapped in proxy_on_request_headers")]
fn a_guest_trap_fails_the_test_and_names_the_callback() {
    let mut proxy = Proxy::start_module(&wasm_fixtures::crashing());
    assert!(proxy.configure("{}"));
    proxy.send(&[(":path", "/")]);
}

#[test]
fn after_a_trap_the_vm_is_dead_as_in_a_proxy() {
    let mut proxy = Proxy::start_module(&wasm_fixtures::crashing());
    assert!(proxy.configure("{}"));
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| proxy.send(&[(":path", "/")])));
    assert!(first.is_err());
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| proxy.send(&[(":path", "/")])));
    let message = second.unwrap_err().downcast::<String>().unwrap();
    assert!(message.starts_with("the VM is dead since an earlier trap"), "{message}");
}

/// Whether a function body only forwards to two calls (`local.get`s, then
/// `call f; call g`): the wrapper a linker puts around every export of a
/// WASI *command*, running constructors before or destructors after it.
fn is_command_wrapper(body: &wasmparser::FunctionBody<'_>) -> bool {
    let mut calls = 0;
    for op in body.get_operators_reader().unwrap() {
        match op.unwrap() {
            wasmparser::Operator::LocalGet { .. } if calls == 0 => {}
            wasmparser::Operator::Call { .. } => calls += 1,
            wasmparser::Operator::End => return calls == 2,
            _ => return false,
        }
    }
    false
}

#[test]
fn the_module_is_a_reactor_whose_exports_run_no_constructors_or_destructors() {
    // WASI issue 471: without an `_initialize` that calls the constructors
    // itself, the linker made this module a command and wrapped every
    // export to call `__wasm_call_dtors` after it (constructors before it,
    // had there been any): work on every callback, and statics re-run.
    // wasm-opt inlines the empty wrappers away, so the linker's own module
    // is the one read.
    let bytes = std::fs::read(harness::linked_wasm()).unwrap();
    let (mut exports, mut bodies, mut imported) = (Vec::new(), Vec::new(), 0u32);
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    imported += u32::from(matches!(import.unwrap().ty, wasmparser::TypeRef::Func(_)));
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    if export.kind == wasmparser::ExternalKind::Func {
                        exports.push((export.name.to_string(), export.index));
                    }
                }
            }
            wasmparser::Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    assert!(exports.iter().any(|(name, _)| name == "_initialize"), "a reactor exports _initialize");
    let wrapped: Vec<&str> = exports
        .iter()
        .filter(|(_, index)| is_command_wrapper(&bodies[(index - imported) as usize]))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(wrapped.is_empty(), "exports wrapped as a command's: {wrapped:?}");
    assert_eq!(exports.len(), 12, "the callbacks exported: {exports:?}");
}
