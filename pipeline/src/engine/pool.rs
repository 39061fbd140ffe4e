//! A bounded pool of record buffers: the seal workers' only output memory.
//!
//! Buffers are allocated on first use, up to the pool's capacity, and recycled forever
//! after; a buffer returns to the pool when its [`PooledBuf`] is dropped (after its record
//! was written out). When every buffer is in use, [`BufferPool::acquire`] blocks: that is
//! how a slow downstream stalls the source, and why memory stays bounded.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The pool. Cheap to clone; clones share the buffers.
#[derive(Clone)]
pub(crate) struct BufferPool {
    inner: Arc<Inner>,
}

impl BufferPool {
    /// A pool of at most `capacity` buffers of `buf_len` bytes each.
    pub(crate) fn new(capacity: usize, buf_len: usize) -> BufferPool {
        BufferPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    free: Vec::new(),
                    allocated: 0,
                    closed: false,
                }),
                returned: Condvar::new(),
                capacity: capacity.max(1),
                buf_len,
            }),
        }
    }

    /// A buffer, waiting for one to come back if all are in use. `None` once the pool is
    /// closed.
    pub(crate) fn acquire(&self) -> Option<PooledBuf> {
        let mut state = self.inner.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(buf) = self.take(&mut state) {
                return Some(buf);
            }
            state = self
                .inner
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// `n` buffers at once if they are available now, else none.
    pub(crate) fn try_acquire_n(&self, n: usize, out: &mut Vec<PooledBuf>) -> bool {
        let mut state = self.inner.lock();
        let available = state.free.len() + (self.inner.capacity - state.allocated);
        if state.closed || available < n {
            return false;
        }
        for _ in 0..n {
            match self.take(&mut state) {
                Some(buf) => out.push(buf),
                None => return false,
            }
        }
        true
    }

    /// Wakes every waiter and makes later `acquire` calls return `None`.
    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.returned.notify_all();
    }

    /// The most buffers the pool hands out.
    pub(crate) fn capacity(&self) -> usize {
        self.inner.capacity
    }

    fn take(&self, state: &mut State) -> Option<PooledBuf> {
        let buf = match state.free.pop() {
            Some(buf) => buf,
            None if state.allocated < self.inner.capacity => {
                state.allocated += 1;
                // Zeroed once here; afterwards every record overwrites what it uses.
                vec![0u8; self.inner.buf_len].into_boxed_slice()
            }
            None => return None,
        };
        Some(PooledBuf {
            buf: Some(buf),
            pool: Arc::clone(&self.inner),
        })
    }
}

/// A buffer on loan from a [`BufferPool`]; dropping it gives it back.
pub(crate) struct PooledBuf {
    buf: Option<Box<[u8]>>,
    pool: Arc<Inner>,
}

impl PooledBuf {
    /// The whole buffer.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf.as_deref_mut().unwrap_or_default()
    }

    /// The whole buffer.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or_default()
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.lock().free.push(buf);
            self.pool.returned.notify_one();
        }
    }
}

struct Inner {
    state: Mutex<State>,
    returned: Condvar,
    capacity: usize,
    buf_len: usize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct State {
    free: Vec<Box<[u8]>>,
    allocated: usize,
    closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_bounded_and_recycled() {
        let pool = BufferPool::new(2, 16);
        let a = pool.acquire().unwrap();
        let b = pool.acquire().unwrap();
        let mut more = Vec::new();
        assert!(!pool.try_acquire_n(1, &mut more));
        let a_ptr = a.bytes().as_ptr();
        drop(a);
        let c = pool.acquire().unwrap();
        assert_eq!(c.bytes().as_ptr(), a_ptr, "the returned buffer is reused");
        drop((b, c));
        assert!(pool.try_acquire_n(2, &mut more));
        assert_eq!(more.len(), 2);
        assert!(!pool.try_acquire_n(1, &mut more));
    }

    #[test]
    fn acquire_waits_for_a_return() {
        let pool = BufferPool::new(1, 8);
        let held = pool.acquire().unwrap();
        let p2 = pool.clone();
        let waiter = std::thread::spawn(move || p2.acquire().map(|b| b.bytes().len()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(held);
        assert_eq!(waiter.join().unwrap(), Some(8));
    }

    #[test]
    fn close_releases_waiters() {
        let pool = BufferPool::new(1, 8);
        let _held = pool.acquire().unwrap();
        let p2 = pool.clone();
        let waiter = std::thread::spawn(move || p2.acquire().is_none());
        std::thread::sleep(std::time::Duration::from_millis(20));
        pool.close();
        assert!(waiter.join().unwrap());
    }
}
