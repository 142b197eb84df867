//! glibc malloc tuned for a process that swaps multi-megabyte bundles while it serves.
//!
//! glibc raises its mmap threshold to the size of the largest mmapped block freed so far (up to
//! 32 MiB). After the first bundle swap frees the old text-encoder table (about 15 MiB), every
//! later table, and the parse buffers around it, lands in the heap instead of its own mapping,
//! and what the heap frees is not handed back: the soak measured RSS rising about 1.5 MiB per
//! activation, without end, and 80 MiB more at rest than with the threshold held fixed
//! (docs/performance.md, "Soak"). A fixed threshold keeps every large block in a mapping of its
//! own, returned to the kernel the moment the bundle that owned it is dropped.
//!
//! Fixing the mmap threshold also fixes the trim threshold, at 128 KiB: a heap whose free top
//! passes it is shrunk at once. A batch of briefs frees more than that as it is answered (model
//! tensors, replies, JSON), so every batch gave its pages back and faulted them in again: a
//! quarter of packd's CPU per brief was the kernel's, half of it page faults (docs/performance.md,
//! "Page faults"). Each arena now keeps up to `TRIM_THRESHOLD` of free top for the next batch.

/// glibc's own default; fixing it turns off the dynamic raise described above.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Free heap top an arena keeps rather than hands back: above what a batch of eight briefs frees
/// (at 1 MiB batches still faulted, at 2 and 4 MiB alike they no longer did), far below a
/// bundle's tables, which the mmap threshold keeps out of the heap anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 2 * 1024 * 1024;

/// Holds glibc's mmap threshold at its default, so a dropped bundle's memory goes back to the
/// kernel, and lets each heap keep a few MiB of free top between batches. Called once, before
/// the first bundle loads; a no-op on other C libraries.
pub fn return_large_blocks_to_the_kernel() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (parameter, value, name) in [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD, "M_TRIM_THRESHOLD"),
    ] {
        // SAFETY: mallopt(3) only changes a malloc parameter; it takes no pointers, and it is
        // called before the runtime starts any thread.
        #[allow(unsafe_code)]
        let accepted = unsafe { libc::mallopt(parameter, value) };
        if accepted != 1 {
            log::warn!("mallopt({name}) refused: bundle swaps may grow RSS or briefs cost more");
        }
    }
}
