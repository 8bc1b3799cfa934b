//! The memory onnxruntime works in: freed blocks kept by exact size and handed out again.
//!
//! The model always sees a 1×3×320×320 input, so every inference asks for the same sequence of
//! block sizes. onnxruntime's own CPU arena grows in powers of two and carves its regions into
//! pieces later requests cannot always reuse; without any arena every block comes fresh from the
//! C heap and pays its page faults again on each inference (about a quarter more CPU).
//!
//! Here a freed block waits for the next request of its exact size, so after the first inference
//! no request reaches the heap, and what is held is, for each size, the most blocks of that size
//! the model ever had in use at once: 128 MB for a peak of 125 MB in use with the embedded model,
//! where the arena held about 6 MB more (BENCHMARKS.md, "Issue 20, third run"). When the model is
//! released ([`release`], after its session), every kept block goes back to the heap, which the
//! idle trim ([`crate::memory::release_idle`]) then returns to the system.
//!
//! [`register`] installs it in the onnxruntime environment; sessions use it through
//! `session.use_env_allocators`.

use crate::sync::Mutex;
use ort::sys::{OrtAllocator, OrtMemoryInfo};
use std::alloc::Layout;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::OnceLock;

/// Every block is aligned for onnxruntime's vector kernels (its own CPU allocator uses 64).
const ALIGN: usize = 64;

/// The registered allocator, for [`release`].
static REGISTERED: OnceLock<&'static Blocks> = OnceLock::new();

/// The allocator as onnxruntime sees it: the function table first, so a pointer to the table is
/// a pointer to the whole.
#[repr(C)]
struct Blocks {
    table: OrtAllocator,
    info: *const OrtMemoryInfo,
    kept: Mutex<Kept>,
}

// SAFETY: `info` points at an immutable description that lives as long as the process and is
// only read; `kept` is behind a lock; the table holds function pointers.
unsafe impl Send for Blocks {}
unsafe impl Sync for Blocks {}

/// Blocks in use, by address, and blocks kept for reuse, by size.
#[derive(Default)]
struct Kept {
    in_use: HashMap<usize, usize>,
    free: HashMap<usize, Vec<usize>>,
    held: usize,
}

impl Kept {
    /// A block of `size` bytes: a kept one of that size, else a new one; null when the heap has
    /// no room (onnxruntime then fails the inference, which is retried).
    fn take(&mut self, size: usize) -> *mut u8 {
        let size = size.max(1);
        let address = match self.free.get_mut(&size).and_then(Vec::pop) {
            Some(address) => address,
            None => {
                let Ok(layout) = Layout::from_size_align(size, ALIGN) else {
                    return std::ptr::null_mut();
                };
                // SAFETY: the layout's size is not zero.
                let block = unsafe { std::alloc::alloc(layout) };
                if block.is_null() {
                    return block;
                }
                self.held += size;
                block as usize
            }
        };
        self.in_use.insert(address, size);
        address as *mut u8
    }

    /// Keeps `block` for the next request of its size.
    fn give_back(&mut self, block: *mut u8) {
        let Some(size) = self.in_use.remove(&(block as usize)) else {
            return; // null, which onnxruntime may free like `free` would
        };
        self.free.entry(size).or_default().push(block as usize);
    }

    /// Hands every kept block back to the heap; blocks in use stay with their owner.
    fn release(&mut self) {
        tracing::debug!(held_mb = self.held >> 20, "onnxruntime's memory handed back");
        for (size, blocks) in self.free.drain() {
            for block in blocks {
                // SAFETY: allocated in `take` with this size and alignment, and no longer in use.
                unsafe { std::alloc::dealloc(block as *mut u8, Layout::from_size_align_unchecked(size, ALIGN)) };
                self.held -= size;
            }
        }
    }
}

/// The `Blocks` behind onnxruntime's pointer to its table.
///
/// SAFETY: `table` must be the table of a `Blocks` passed to onnxruntime by [`register`].
unsafe fn blocks<'a>(table: *const OrtAllocator) -> &'a Blocks {
    // SAFETY: `Blocks` is `repr(C)` with the table first, and registered ones are never freed.
    unsafe { &*table.cast::<Blocks>() }
}

unsafe extern "system" fn alloc(table: *mut OrtAllocator, size: usize) -> *mut c_void {
    // SAFETY: onnxruntime calls with the table it was given.
    unsafe { blocks(table) }.kept.lock().take(size).cast()
}

/// A block for the model's weights: the same as any other here.
unsafe extern "system" fn reserve(table: *const OrtAllocator, size: usize) -> *mut c_void {
    // SAFETY: as in `alloc`, which only reads through the pointer.
    unsafe { alloc(table.cast_mut(), size) }
}

unsafe extern "system" fn free(table: *mut OrtAllocator, block: *mut c_void) {
    // SAFETY: as in `alloc`.
    unsafe { blocks(table) }.kept.lock().give_back(block.cast());
}

unsafe extern "system" fn info(table: *const OrtAllocator) -> *const OrtMemoryInfo {
    // SAFETY: as in `alloc`.
    unsafe { blocks(table) }.info
}

/// Makes this allocator the CPU memory of every session of `environment` that asks for the
/// environment's allocators. Once per process: it lives as long as the environment.
pub(super) fn register(environment: &ort::environment::Environment) -> ort::Result<()> {
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer;
    let description = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)?;
    // The description and the allocator must outlive the environment, which is the process's.
    let description: &'static MemoryInfo<'static> = Box::leak(Box::new(description));
    // SAFETY: an empty table, every entry onnxruntime calls is filled in below.
    let mut table = unsafe { OrtAllocator::default() };
    table.Alloc = Some(alloc);
    table.Free = Some(free);
    table.Info = Some(info);
    table.Reserve = Some(reserve);
    // A pointer to the whole allocator (never freed), cast to its table: onnxruntime hands it
    // back to the functions above, which read the fields after the table.
    let blocks = Box::into_raw(Box::new(Blocks { table, info: description.ptr(), kept: Mutex::new(Kept::default()) }));
    // SAFETY: the environment is live, and `blocks` is never freed.
    let status = unsafe { (ort::api().RegisterAllocator)(environment.ptr().cast_mut(), blocks.cast::<OrtAllocator>()) };
    // SAFETY: the status comes straight from onnxruntime and is read once.
    unsafe { ort::Error::result_from_status(status) }?;
    // SAFETY: `blocks` is never freed, and from here on only read through shared references.
    let _ = REGISTERED.set(unsafe { &*blocks });
    Ok(())
}

/// Hands the blocks kept for the next inference back to the heap: for after a session is
/// dropped, when no inference follows soon.
pub(super) fn release() {
    if let Some(blocks) = REGISTERED.get() {
        blocks.kept.lock().release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_block_is_handed_out_again_for_the_same_size_and_only_for_it() {
        let mut kept = Kept::default();
        let anchor = kept.take(8); // something stays in use, as the model's weights do
        let a = kept.take(4096);
        assert_eq!(a as usize % ALIGN, 0, "aligned for vector kernels");
        kept.give_back(a);
        assert_eq!(kept.take(4096), a, "the same size reuses the block");
        let b = kept.take(4096);
        assert_ne!(b, a, "a block in use is never handed out twice");
        kept.give_back(b);
        let c = kept.take(4000);
        assert_ne!(c, b, "another size gets its own block");
        assert_eq!(kept.held, 8 + 4096 + 4096 + 4000, "two blocks of 4096 bytes were in use at once");
        for block in [a, c, anchor] {
            kept.give_back(block);
        }
    }

    #[test]
    fn a_release_hands_back_the_kept_blocks_and_leaves_those_in_use() {
        let mut kept = Kept::default();
        let blocks: Vec<_> = (0..4).map(|i| kept.take(1 << (10 + i))).collect();
        for &block in &blocks[..3] {
            kept.give_back(block);
        }
        assert_eq!(kept.held, 15 << 10, "kept after their inference, for the next one");
        kept.give_back(std::ptr::null_mut()); // freeing null is allowed and changes nothing
        kept.release();
        assert_eq!(kept.held, 8 << 10, "only the block still in use is held");
        assert!(kept.free.is_empty());
        kept.give_back(blocks[3]);
        kept.release();
        assert_eq!(kept.held, 0);
    }
}
