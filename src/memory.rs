//! Memory: keep big image buffers warm while working, hand them back to the system when idle.
//!
//! A 12 MP photo means buffers of 36–48 MB. By default glibc maps every such buffer fresh from
//! the kernel and unmaps it on free, so each photo pays for first-touch page faults again
//! (about 40 ms of CPU per 48 MB on our machines, a third of a PNG decode). Raising the mapping
//! threshold lets freed buffers be reused from the heap instead; one heap for all threads keeps
//! them reusable whichever worker thread runs the next photo. When the queue runs dry the free
//! heap is trimmed, so an idle daemon stays small.

/// Sets the allocator up for large, short-lived image buffers. Call before any thread starts.
pub(crate) fn tune_for_images() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        // Buffers up to 256 MB (a 24 MP photo in 16-bit RGBA is 192 MB) come from the heap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        // Freed memory stays in the heap during a burst; `release_idle` gives it back.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns free heap memory to the system; called when there is no work left.
pub(crate) fn release_idle() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim is thread-safe and only releases memory that is already free.
    unsafe {
        libc::malloc_trim(0);
    }
}
