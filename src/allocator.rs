//! How the process's allocator (mimalloc, chosen in `main.rs`) gives memory back to the system.
//!
//! It lives in the library so that the `plaza` binary and the benchmarks that run the relay's code in
//! their own process (`benches/search.rs`) allocate the same way. Both settings trade a little CPU for
//! resident memory, which is what a relay at rest with many subscribers is short of; each was measured
//! (docs/performance.md, memory per subscriber) and each yields to mimalloc's own environment variable.

/// `mi_option_purge_delay` in mimalloc 3.3's `mimalloc.h` (libmimalloc-sys 0.1.49 builds 3.3.2 and
/// does not name it); checked by the version and by the option's default of 1,000 ms, and by a test
/// that fails when an upgrade leaves it unset.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies both settings below; call it first thing in `main`.
pub fn tune() {
    return_freed_memory_promptly();
    no_transparent_huge_pages();
}

/// mimalloc returns the pages a thread freed to the system only when that thread calls into it again
/// after `purge_delay` (1 s by default in mimalloc 3): a runtime thread that goes idle keeps what it
/// freed resident, so a relay at rest holds its subscribe and burst high-water marks. Purging at once
/// (`purge_delay` 0) took the relay's idle RSS with 1,000 subscribers from 140 to 103 MB and its peak
/// from 160 to 129 MB, with no CPU cost per delivery above the run-to-run noise. `MIMALLOC_PURGE_DELAY`
/// in the environment still wins.
fn return_freed_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: reads mimalloc's version and one option, and sets that option; no memory is touched.
    unsafe {
        let version = libmimalloc_sys::mi_version();
        if (30300..30400).contains(&version) && libmimalloc_sys::mi_option_get(PURGE_DELAY) == 1000
        {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        }
    }
}

/// mimalloc asks the kernel for transparent huge pages on its arenas, so the first touch of a page it
/// has purged faults in and zeroes 2 MiB at once, however little of it is then used. With purging at
/// once, that was 5–8% of the relay's CPU in the inbound benchmark and of the search benchmark's ingest
/// (`clear_page_erms` under `do_huge_pmd_anonymous_page`), and it kept whole huge pages resident:
/// without them the relay's peak RSS in the inbound run fell from 100–107 to 85–87 MB with the same CPU
/// per activity. Turned off for this process only (`PR_SET_THP_DISABLE`, which the kernel applies to
/// every later fault); `MIMALLOC_ALLOW_THP` in the environment still wins.
fn no_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: sets a flag of this process's memory map; no memory is read or written.
    unsafe {
        // Failure (a kernel without the flag) leaves the kernel's default in place, which is harmless.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    /// Fails when a mimalloc upgrade moves or renames the purge-delay option: the guard in
    /// `return_freed_memory_promptly` would then leave it alone and idle RSS would grow back unnoticed.
    #[test]
    fn freed_memory_is_returned_at_once() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        super::return_freed_memory_promptly();
        // SAFETY: reads one mimalloc option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(
            delay,
            0,
            "mimalloc {} no longer matches the purge-delay option this build sets",
            // SAFETY: reads mimalloc's version.
            unsafe { libmimalloc_sys::mi_version() }
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_for_the_process() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        super::no_transparent_huge_pages();
        // SAFETY: reads a flag of this process's memory map.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }
}
