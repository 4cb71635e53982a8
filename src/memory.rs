//! Process-wide memory settings, applied first thing in `main`.

/// Allocations below this size come from glibc's heap, not from a mapping of their own.
///
/// sled allocates a fresh 512 KiB log buffer (aligned to 8 KiB) for each log segment it starts,
/// some 350 a second under the webhook bench. glibc's threshold adapts upward as mappings are
/// freed, but an aligned request asks for more than the chunk it gets back, so it never caught
/// up: each buffer got an `mmap` and `munmap` of its own, and the kernel zeroed and faulted in
/// its 131 pages, 45,000 page faults a second and 10–20 % of the receiver's throughput. From the
/// heap, the same memory is reused. Larger allocations (a body near the 25 MiB limit) are still
/// mapped and given back when freed.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Tunes glibc's malloc for this process: at most two arenas, and allocations up to
/// [`MMAP_THRESHOLD`] from the heap. A setting in the environment (`MALLOC_ARENA_MAX`,
/// `MALLOC_MMAP_THRESHOLD_`) is left to glibc.
///
/// Arenas: glibc gives each thread that contends for the heap an arena of its own, up to eight
/// per core, and keeps what is freed in each. The webhook receiver's reads, the delivery writer,
/// sled's IO threads and the blocking pool each allocate tens of kilobytes per delivery, so under
/// load the arenas alone held twice the store's cache. Two arenas keep the peak near what is in
/// use, for a few percent of CPU (figures in docs/webhooks.md).
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only changes allocator parameters; called before threads start.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        }
    }
}
