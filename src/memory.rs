//! Process-wide memory settings, applied first thing in `main`.

/// Caps glibc's malloc at two arenas.
///
/// glibc gives each thread that contends for the heap an arena of its own, up to eight per core,
/// and keeps what is freed in each. The webhook receiver's reads, the delivery writer, sled's IO
/// threads and the blocking pool each allocate tens of kilobytes per delivery, so under load the
/// arenas alone held twice the store's cache. Two arenas keep the peak near what is in use, for
/// a few percent of CPU (figures in docs/webhooks.md). A `MALLOC_ARENA_MAX` set in the
/// environment is left to glibc.
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
