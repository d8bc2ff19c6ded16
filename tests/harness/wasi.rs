//! The WASI preview 1 calls a Rust `wasm32-wasip1` module imports. Proxies
//! implement these few (Envoy: stdout/stderr go to its log, random from its
//! entropy, clocks from its time source); the rest trap as unimplemented.

use wasmtime::{bail, Caller, Linker, Result};

use super::memory;
use super::state::HostState;

const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const INVAL: i32 = 28;

type C<'a> = Caller<'a, HostState>;

/// Defines `wasi_snapshot_preview1::name` if this host implements it.
pub fn define(linker: &mut Linker<HostState>, name: &str) -> Result<bool> {
    const M: &str = "wasi_snapshot_preview1";
    match name {
        "fd_write" => linker.func_wrap(
            M,
            name,
            |mut c: C, fd: i32, iovs: i32, count: i32, out: i32| -> Result<i32> {
                let mut written = Vec::new();
                for i in 0..count {
                    let iov = memory::read(&mut c, iovs + i * 8, 8)?;
                    let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                    let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                    written.extend(memory::read(&mut c, ptr, len)?);
                }
                match fd {
                    1 => c.data_mut().stdout.extend_from_slice(&written),
                    2 => c.data_mut().stderr.extend_from_slice(&written),
                    _ => return Ok(BADF),
                }
                memory::write_u32(&mut c, out, written.len() as u32)?;
                Ok(SUCCESS)
            },
        )?,
        "environ_sizes_get" | "args_sizes_get" => {
            linker.func_wrap(M, name, |mut c: C, count_out: i32, size_out: i32| -> Result<i32> {
                memory::write_u32(&mut c, count_out, 0)?;
                memory::write_u32(&mut c, size_out, 0)?;
                Ok(SUCCESS)
            })?
        }
        "environ_get" | "args_get" => {
            linker.func_wrap(M, name, |_: C, _: i32, _: i32| -> Result<i32> { Ok(SUCCESS) })?
        }
        "random_get" => linker.func_wrap(M, name, |mut c: C, buf: i32, len: i32| -> Result<i32> {
            let mut bytes = Vec::with_capacity(len as u32 as usize + 8);
            while bytes.len() < len as u32 as usize {
                let word = c.data_mut().next_random();
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.truncate(len as u32 as usize);
            memory::write(&mut c, buf, &bytes)?;
            Ok(SUCCESS)
        })?,
        "clock_time_get" => {
            linker.func_wrap(M, name, |mut c: C, clock: i32, _precision: i64, out: i32| -> Result<i32> {
                // 0 realtime, 1 monotonic: both follow the fake clock.
                if !(0..=1).contains(&clock) {
                    return Ok(INVAL);
                }
                let now = c.data().now_ns;
                memory::write_u64(&mut c, out, now)?;
                Ok(SUCCESS)
            })?
        }
        "sched_yield" => linker.func_wrap(M, name, |_: C| -> Result<i32> { Ok(SUCCESS) })?,
        "proc_exit" => linker.func_wrap(M, name, |_: C, code: i32| -> Result<()> {
            bail!("the guest called proc_exit({code}): a proxy would tear down this VM")
        })?,
        _ => return Ok(false),
    };
    Ok(true)
}
