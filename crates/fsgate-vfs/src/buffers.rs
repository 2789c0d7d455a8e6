//! Reusable buffers for `READ` answers: without them every 1 MiB read allocates and zeroes a
//! fresh megabyte before the handler fills it.

use std::sync::Mutex;

/// Idle buffers kept at most: one per read served at the same time is enough.
const KEEP: usize = 8;

/// A pool of byte buffers, taken for one request and given back after its answer.
#[derive(Default)]
pub(crate) struct Buffers(Mutex<Vec<Vec<u8>>>);

impl Buffers {
    /// A buffer of `len` bytes. Bytes an earlier request of the same length filled are not
    /// cleared again: callers send only the bytes the handler reports it filled.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut buffer = self
            .0
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .unwrap_or_default();
        buffer.resize(len, 0);
        buffer
    }

    /// Returns a buffer to the pool (or frees it when the pool is full).
    pub(crate) fn give(&self, buffer: Vec<u8>) {
        if let Ok(mut idle) = self.0.lock() {
            if idle.len() < KEEP {
                idle.push(buffer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_buffer_is_reused_at_the_asked_length() {
        let pool = Buffers::default();
        let mut b = pool.take(4096);
        assert_eq!(b.len(), 4096);
        b[..5].copy_from_slice(b"hello");
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take(16);
        assert_eq!(again.len(), 16);
        assert_eq!(again.as_ptr(), ptr, "the same allocation came back");
        let other = pool.take(8);
        assert_eq!(other, vec![0; 8], "a new buffer is zeroed");
    }

    #[test]
    fn the_pool_keeps_at_most_keep_buffers() {
        let pool = Buffers::default();
        for _ in 0..KEEP + 3 {
            pool.give(vec![0; 1]);
        }
        assert_eq!(pool.0.lock().unwrap().len(), KEEP);
    }
}
