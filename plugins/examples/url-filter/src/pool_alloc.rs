//! A global allocator for request-path plugins: free lists of small blocks (16 B to 2 KiB,
//! powers of two) in front of the default allocator (dlmalloc on wasm32).
//!
//! Why: every call allocates and frees the strings of the request (the host lowers each
//! into the guest through `cabi_realloc`) and of the answer, ~15 % of a URL filter call with
//! dlmalloc. A freed small block goes on its class's list and is handed out again by the
//! next allocation of that class: two pointer moves each way. Blocks are never given back
//! (a Wasm memory never shrinks anyway); the lists hold at most what one call had live.
//!
//! Only installed on wasm32 (`#[global_allocator]` in lib.rs), where a component instance
//! runs one call at a time on one thread: the lists need no lock.
#![allow(unsafe_code)]
// Off wasm32 it only runs in its unit tests.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Size classes 16 << 0 ..= 16 << 7 (2 KiB); larger blocks go to the default allocator.
const CLASSES: usize = 8;
const MIN: usize = 16;
/// Every pooled block is aligned to 16; layouts asking for more go to the default allocator.
const ALIGN: usize = 16;

pub struct PoolAlloc {
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: installed only on wasm32 without threads: one thread touches the lists.
unsafe impl Sync for PoolAlloc {}

impl PoolAlloc {
    pub const fn new() -> PoolAlloc {
        PoolAlloc {
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }
}

/// The class of a layout, or `None` for the default allocator.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() > MIN << (CLASSES - 1) {
        return None;
    }
    let size = layout.size().max(MIN).next_power_of_two();
    Some((size / MIN).trailing_zeros() as usize)
}

unsafe impl GlobalAlloc for PoolAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            return System.alloc(layout);
        };
        // SAFETY: single thread (see the module docs); no other borrow of the lists is live.
        let free = &mut *self.free.get();
        let head = free[c];
        if head.is_null() {
            return System.alloc(Layout::from_size_align_unchecked(MIN << c, ALIGN));
        }
        // A free block holds the next free block of its class in its first bytes.
        free[c] = *(head as *mut *mut u8);
        head
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            return System.dealloc(ptr, layout);
        };
        let free = &mut *self.free.get();
        *(ptr as *mut *mut u8) = free[c];
        free[c] = ptr;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class(layout), class(new)) {
            // Same block size: nothing to move.
            (Some(a), Some(b)) if a == b => ptr,
            (None, None) => System.realloc(ptr, layout, new_size),
            _ => {
                let out = self.alloc(new);
                if !out.is_null() {
                    ptr::copy_nonoverlapping(ptr, out, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let l = |size, align| Layout::from_size_align(size, align).expect("layout");
        assert_eq!(class(l(1, 1)), Some(0));
        assert_eq!(class(l(16, 8)), Some(0));
        assert_eq!(class(l(17, 1)), Some(1));
        assert_eq!(class(l(2048, 1)), Some(7));
        assert_eq!(class(l(2049, 1)), None);
        assert_eq!(class(l(64, 32)), None);
    }

    #[test]
    fn blocks_are_reused_and_kept_apart() {
        // A local instance, used from this one test thread only.
        let a = PoolAlloc::new();
        let l = Layout::from_size_align(24, 8).expect("layout");
        unsafe {
            let p = a.alloc(l);
            let q = a.alloc(l);
            assert!(!p.is_null() && p != q);
            ptr::write_bytes(p, 0xAA, 24);
            ptr::write_bytes(q, 0xBB, 24);
            a.dealloc(p, l);
            assert_eq!(a.alloc(l), p, "the freed block is handed out again");
            let grown = a.realloc(q, l, 30);
            assert_eq!(grown, q, "same class: same block");
            let moved = a.realloc(q, l, 100);
            assert_eq!(*moved, 0xBB, "contents survive a move");
            a.dealloc(p, l);
            a.dealloc(moved, Layout::from_size_align(100, 8).expect("layout"));
        }
    }
}
