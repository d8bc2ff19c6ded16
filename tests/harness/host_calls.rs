//! The proxy-wasm ABI 0.2.1 host functions (module `env`), behaving as
//! Envoy's: header maps are reachable only from a stream context while
//! they exist, and unavailable ones answer `BadArgument`.

use wasmtime::{bail, Caller, Linker, Result};

use super::headers::HeaderMap;
use super::memory;
use super::state::{HostState, HttpCall, LocalReply, LogEntry, LogLevel, Metric, MetricKind};

pub const OK: i32 = 0;
pub const NOT_FOUND: i32 = 1;
pub const BAD_ARGUMENT: i32 = 2;
pub const CAS_MISMATCH: i32 = 8;

pub const REQUEST_HEADERS: i32 = 0;
pub const RESPONSE_HEADERS: i32 = 2;
pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
pub const REQUEST_BODY: i32 = 0;
pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
pub const VM_CONFIGURATION: i32 = 6;
pub const PLUGIN_CONFIGURATION: i32 = 7;

type C<'a> = Caller<'a, HostState>;

/// The header map `map_type` of the effective context, if it exists now.
fn header_map(state: &mut HostState, map_type: i32) -> Option<&mut HeaderMap> {
    if map_type == HTTP_CALL_RESPONSE_HEADERS {
        return state.http_call_response.as_mut();
    }
    let stream = state.streams.get_mut(&state.effective_context)?;
    match map_type {
        REQUEST_HEADERS => stream.request_headers.as_mut(),
        RESPONSE_HEADERS => stream.response_headers.as_mut(),
        _ => None,
    }
}

/// Defines the host function `env::name` if this host implements it.
pub fn define(linker: &mut Linker<HostState>, name: &str) -> Result<bool> {
    const M: &str = "env";
    match name {
        "proxy_log" => {
            linker.func_wrap(M, name, |mut c: C, level: i32, ptr: i32, len: i32| -> Result<i32> {
                let message = String::from_utf8_lossy(&memory::read(&mut c, ptr, len)?).into_owned();
                let Some(level) = LogLevel::from_u32(level as u32) else { return Ok(BAD_ARGUMENT) };
                if level >= c.data().log_level {
                    c.data_mut().logs.push(LogEntry { level, message });
                }
                Ok(OK)
            })?
        }
        "proxy_get_log_level" => linker.func_wrap(M, name, |mut c: C, out: i32| -> Result<i32> {
            let level = c.data().log_level as u32;
            memory::write_u32(&mut c, out, level)?;
            Ok(OK)
        })?,
        "proxy_get_current_time_nanoseconds" => {
            linker.func_wrap(M, name, |mut c: C, out: i32| -> Result<i32> {
                let now = c.data().now_ns;
                memory::write_u64(&mut c, out, now)?;
                Ok(OK)
            })?
        }
        "proxy_set_tick_period_milliseconds" => {
            linker.func_wrap(M, name, |mut c: C, period: i32| -> Result<i32> {
                c.data_mut().tick_period_ms = period as u32;
                Ok(OK)
            })?
        }
        "proxy_set_effective_context" => linker.func_wrap(M, name, |mut c: C, id: i32| -> Result<i32> {
            let id = id as u32;
            if !c.data().streams.contains_key(&id) && id != super::ROOT_CONTEXT_ID {
                return Ok(BAD_ARGUMENT);
            }
            c.data_mut().effective_context = id;
            Ok(OK)
        })?,
        "proxy_done" => linker.func_wrap(M, name, |_: C| -> Result<i32> { Ok(OK) })?,
        "proxy_continue_stream" => {
            linker.func_wrap(M, name, |_: C, _stream: i32| -> Result<i32> { Ok(OK) })?
        }
        "proxy_get_buffer_bytes" => linker.func_wrap(
            M,
            name,
            |mut c: C, buffer: i32, start: i32, max: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
                // Only the part asked for is copied: a config is read again
                // route by route, 2,000 reads of a 4 MiB buffer at the limits.
                let part = |data: &[u8]| {
                    let start = (start as u32 as usize).min(data.len());
                    let end = start.saturating_add(max as u32 as usize).min(data.len());
                    data[start..end].to_vec()
                };
                let data = match buffer {
                    PLUGIN_CONFIGURATION if c.data().in_configure => part(&c.data().plugin_config),
                    REQUEST_BODY => match &c.data().request_body {
                        Some(body) => part(body),
                        None => return Ok(BAD_ARGUMENT),
                    },
                    VM_CONFIGURATION => part(&c.data().vm_config),
                    // Only while an answer is being delivered, as in Envoy.
                    HTTP_CALL_RESPONSE_BODY => match &c.data().http_call_body {
                        Some(body) => part(body),
                        None => return Ok(BAD_ARGUMENT),
                    },
                    _ => return Ok(BAD_ARGUMENT),
                };
                memory::give(&mut c, &data, ptr_out, size_out)?;
                Ok(OK)
            },
        )?,
        "proxy_get_header_map_pairs" => {
            linker.func_wrap(M, name, |mut c: C, map: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
                let Some(headers) = header_map(c.data_mut(), map) else { return Ok(BAD_ARGUMENT) };
                let bytes = headers.serialize();
                memory::give(&mut c, &bytes, ptr_out, size_out)?;
                Ok(OK)
            })?
        }
        "proxy_set_header_map_pairs" => {
            linker.func_wrap(M, name, |mut c: C, map: i32, ptr: i32, len: i32| -> Result<i32> {
                let bytes = memory::read(&mut c, ptr, len)?;
                let new = match HeaderMap::deserialize(&bytes) {
                    Ok(new) => new,
                    Err(e) => bail!("proxy_set_header_map_pairs: guest sent a malformed map: {e}"),
                };
                let Some(headers) = header_map(c.data_mut(), map) else { return Ok(BAD_ARGUMENT) };
                *headers = new;
                Ok(OK)
            })?
        }
        "proxy_get_header_map_value" => linker.func_wrap(
            M,
            name,
            |mut c: C, map: i32, kptr: i32, klen: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
                let key = memory::read(&mut c, kptr, klen)?;
                let Some(headers) = header_map(c.data_mut(), map) else { return Ok(BAD_ARGUMENT) };
                let Some(value) = headers.get_bytes(&key).map(<[u8]>::to_vec) else { return Ok(NOT_FOUND) };
                memory::give(&mut c, &value, ptr_out, size_out)?;
                Ok(OK)
            },
        )?,
        "proxy_replace_header_map_value" | "proxy_add_header_map_value" => {
            let add = name == "proxy_add_header_map_value";
            linker.func_wrap(
                M,
                name,
                move |mut c: C, map: i32, kptr: i32, klen: i32, vptr: i32, vlen: i32| -> Result<i32> {
                    let key = memory::read(&mut c, kptr, klen)?;
                    let value = memory::read(&mut c, vptr, vlen)?;
                    if map == REQUEST_HEADERS && c.data().refused_header_writes.contains(&key) {
                        return Ok(BAD_ARGUMENT);
                    }
                    let Some(headers) = header_map(c.data_mut(), map) else { return Ok(BAD_ARGUMENT) };
                    if add {
                        headers.add(&key, &value);
                    } else {
                        headers.replace(&key, &value);
                    }
                    Ok(OK)
                },
            )?
        }
        // Envoy's foreign functions: only `clear_route_cache` here, and only
        // in a stream context, where Envoy has a route to clear; any other
        // name is `NotFound`, as in a host that lacks it.
        "proxy_call_foreign_function" => linker.func_wrap(
            M,
            name,
            |mut c: C, nptr: i32, nlen: i32, _aptr: i32, _alen: i32, _rptr: i32, _rlen: i32| -> Result<i32> {
                let function = memory::read(&mut c, nptr, nlen)?;
                let state = c.data_mut();
                if function != b"clear_route_cache" || state.lacks_clear_route_cache {
                    return Ok(NOT_FOUND);
                }
                if !state.streams.contains_key(&state.effective_context) {
                    return Ok(BAD_ARGUMENT);
                }
                state.route_cache_clears += 1;
                Ok(OK)
            },
        )?,
        "proxy_remove_header_map_value" => {
            linker.func_wrap(M, name, |mut c: C, map: i32, kptr: i32, klen: i32| -> Result<i32> {
                let key = memory::read(&mut c, kptr, klen)?;
                if map == REQUEST_HEADERS && c.data().refused_header_writes.contains(&key) {
                    return Ok(BAD_ARGUMENT);
                }
                let Some(headers) = header_map(c.data_mut(), map) else { return Ok(BAD_ARGUMENT) };
                headers.remove(&key);
                Ok(OK)
            })?
        }
        "proxy_define_metric" => linker.func_wrap(
            M,
            name,
            |mut c: C, kind: i32, nptr: i32, nlen: i32, id_out: i32| -> Result<i32> {
                let name = String::from_utf8_lossy(&memory::read(&mut c, nptr, nlen)?).into_owned();
                let kind = match kind {
                    0 => MetricKind::Counter,
                    1 => MetricKind::Gauge,
                    2 => MetricKind::Histogram,
                    _ => return Ok(BAD_ARGUMENT),
                };
                // As Envoy: every definition gets a new id (and Envoy keeps
                // each for good), even for a name already defined; ids of
                // the same name share one value.
                let state = c.data_mut();
                let index = match state.metric_index.get(&name) {
                    Some(&index) => index,
                    None => {
                        state.metric_index.insert(name.clone(), state.metrics.len());
                        state.metrics.push(Metric { name, kind, value: 0 });
                        state.metrics.len() - 1
                    }
                };
                state.metric_ids.push(index);
                let id = state.metric_ids.len() - 1;
                memory::write_u32(&mut c, id_out, id as u32)?;
                Ok(OK)
            },
        )?,
        "proxy_increment_metric" => {
            linker.func_wrap(M, name, |mut c: C, id: i32, offset: i64| -> Result<i32> {
                let Some(metric) = c.data_mut().metric_mut(id as u32) else {
                    return Ok(NOT_FOUND);
                };
                if metric.kind == MetricKind::Histogram {
                    return Ok(BAD_ARGUMENT);
                }
                metric.value = metric.value.wrapping_add_signed(offset);
                Ok(OK)
            })?
        }
        "proxy_record_metric" => {
            linker.func_wrap(M, name, |mut c: C, id: i32, value: i64| -> Result<i32> {
                let Some(metric) = c.data_mut().metric_mut(id as u32) else {
                    return Ok(NOT_FOUND);
                };
                metric.value = value as u64;
                Ok(OK)
            })?
        }
        "proxy_get_metric" => linker.func_wrap(M, name, |mut c: C, id: i32, out: i32| -> Result<i32> {
            let Some(value) = c.data().metric(id as u32).map(|m| m.value) else {
                return Ok(NOT_FOUND);
            };
            memory::write_u64(&mut c, out, value)?;
            Ok(OK)
        })?,
        "proxy_get_shared_data" => linker.func_wrap(
            M,
            name,
            |mut c: C, kptr: i32, klen: i32, ptr_out: i32, size_out: i32, cas_out: i32| -> Result<i32> {
                let key = memory::read(&mut c, kptr, klen)?;
                let Some((value, cas)) = c.data().shared_data.borrow().get(&key).cloned() else {
                    return Ok(NOT_FOUND);
                };
                memory::give(&mut c, &value, ptr_out, size_out)?;
                memory::write_u32(&mut c, cas_out, cas)?;
                Ok(OK)
            },
        )?,
        "proxy_set_shared_data" => linker.func_wrap(
            M,
            name,
            |mut c: C, kptr: i32, klen: i32, vptr: i32, vlen: i32, cas: i32| -> Result<i32> {
                let key = memory::read(&mut c, kptr, klen)?;
                let value = memory::read(&mut c, vptr, vlen)?;
                let shared = c.data().shared_data.clone();
                let mut shared = shared.borrow_mut();
                // As Envoy: an absent key is written whatever the tag; a
                // present one with tag 0 unconditionally, else only with its
                // own tag.
                let tag = match shared.get(&key).map(|(_, current)| *current) {
                    Some(current) if cas != 0 && cas as u32 != current => return Ok(CAS_MISMATCH),
                    Some(current) => current + 1,
                    None => 1,
                };
                shared.insert(key, (value, tag));
                Ok(OK)
            },
        )?,
        "proxy_send_local_response" => linker.func_wrap(
            M,
            name,
            |mut c: C,
             status: i32,
             dptr: i32,
             dlen: i32,
             bptr: i32,
             blen: i32,
             hptr: i32,
             hlen: i32,
             _grpc: i32|
             -> Result<i32> {
                let details = String::from_utf8_lossy(&memory::read(&mut c, dptr, dlen)?).into_owned();
                let body = memory::read(&mut c, bptr, blen)?;
                if let Err(e) = HeaderMap::deserialize(&memory::read(&mut c, hptr, hlen)?) {
                    bail!("proxy_send_local_response: guest sent malformed headers: {e}");
                }
                let state = c.data_mut();
                let Some(stream) = state.streams.get_mut(&state.effective_context) else {
                    return Ok(BAD_ARGUMENT);
                };
                stream.local_reply = Some(LocalReply { status: status as u32, details, body });
                Ok(OK)
            },
        )?,
        "proxy_http_call" => linker.func_wrap(
            M,
            name,
            |mut c: C,
             up_ptr: i32,
             up_len: i32,
             h_ptr: i32,
             h_len: i32,
             b_ptr: i32,
             b_len: i32,
             _trailers_ptr: i32,
             _trailers_len: i32,
             timeout: i32,
             token_out: i32|
             -> Result<i32> {
                let upstream = String::from_utf8_lossy(&memory::read(&mut c, up_ptr, up_len)?).into_owned();
                let headers = match HeaderMap::deserialize(&memory::read(&mut c, h_ptr, h_len)?) {
                    Ok(headers) => headers,
                    Err(e) => bail!("proxy_http_call: guest sent malformed headers: {e}"),
                };
                let body = memory::read(&mut c, b_ptr, b_len)?;
                let known = c.data().clusters.as_ref().is_none_or(|cs| cs.contains(&upstream));
                // Envoy: an unknown cluster, or no :method/:path/:authority, is BadArgument.
                let complete = [":method", ":path", ":authority"].iter().all(|h| headers.get(h).is_some());
                if !known || !complete {
                    return Ok(BAD_ARGUMENT);
                }
                let state = c.data_mut();
                let token = state.next_token;
                state.next_token += 1;
                let context_id = state.effective_context;
                state.http_calls.push(HttpCall {
                    token,
                    upstream,
                    headers,
                    body,
                    timeout_ms: timeout as u32,
                    context_id,
                });
                memory::write_u32(&mut c, token_out, token)?;
                Ok(OK)
            },
        )?,
        _ => return Ok(false),
    };
    Ok(true)
}
