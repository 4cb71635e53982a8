//! sled allocates each new log buffer as 512 KiB aligned to 8 KiB, one per segment it fills.
//! Under glibc's defaults every such buffer is a mapping of its own (the dynamic threshold never
//! catches up with an aligned request, which asks for more than the chunk it gets), zeroed and
//! faulted in page by page by the kernel. Tuned as `main` tunes it, the heap serves them. A test
//! binary of its own: the setting is process-wide.

use std::alloc::{alloc, dealloc, Layout};

/// Chunks glibc currently serves by `mmap`.
fn mapped_chunks() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.hblks
}

/// Whether an allocation shaped like sled's log buffer is served by a mapping of its own.
fn log_buffer_is_mapped() -> bool {
    let layout = Layout::from_size_align(512 << 10, 8 << 10).unwrap();
    let before = mapped_chunks();
    // SAFETY: the layout has a non-zero size; the pointer is freed with the same layout.
    unsafe {
        let buffer = alloc(layout);
        assert!(!buffer.is_null());
        let mapped = mapped_chunks() > before;
        dealloc(buffer, layout);
        mapped
    }
}

#[test]
fn sled_log_buffers_come_from_the_heap_once_malloc_is_tuned() {
    // glibc's default, even after one such buffer was freed (which raises its threshold).
    assert!(log_buffer_is_mapped());
    assert!(log_buffer_is_mapped());

    codegen_sentinel::memory::tune_malloc();
    assert!(!log_buffer_is_mapped());
    assert!(!log_buffer_is_mapped());

    // Beyond the threshold, memory is still mapped and given back when freed.
    let big = vec![1u8; 2 * codegen_sentinel::memory::MMAP_THRESHOLD];
    assert!(mapped_chunks() > 0);
    drop(big);
}
