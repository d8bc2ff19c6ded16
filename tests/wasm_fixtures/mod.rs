//! Hand-assembled proxy-wasm modules that misbehave on purpose. The
//! canary-router cannot be made to crash, but `failure_policy` only matters
//! when a VM does, and the harness must prove it reports traps and missing
//! host calls; these stand in for a broken filter.
#![allow(dead_code)]

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: Vec<u8>, out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len(), out);
    out.extend(body);
}

fn vector(items: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    leb(items.len(), &mut out);
    items.into_iter().for_each(|i| out.extend(i));
    out
}

const I32: u8 = 0x7f;

/// A module whose `proxy_on_request_headers` traps (`unreachable`).
pub fn crashing() -> Vec<u8> {
    module(None)
}

/// A module whose `proxy_on_vm_start` calls `env::NAME`, a host call no
/// proxy provides.
pub fn calling_unknown_host_call(name: &str) -> Vec<u8> {
    module(Some(name))
}

fn module(import: Option<&str>) -> Vec<u8> {
    let func_type = |params: &[u8], results: &[u8]| {
        let mut t = vec![0x60];
        leb(params.len(), &mut t);
        t.extend(params);
        leb(results.len(), &mut t);
        t.extend(results);
        t
    };
    let types = vec![
        func_type(&[], &[]),                 // 0: proxy_abi_version_0_2_1
        func_type(&[I32], &[I32]),           // 1: memory_allocate, on_done
        func_type(&[I32, I32], &[]),         // 2: on_context_create
        func_type(&[I32, I32], &[I32]),      // 3: on_vm_start, on_configure
        func_type(&[I32, I32, I32], &[I32]), // 4: on_request/response_headers
        func_type(&[I32], &[]),              // 5: on_log, on_delete
        func_type(&[], &[I32]),              // 6: the imported host call
    ];
    const END: u8 = 0x0b;
    const UNREACHABLE: u8 = 0x00;
    let i32_const = |v: u8| vec![0x41, v, END];
    // (export name, type, body instructions)
    let functions: Vec<(&str, u8, Vec<u8>)> = vec![
        ("proxy_abi_version_0_2_1", 0, vec![END]),
        ("proxy_on_memory_allocate", 1, vec![0x41, 0x80, 0x08, END]), // i32.const 1024
        ("proxy_on_context_create", 2, vec![END]),
        // With an import, it calls it (function 0), drops the status, says yes.
        (
            "proxy_on_vm_start",
            3,
            if import.is_some() { vec![0x10, 0x00, 0x1a, 0x41, 0x01, END] } else { i32_const(1) },
        ),
        ("proxy_on_configure", 3, i32_const(1)),
        ("proxy_on_request_headers", 4, vec![UNREACHABLE, END]),
        ("proxy_on_response_headers", 4, i32_const(0)),
        ("proxy_on_done", 1, i32_const(1)),
        ("proxy_on_log", 5, vec![END]),
        ("proxy_on_delete", 5, vec![END]),
    ];
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, vector(types), &mut module);
    let imported = usize::from(import.is_some());
    if let Some(name) = import {
        let mut entry = vec![3];
        entry.extend(b"env");
        leb(name.len(), &mut entry);
        entry.extend(name.as_bytes());
        entry.extend([0, 6]); // a function of type 6
        section(2, vector(vec![entry]), &mut module);
    }
    section(3, vector(functions.iter().map(|(_, t, _)| vec![*t]).collect()), &mut module);
    section(5, vec![1, 0, 1], &mut module); // one memory, min 1 page
    let mut exports: Vec<Vec<u8>> = vec![{
        let mut e = vec![6];
        e.extend(b"memory");
        e.extend([2, 0]);
        e
    }];
    for (index, (name, _, _)) in functions.iter().enumerate() {
        let mut e = Vec::new();
        leb(name.len(), &mut e);
        e.extend(name.as_bytes());
        e.push(0);
        leb(index + imported, &mut e);
        exports.push(e);
    }
    section(7, vector(exports), &mut module);
    let bodies = functions
        .into_iter()
        .map(|(_, _, code)| {
            let mut body = vec![0]; // no locals
            body.extend(code);
            let mut sized = Vec::new();
            leb(body.len(), &mut sized);
            sized.extend(body);
            sized
        })
        .collect();
    section(10, vector(bodies), &mut module);
    module
}
