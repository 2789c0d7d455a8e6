//! [`AlignedBuf`]: heap memory aligned for `O_DIRECT`.
//!
//! `O_DIRECT` transfers need the buffer address, the file offset and the length to be
//! multiples of the device's logical sector size. fsgate aligns every bounce buffer to
//! [`ALIGNMENT`] (4096), which satisfies every logical sector size Linux block devices use
//! (512 to 4096). Callers who pass an `AlignedBuf` (or any slice that happens to be aligned)
//! to `read_sectors`/`write_sectors` skip the bounce copy.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use fsgate_core::{code, Error, Result};

/// The alignment of every [`AlignedBuf`]: 4096 bytes.
pub const ALIGNMENT: usize = 4096;

/// A zero-filled, 4096-aligned byte buffer that dereferences to `[u8]`.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only give out &[u8], like a Vec<u8>.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zero-filled buffer of `len` bytes; `ERROR_NOT_ENOUGH_MEMORY` (8) when the allocation
    /// fails.
    pub fn zeroed(len: usize) -> Result<Self> {
        if len == 0 {
            return Ok(Self {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        let layout = Layout::from_size_align(len, ALIGNMENT)
            .map_err(|_| Error::invalid_argument("buffer length", format!("{len} is too large")))?;
        // SAFETY: the layout has a non-zero size (len > 0 was checked above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(|| {
            Error::from_code(
                code::ERROR_NOT_ENOUGH_MEMORY,
                format!("allocating a {len}-byte aligned buffer"),
            )
        })?;
        Ok(Self { ptr, len })
    }

    /// Whether `bytes` already meets `O_DIRECT`'s rules for `alignment` (address and length
    /// multiples of it), so it can be handed to the kernel without a bounce copy.
    pub fn is_aligned(bytes: &[u8], alignment: usize) -> bool {
        alignment != 0 && (bytes.as_ptr() as usize) % alignment == 0 && bytes.len() % alignment == 0
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialized (zeroed) bytes, or dangling with len 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Ok(layout) = Layout::from_size_align(self.len, ALIGNMENT) {
            // SAFETY: ptr was allocated by alloc_zeroed with exactly this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_zeroed() {
        for len in [1, 512, 4096, 1 << 20] {
            let mut b = AlignedBuf::zeroed(len).unwrap();
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % ALIGNMENT, 0);
            assert!(b.iter().all(|&x| x == 0));
            b[len - 1] = 7;
            assert_eq!(b[len - 1], 7);
        }
        assert!(AlignedBuf::zeroed(0).unwrap().is_empty());
    }

    #[test]
    fn alignment_check_looks_at_address_and_length() {
        let b = AlignedBuf::zeroed(8192).unwrap();
        assert!(AlignedBuf::is_aligned(&b, 512));
        assert!(AlignedBuf::is_aligned(&b[..4096], 4096));
        assert!(!AlignedBuf::is_aligned(&b[1..513], 512));
        assert!(!AlignedBuf::is_aligned(&b[..100], 512));
        assert!(!AlignedBuf::is_aligned(&b, 0));
    }
}
