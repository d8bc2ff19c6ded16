//! 1,000 distinct hostile requests against the real Envoy: every one is
//! answered by a backend, none by a 503 from a crashed filter, in either
//! home of the filter (the .wasm and the dynamic module).

use canary_router_core::hashing::rng::Rng;

use super::envoy::{Envoy, EnvoyConfig};
use super::http::Connection;

/// Bytes Envoy's HTTP/1 codec passes in a header value (visible ASCII, SP,
/// HTAB, obs-text 0x80-0xFF) with the ones that trouble parsers weighted up.
fn hostile_value(rng: &mut Rng, len: usize) -> Vec<u8> {
    const NASTY: &[u8] = b";=,\"\\%&?# \t+";
    (0..len)
        .map(|i| match rng.next_u64() % 4 {
            _ if i == 0 => b'x',
            0 => 0x80 + (rng.next_u64() % 0x80) as u8,
            1 => NASTY[(rng.next_u64() % NASTY.len() as u64) as usize],
            _ => 0x21 + (rng.next_u64() % 0x5e) as u8,
        })
        .collect()
}

/// Percent-encoding garbage and encoded control bytes for the query.
fn hostile_query(rng: &mut Rng) -> String {
    let pieces = [
        "%zz", "%", "%0", "%00", "%0a", "%1f", "%7f", "%ff", "%c3%28", "&&", "==", "foo=", "=bar", "+",
        "foo=bar", "%25", "a%3Db",
    ];
    (0..rng.next_u64() % 40).map(|_| pieces[(rng.next_u64() % pieces.len() as u64) as usize]).collect()
}

#[test]
fn a_thousand_hostile_requests_are_all_answered_by_a_backend() {
    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/envoy.yaml"));
    hostile_requests_are_answered_by_a_backend(&envoy);
    assert_eq!(envoy.stat("wasm.envoy.wasm.runtime.v8.active").map(|v| v > 0), Some(true));
}

#[test]
fn the_dynamic_module_answers_the_same_hostile_requests_and_envoy_stays_up() {
    // A panic in the module would be Envoy's crash: the next request fails.
    hostile_requests_are_answered_by_a_backend(&Envoy::start(EnvoyConfig::dynamic_module()));
}

/// 1,000 hostile requests (seeded), each answered by a backend.
fn hostile_requests_are_answered_by_a_backend(envoy: &Envoy) {
    let backends = ["service-a", "service-a-canary", "service-b", "service-b-canary"];
    let mut rng = Rng::new(1_000);
    let mut connection = Connection::open(envoy.ingress_port()).unwrap();
    for i in 0..1_000 {
        let host = if i % 2 == 0 { "a.example.com" } else { "b.example.com" };
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let path = match i % 5 {
            // Deeply repeated query keys.
            0 => format!("/?{}foo=bar", "foo=x&".repeat(500 + (rng.next_u64() % 2_000) as usize)),
            _ => format!("/p{i}?{}", hostile_query(&mut rng)),
        };
        match i % 4 {
            // 100 cookies, some broken.
            0 => {
                let cookies: Vec<String> = (0..100)
                    .map(|c| match c % 10 {
                        0 => "broken".to_string(),
                        1 => "=nameless".to_string(),
                        2 => format!("q{c}=\"quoted\""),
                        _ => format!("c{c}=v{}", rng.next_u64() % 1000),
                    })
                    .collect();
                headers.push((b"cookie".to_vec(), cookies.join("; ").into_bytes()));
            }
            // A 60 KiB value.
            1 => headers.push((b"cookie".to_vec(), [b"big=".as_slice(), &vec![b'z'; 60 * 1024]].concat())),
            // Invalid UTF-8 and separators everywhere.
            2 => {
                for name in ["foo", "x-canary", "cookie", "uid", "x-route-target"] {
                    let len = 1 + (rng.next_u64() % 64) as usize;
                    headers.push((name.as_bytes().to_vec(), hostile_value(&mut rng, len)));
                }
            }
            // Many cookie headers (as HTTP/2 clients send them).
            _ => {
                for c in 0..20 {
                    headers.push((
                        b"cookie".to_vec(),
                        [format!("k{c}=").as_bytes(), &hostile_value(&mut rng, 8)].concat(),
                    ));
                }
            }
        }
        let raw: Vec<(&[u8], &[u8])> = headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let response =
            connection.get(host, &path, &raw).unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        let body = response.body_text();
        assert!(
            response.status == 200 && backends.contains(&body.as_str()),
            "request {i} was answered {} {body:?} instead of by a backend",
            response.status
        );
    }
}
