//! Giving freed heap memory back to the system, safely.
//!
//! glibc's malloc keeps freed memory in its arenas for reuse, so a process that once held
//! 1 GiB stays that large after freeing it. These functions wrap the calls that make it
//! give the memory back, so drives (the memory drive) need no `unsafe` of their own.
//! Without glibc (`target_env` other than `gnu`) the allocator functions do nothing: other
//! allocators decide on their own.

/// Fixes glibc's malloc thresholds for the whole process, which otherwise adapt to the
/// program: the first freed allocation served by its own `mmap` (such as a 16 MiB FUSE
/// request buffer) raises the trim threshold to twice its size, and from then on every
/// thread's arena keeps up to that much free memory at its top, which
/// [`return_free_memory`] cannot release (`malloc_trim` trims only the main arena's top).
/// After this call:
/// - allocations from 32 MiB up (glibc's own largest adaptive value) get their own
///   mappings, so request and read buffers stay in the arenas and are reused;
/// - an arena's free top goes back to the system as soon as it passes 4 MiB, a few
///   request buffers' worth, so buffers that come and go do not make it shrink and grow
///   at every request.
///
/// Call it before the process starts serving; calling it again changes nothing. A no-op
/// without glibc.
///
/// References: mallopt(3)
pub fn keep_allocator_tops_small() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt has no preconditions; it changes the allocator's parameters under the
    // allocator's own lock and touches no memory the program owns.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20);
    }
}

/// Hands the free pages of every malloc arena back to the kernel: the process's resident
/// size drops by the memory it freed, and later allocations fault fresh pages in. Takes each
/// arena's lock in turn, so allocations on other threads wait while it runs: call it off
/// the hot path (the memory drive calls it from a thread of its own).
///
/// Returns whether any memory went back; always false without glibc.
///
/// References: malloc_trim(3)
pub fn return_free_memory() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: malloc_trim has no preconditions; it takes each arena's own lock while it
        // releases that arena's free pages, and touches no memory the program owns.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

/// The machine's physical memory in bytes (`_SC_PHYS_PAGES` pages of `_SC_PAGESIZE`
/// bytes); 0 when the system does not say.
///
/// References: sysconf(3)
pub fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads system values.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64).saturating_mul(page.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_has_physical_memory() {
        let bytes = physical_memory();
        assert!(bytes >= 16 << 20, "{bytes} bytes");
    }

    #[test]
    fn fixing_the_thresholds_twice_changes_nothing() {
        keep_allocator_tops_small();
        keep_allocator_tops_small();
        let buffer = vec![1u8; 1 << 20];
        assert_eq!(std::hint::black_box(&buffer)[4095], 1);
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn memory_freed_between_live_allocations_goes_back() {
        // 64 MiB in 4 KiB blocks, all in an arena; the last one stays, so the freed ones
        // are not the arena's top (which free itself may give back) but a hole below it.
        let mut blocks: Vec<Vec<u8>> = (0..16384).map(|i| vec![i as u8; 4096]).collect();
        let kept = blocks.pop();
        drop(std::hint::black_box(blocks));
        assert!(return_free_memory(), "malloc_trim released nothing");
        assert!(kept.is_some_and(|k| k[0] == (16383 % 256) as u8));
    }

    #[cfg(not(target_env = "gnu"))]
    #[test]
    fn without_glibc_nothing_is_returned() {
        assert!(!return_free_memory());
    }
}
