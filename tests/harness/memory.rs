//! Reading and writing the guest's linear memory from a host call.

use wasmtime::{bail, format_err, Caller, Memory, Result};

use super::state::HostState;

fn memory(caller: &mut Caller<'_, HostState>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
        .ok_or_else(|| format_err!("the guest exports no `memory`"))
}

/// Copies `len` bytes at `ptr` out of the guest. A pointer outside memory is
/// a guest bug, so it traps instead of returning a status.
pub fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    match memory.data(&caller).get(start..start + len) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => bail!("guest passed {len} bytes at {start:#x}, outside its memory"),
    }
}

pub fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    let start = ptr as u32 as usize;
    match memory.data_mut(&mut *caller).get_mut(start..start + bytes.len()) {
        Some(dest) => {
            dest.copy_from_slice(bytes);
            Ok(())
        }
        None => bail!("guest asked for {} bytes at {start:#x}, outside its memory", bytes.len()),
    }
}

pub fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, value: u64) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Hands `data` to the guest as a proxy does: memory allocated through the
/// guest's `proxy_on_memory_allocate`, then its address and size written to
/// the two out-pointers. The guest owns (and frees) the buffer.
pub fn give(caller: &mut Caller<'_, HostState>, data: &[u8], ptr_out: i32, size_out: i32) -> Result<()> {
    if data.is_empty() {
        write_u32(caller, ptr_out, 0)?;
        return write_u32(caller, size_out, 0);
    }
    let allocate = caller
        .get_export("proxy_on_memory_allocate")
        .and_then(|export| export.into_func())
        .ok_or_else(|| format_err!("the guest exports no `proxy_on_memory_allocate`"))?
        .typed::<i32, i32>(&caller)?;
    let size = i32::try_from(data.len())?;
    caller.data_mut().guest_calls += 1;
    let ptr = allocate.call(&mut *caller, size)?;
    if ptr == 0 {
        bail!("proxy_on_memory_allocate({size}) returned null");
    }
    write(caller, ptr, data)?;
    write_u32(caller, ptr_out, ptr as u32)?;
    write_u32(caller, size_out, size as u32)
}
