//! glibc malloc tuned for a process that swaps multi-megabyte bundles while it serves.
//!
//! glibc raises its mmap threshold to the size of the largest mmapped block freed so far (up to
//! 32 MiB). After the first bundle swap frees the old text-encoder table (about 15 MiB), every
//! later table, and the parse buffers around it, lands in the heap instead of its own mapping,
//! and what the heap frees is not handed back: the soak measured RSS rising about 1.5 MiB per
//! activation, without end, and 80 MiB more at rest than with the threshold held fixed
//! (docs/performance.md, "Soak"). A fixed threshold keeps every large block in a mapping of its
//! own, returned to the kernel the moment the bundle that owned it is dropped.

/// glibc's own default; fixing it turns off the dynamic raise described above.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Holds glibc's mmap threshold at its default, so a dropped bundle's memory goes back to the
/// kernel. Called once, before the first bundle loads; a no-op on other C libraries.
pub fn return_large_blocks_to_the_kernel() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt(3) only changes a malloc parameter; it takes no pointers, and it is
        // called before the runtime starts any thread.
        #[allow(unsafe_code)]
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if accepted != 1 {
            log::warn!("mallopt(M_MMAP_THRESHOLD) refused: bundle swaps may grow RSS");
        }
    }
}
